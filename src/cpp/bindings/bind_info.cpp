// cpu_info(), get/set_num_threads(): what the processor offers, what rnncore
// runs on it, and with how many threads; the private ISA switch the tests
// use to run every kernel set in one process.
#include <pybind11/stl.h>

#include "bindings/checks.h"
#include "rnncore/cache.h"
#include "rnncore/cpu.h"
#include "rnncore/threads.h"

namespace rnncore::bindings {

void register_info(py::module_& m) {
  // Choose the kernels now, so that a bad RNNCORE_FORCE_ISA fails the import
  // of rnncore._core with the reason, not some later call.
  cpu::active_isa();

  m.def("cpu_info", [] {
    py::dict info;
    info["isa"] = cpu::active_isa();
    info["features"] = cpu::detected_features();
    info["num_threads"] = threads::num_threads();
    return info;
  });
  m.def("get_num_threads", &threads::num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1)
      fail_value("set_num_threads: n must be at least 1, got " +
                 std::to_string(n));
    threads::set_num_threads(n);
  });
  m.def("memory_info", [] {
    py::dict d;
    d["pooled_bytes"] = detail::pool_cached_bytes();
    d["in_use_bytes"] = detail::pool_in_use_bytes();
    d["peak_bytes"] = detail::pool_peak_bytes();
    return d;
  });
  m.def("release_memory", &detail::pool_release);
  m.def("get_flush_denormal", &threads::flush_denormal);
  m.def("set_flush_denormal", &threads::set_flush_denormal, py::arg("on"));
  m.def("_available_isas", &cpu::available_isas,
        "Kernel sets this CPU can run, best first (private: for tests)");
  m.def("_set_isa", &cpu::set_isa, py::arg("name"),
        "Switch to a kernel set; ValueError if unknown or unsupported "
        "(private: for tests and benchmarks)");
}

}  // namespace rnncore::bindings

// cpu_info(): what the processor offers and what rnncore runs on it; the
// private ISA switch the tests use to run every kernel set in one process.
#include <pybind11/stl.h>

#include "bindings/checks.h"
#include "rnncore/cpu.h"

namespace rnncore::bindings {

void register_info(py::module_& m) {
  // Choose the kernels now, so that a bad RNNCORE_FORCE_ISA fails the import
  // of rnncore._core with the reason, not some later call.
  cpu::active_isa();

  m.def("cpu_info", [] {
    py::dict info;
    info["isa"] = cpu::active_isa();
    info["features"] = cpu::detected_features();
    info["num_threads"] = 1;
    return info;
  });
  m.def("_available_isas", &cpu::available_isas,
        "Kernel sets this CPU can run, best first (private: for tests)");
  m.def("_set_isa", &cpu::set_isa, py::arg("name"),
        "Switch to a kernel set; ValueError if unknown or unsupported "
        "(private: for tests and benchmarks)");
}

}  // namespace rnncore::bindings

// cpu_info(), get/set_num_threads(): what the processor offers, what rnncore
// runs on it, and with how many threads.
#include <pybind11/stl.h>

#include "bindings/checks.h"
#include "rnncore/cpu.h"
#include "rnncore/threads.h"

namespace rnncore::bindings {

void register_info(py::module_& m) {
  cpu::active_isa();  // an impossible RNNCORE_FORCE_ISA fails the import
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
}

}  // namespace rnncore::bindings

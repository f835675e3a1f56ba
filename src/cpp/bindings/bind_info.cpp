// cpu_info(): what the processor offers and what rnncore runs on it.
#include <pybind11/stl.h>

#include "bindings/checks.h"
#include "rnncore/cpu.h"

namespace rnncore::bindings {

void register_info(py::module_& m) {
  m.def("cpu_info", [] {
    py::dict info;
    info["isa"] = cpu::active_isa();
    info["features"] = cpu::detected_features();
    info["num_threads"] = 1;
    return info;
  });
}

}  // namespace rnncore::bindings

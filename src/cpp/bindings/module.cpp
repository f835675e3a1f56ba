// rnncore._core: registers the bindings of each part, nothing else.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace rnncore::bindings {
void register_info(py::module_& m);
void register_lstm(py::module_& m);
void register_gru(py::module_& m);
void register_dense(py::module_& m);
void register_packed(py::module_& m);
void register_testing(py::module_& m);
}  // namespace rnncore::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnncore's compiled kernels (private: use the rnncore package)";
  rnncore::bindings::register_info(m);
  rnncore::bindings::register_lstm(m);
  rnncore::bindings::register_gru(m);
  rnncore::bindings::register_dense(m);
  rnncore::bindings::register_packed(m);
  rnncore::bindings::register_testing(m);
}

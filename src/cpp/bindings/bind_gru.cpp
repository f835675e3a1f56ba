// gru_forward / gru_backward: arrays -> pointers -> rnncore::gru.
#include "bindings/single_state.h"
#include "rnncore/gru.h"

namespace rnncore::bindings {
namespace {

py::object forward(py::handle x, py::handle h0, py::handle W_ih,
                   py::handle W_hh, py::handle b_ih, py::handle b_hh,
                   py::handle lengths, bool reverse, bool reset_after,
                   bool keep_cache, py::handle packed) {
  return single_state_forward<gru::Cache>(
      "gru_forward", "gru", 3, x, h0, W_ih, W_hh, b_ih, b_hh, lengths,
      reverse, keep_cache, packed, [&](const Schedule& s, auto... args) {
        gru::forward(s, reset_after, args...);
      });
}

py::object backward(py::handle cache, py::handle dy, py::handle dh_n) {
  return single_state_backward<gru::Cache>(
      "gru_backward", "gru_forward", 3, cache, dy, dh_n,
      [](const auto&... args) { gru::backward(args...); });
}

}  // namespace

void register_gru(py::module_& m) {
  register_cache<Saved<gru::Cache<float>>>(m, "GRUCacheFloat32");
  register_cache<Saved<gru::Cache<double>>>(m, "GRUCacheFloat64");
  m.def("gru_forward", &forward, py::arg("x"), py::arg("h0"),
        py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"),
        py::arg("bias_hh"), py::arg("lengths"), py::arg("reverse"),
        py::arg("reset_after"), py::arg("keep_cache"), py::arg("packed") = py::none());
  m.def("gru_backward", &backward, py::arg("cache"), py::arg("dy"),
        py::arg("dh_n"));
}

}  // namespace rnncore::bindings

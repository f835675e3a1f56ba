// rnn_forward / rnn_backward (the dense cell): arrays -> pointers ->
// rnncore::dense.
#include "bindings/single_state.h"
#include "rnncore/dense.h"

namespace rnncore::bindings {
namespace {

dense::Activation activation(const std::string& name) {
  if (name == "tanh") return dense::Activation::Tanh;
  if (name == "relu") return dense::Activation::Relu;
  fail_value("rnn_forward: nonlinearity must be 'tanh' or 'relu', got '" +
             name + "'");
}

py::object forward(py::handle x, py::handle h0, py::handle W_ih,
                   py::handle W_hh, py::handle b_ih, py::handle b_hh,
                   py::handle lengths, bool reverse,
                   const std::string& nonlinearity, bool keep_cache,
                   py::handle packed) {
  const dense::Activation act = activation(nonlinearity);
  return single_state_forward<dense::Cache>(
      "rnn_forward", "rnn", 1, x, h0, W_ih, W_hh, b_ih, b_hh, lengths,
      reverse, keep_cache, packed, [&](const Schedule& s, auto... args) {
        dense::forward(s, act, args...);
      });
}

py::object backward(py::handle cache, py::handle dy, py::handle dh_n) {
  return single_state_backward<dense::Cache>(
      "rnn_backward", "rnn_forward", 1, cache, dy, dh_n,
      [](const auto&... args) { dense::backward(args...); });
}

}  // namespace

void register_dense(py::module_& m) {
  register_cache<Saved<dense::Cache<float>>>(m, "RNNCacheFloat32");
  register_cache<Saved<dense::Cache<double>>>(m, "RNNCacheFloat64");
  m.def("rnn_forward", &forward, py::arg("x"), py::arg("h0"),
        py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"),
        py::arg("bias_hh"), py::arg("lengths"), py::arg("reverse"),
        py::arg("nonlinearity"), py::arg("keep_cache"), py::arg("packed") = py::none());
  m.def("rnn_backward", &backward, py::arg("cache"), py::arg("dy"),
        py::arg("dh_n"));
}

}  // namespace rnncore::bindings

// lstm_forward / lstm_backward: arrays -> pointers -> rnncore::lstm.
#include "bindings/bind_common.h"
#include "bindings/packed.h"
#include "rnncore/lstm.h"

namespace rnncore::bindings {
namespace {

py::object forward(py::handle x, py::handle h0, py::handle c0, py::handle W_ih,
                   py::handle W_hh, py::handle b_ih, py::handle b_hh,
                   py::handle W_hr, py::handle lengths, bool reverse,
                   bool keep_cache, py::handle packed) {
  const WeightArgs w = weight_args("lstm_forward", "lstm", packed, W_ih, W_hh,
                                   b_ih, b_hh, W_hr, keep_cache);
  SeqInputs in = parse_inputs("lstm_forward", 4, x, {{"h0", h0}, {"c0", c0}},
                              w.W_ih, w.W_hh, w.b_ih, w.b_hh, w.W_hr, lengths);
  w.attach(in);
  require_forward_memory("lstm_forward", in, 4, keep_cache);
  return with_dtype(in, [&](auto tag) -> py::object {
    using T = decltype(tag);
    const Dims& d = in.d;
    auto y = new_array<T>({d.T, d.B, d.P});
    auto h_n = new_array<T>({d.B, d.P});
    auto c_n = new_array<T>({d.B, d.H});
    auto cache = keep_cache ? std::make_shared<Saved<lstm::Cache<T>>>() : nullptr;
    {
      py::gil_scoped_release nogil;
      lstm::forward<T>(schedule_of(in, reverse), data_of<T>(in.x),
                       data_of<T>(in.states[0]), data_of<T>(in.states[1]),
                       weights_of<T>(in), y.mutable_data(), h_n.mutable_data(),
                       c_n.mutable_data(), cache.get());
    }
    if (cache) cache->keep(in.x, y);
    return py::make_tuple(y, h_n, c_n,
                          cache ? py::cast(cache) : py::object(py::none()));
  });
}

py::object backward(py::handle cache, py::handle dy, py::handle dh_n,
                    py::handle dc_n) {
  constexpr const char* fn = "lstm_backward";
  return with_cache<lstm::Cache>(cache, fn, "lstm_forward", [&](const auto& c) -> py::object {
    using T = typename std::decay_t<decltype(c)>::value_type;
    const char* h_dims = c.projected() ? "[B, P]" : "[B, H]";
    const T* dy_p = grad_input(dy, c, {fn, "dy"}, true, c.d.P,
                               c.projected() ? "[T, B, P]" : "[T, B, H]");
    const T* dh_p = grad_input(dh_n, c, {fn, "dh_n"}, false, c.d.P, h_dims);
    const T* dc_p = grad_input(dc_n, c, {fn, "dc_n"}, false, c.d.H, "[B, H]");
    GradArrays<T> out(c, 4);
    auto dh0 = new_array<T>({c.d.B, c.d.P});
    auto dc0 = new_array<T>({c.d.B, c.d.H});
    std::optional<py::array_t<T>> dW_hr;
    if (c.projected()) dW_hr = new_array<T>({c.d.P, c.d.H});
    CellGrads<T> g = out.grads();
    g.dW_hr = dW_hr ? dW_hr->mutable_data() : nullptr;
    {
      py::gil_scoped_release nogil;
      lstm::backward<T>(c, dy_p, dh_p, dc_p, out.dx.mutable_data(),
                        dh0.mutable_data(), dc0.mutable_data(), g);
    }
    return out.result(dh0, dc0) + py::make_tuple(GradArrays<T>::optional_array(dW_hr));
  });
}

}  // namespace

void register_lstm(py::module_& m) {
  register_cache<Saved<lstm::Cache<float>>>(m, "LSTMCacheFloat32");
  register_cache<Saved<lstm::Cache<double>>>(m, "LSTMCacheFloat64");
  m.def("lstm_forward", &forward, py::arg("x"), py::arg("h0"), py::arg("c0"),
        py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"),
        py::arg("bias_hh"), py::arg("weight_hr"), py::arg("lengths"),
        py::arg("reverse"), py::arg("keep_cache"), py::arg("packed") = py::none());
  m.def("lstm_backward", &backward, py::arg("cache"), py::arg("dy"),
        py::arg("dh_n"), py::arg("dc_n"));
}

}  // namespace rnncore::bindings

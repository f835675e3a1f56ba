// gru_forward / gru_backward: arrays -> pointers -> rnncore::gru.
#include "bindings/bind_common.h"
#include "rnncore/gru.h"

namespace rnncore::bindings {
namespace {

py::object forward(py::handle x, py::handle h0, py::handle W_ih,
                   py::handle W_hh, py::handle b_ih, py::handle b_hh,
                   py::handle lengths, bool reverse, bool reset_after,
                   bool keep_cache) {
  const SeqInputs in = parse_inputs("gru_forward", 3, x, {{"h0", h0}}, W_ih,
                                    W_hh, b_ih, b_hh, py::none(), lengths);
  return with_dtype(in, [&](auto tag) -> py::object {
    using T = decltype(tag);
    const Dims& d = in.d;
    auto y = new_array<T>({d.T, d.B, d.H});
    auto h_n = new_array<T>({d.B, d.H});
    auto cache = keep_cache ? std::make_shared<gru::Cache<T>>() : nullptr;
    {
      py::gil_scoped_release nogil;
      gru::forward<T>(schedule_of(in, reverse), reset_after, data_of<T>(in.x),
                      data_of<T>(in.states[0]), weights_of<T>(in),
                      y.mutable_data(), h_n.mutable_data(), cache.get());
    }
    return py::make_tuple(y, h_n,
                          cache ? py::cast(cache) : py::object(py::none()));
  });
}

py::object backward(py::handle cache, py::handle dy, py::handle dh_n) {
  constexpr const char* fn = "gru_backward";
  return with_cache<gru::Cache>(cache, fn, "gru_forward", [&](const auto& c) -> py::object {
    using T = typename std::decay_t<decltype(c)>::value_type;
    const T* dy_p = grad_input(dy, c, {fn, "dy"}, true, c.d.H, "[T, B, H]");
    const T* dh_p = grad_input(dh_n, c, {fn, "dh_n"}, false, c.d.H, "[B, H]");
    GradArrays<T> out(c, 3);
    auto dh0 = new_array<T>({c.d.B, c.d.H});
    {
      py::gil_scoped_release nogil;
      gru::backward<T>(c, dy_p, dh_p, out.dx.mutable_data(),
                       dh0.mutable_data(), out.grads());
    }
    return out.result(dh0);
  });
}

}  // namespace

void register_gru(py::module_& m) {
  register_cache<gru::Cache<float>>(m, "GRUCacheFloat32");
  register_cache<gru::Cache<double>>(m, "GRUCacheFloat64");
  m.def("gru_forward", &forward, py::arg("x"), py::arg("h0"),
        py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"),
        py::arg("bias_hh"), py::arg("lengths"), py::arg("reverse"),
        py::arg("reset_after"), py::arg("keep_cache"));
  m.def("gru_backward", &backward, py::arg("cache"), py::arg("dy"),
        py::arg("dh_n"));
}

}  // namespace rnncore::bindings

// Bindings shared by the cells whose only state is h (GRU, dense): the
// forward returns (y, h_n, cache), the backward (dx, dh0, dW_ih, dW_hh,
// db_ih, db_hh).  Each cell passes a generic lambda that calls its core
// function with its own options.
#pragma once

#include "bindings/bind_common.h"
#include "bindings/packed.h"

namespace rnncore::bindings {

// run(schedule, x, h0, weights, y, h_n, cache) with T* pointers.
// packed: None or a PackedWeights of `cell` (bindings/packed.h).
template <template <typename> class CacheT, typename Run>
py::object single_state_forward(const char* fn, const char* cell, index_t G,
                                py::handle x, py::handle h0, py::handle W_ih,
                                py::handle W_hh, py::handle b_ih,
                                py::handle b_hh, py::handle lengths,
                                bool reverse, bool keep_cache,
                                py::handle packed, Run&& run) {
  const WeightArgs w = weight_args(fn, cell, packed, W_ih, W_hh, b_ih, b_hh,
                                   py::none(), keep_cache);
  SeqInputs in = parse_inputs(fn, G, x, {{"h0", h0}}, w.W_ih, w.W_hh, w.b_ih,
                              w.b_hh, py::none(), lengths);
  w.attach(in);
  require_forward_memory(fn, in, G, keep_cache);
  return with_dtype(in, [&](auto tag) -> py::object {
    using T = decltype(tag);
    const Dims& d = in.d;
    auto y = new_array<T>({d.T, d.B, d.H});
    auto h_n = new_array<T>({d.B, d.H});
    auto cache = keep_cache ? std::make_shared<Saved<CacheT<T>>>() : nullptr;
    {
      py::gil_scoped_release nogil;
      run(schedule_of(in, reverse), data_of<T>(in.x), data_of<T>(in.states[0]),
          weights_of<T>(in), y.mutable_data(), h_n.mutable_data(), cache.get());
    }
    if (cache) cache->keep(in.x, y);
    return py::make_tuple(y, h_n,
                          cache ? py::cast(cache) : py::object(py::none()));
  });
}

// run(cache, dy, dh_n, dx, dh0, grads) with T* pointers.
template <template <typename> class CacheT, typename Run>
py::object single_state_backward(const char* fn, const char* forward_fn,
                                 index_t G, py::handle cache, py::handle dy,
                                 py::handle dh_n, Run&& run) {
  return with_cache<CacheT>(cache, fn, forward_fn, [&](const auto& c) -> py::object {
    using T = typename std::decay_t<decltype(c)>::value_type;
    const T* dy_p = grad_input(dy, c, {fn, "dy"}, true, c.d.H, "[T, B, H]");
    const T* dh_p = grad_input(dh_n, c, {fn, "dh_n"}, false, c.d.H, "[B, H]");
    GradArrays<T> out(c, G);
    auto dh0 = new_array<T>({c.d.B, c.d.H});
    {
      py::gil_scoped_release nogil;
      run(c, dy_p, dh_p, out.dx.mutable_data(), dh0.mutable_data(),
          out.grads());
    }
    return out.result(dh0);
  });
}

}  // namespace rnncore::bindings

// What every cell's bindings share: dtype dispatch, output allocation, the
// Python class of a cache, the checks of backward's inputs, and the memory a
// call will need (checked before anything is allocated).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include "bindings/checks.h"
#include "rnncore/cache.h"
#include "rnncore/gru.h"
#include "rnncore/lstm.h"
#include "rnncore/threads.h"

namespace rnncore::bindings {

// A new C-contiguous array of `shape` (contents unspecified).  From
// detail::kPoolMinBytes its memory is a block of the pool (rnncore/cache.h),
// owned by a capsule that gives it back when the array dies: a training
// loop's outputs reuse the pages of the last call's instead of faulting in
// fresh ones.
template <typename T>
py::array_t<T> new_array(std::initializer_list<index_t> shape) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  std::size_t n = 1;
  for (const index_t s : shape) n *= std::size_t(s);
  const std::size_t bytes = n * sizeof(T);
  if (bytes < detail::kPoolMinBytes) return py::array_t<T>(dims);
  struct Block {
    void* p;
    std::size_t bytes;
  };
  auto give_back = [](void* b) {
    const Block* blk = static_cast<const Block*>(b);
    detail::free_block(blk->p, blk->bytes);
    delete blk;
  };
  Block* blk = new Block{nullptr, bytes};
  py::capsule owner;
  try {
    blk->p = detail::allocate_block(bytes);
    owner = py::capsule(blk, give_back);
  } catch (...) {
    give_back(blk);  // free_block(nullptr, ..) does nothing
    throw;
  }
  return py::array_t<T>(dims, static_cast<T*>(blk->p), owner);
}

template <typename T>
const T* data_of(const py::array& a) {
  return static_cast<const T*>(a.data());
}
template <typename T>
const T* data_of(const std::optional<py::array>& a) {
  return a ? data_of<T>(*a) : nullptr;
}

template <typename T>
CellWeights<T> weights_of(const SeqInputs& in) {
  const PackStore<T>* packs;
  if constexpr (std::is_same_v<T, float>)
    packs = in.packs32;
  else
    packs = in.packs64;
  return {data_of<T>(in.W_ih), data_of<T>(in.W_hh), data_of<T>(in.b_ih),
          data_of<T>(in.b_hh), data_of<T>(in.W_hr), packs};
}

inline Schedule schedule_of(const SeqInputs& in, bool reverse) {
  return {in.d, in.lengths.empty() ? nullptr : in.lengths.data(), reverse};
}

// Calls f(T{}) with T = float or double, as x's dtype says.
template <typename F>
py::object with_dtype(const SeqInputs& in, F&& f) {
  if (is_float32(in.x)) return f(float{});
  return f(double{});
}

// Bytes a forward pass allocates (cell kind by G: 4 LSTM, 3 GRU, 1 dense):
// per row of T*B, y [P], and with a cache the gates [G*H] (none: dense) and
// the cell's own per-step state (LSTM c and, projected, o*tanh(c) [H] each;
// GRU hn [H]); plus weight copies and the input projection, which runs a
// chunk of steps (about 1 MiB) at a time per thread.
inline double forward_bytes(const SeqInputs& in, index_t G, bool keep_cache) {
  const Dims& d = in.d;
  const double GH = double(G) * double(d.H), IP = double(d.I + d.P);
  const double itemsize = is_float32(in.x) ? 4.0 : 8.0;
  double per_row = double(d.P), fixed = 2.0 * GH * IP;
  if (keep_cache) {
    const double state = G == 4 ? (in.W_hr ? 2.0 : 1.0) : G == 3 ? 1.0 : 0.0;
    per_row += (G == 1 ? 0.0 : GH) + state * double(d.H);  // dense: y is h
    fixed += GH * IP + double(d.P + d.B) * double(d.H) + double(d.B * d.P);
  }
  const double chunks = 2.0 * 1024 * 1024 * threads::num_threads();
  return itemsize * (double(d.T) * double(d.B) * per_row + fixed) + chunks;
}

// MemoryError naming the size when a forward pass would not fit.
inline void require_forward_memory(const char* fn, const SeqInputs& in,
                                   index_t G, bool keep_cache) {
  require_memory(fn, forward_bytes(in, G, keep_cache),
                 keep_cache ? "the outputs, workspace and cache for backward"
                            : "the outputs and workspace");
}

// Width of backward's extra [T*B, *] workspace beyond the gate gradients:
// a projected LSTM keeps the gradient reaching h, a reset-after GRU the
// gradient of its recurrent n pre-activation.
template <typename T>
index_t backward_extra_width(const SeqCache<T>&) {
  return 0;
}
template <typename T>
index_t backward_extra_width(const lstm::Cache<T>& c) {
  return c.projected() ? c.d.P : 0;
}
template <typename T>
index_t backward_extra_width(const gru::Cache<T>& c) {
  return c.reset_after ? c.d.H : 0;
}

// Bytes a backward pass allocates: dx [I] and the gate gradients [G*H] per
// row of T*B; the parameter gradients and [dW_ih | dW_hh] computed together.
template <typename CacheT>
double backward_bytes(const CacheT& c) {
  using T = typename CacheT::value_type;
  const Dims& d = c.d;
  const double GH = double(c.W_ih.size()) / double(d.I);
  // with lengths, masked copies of x and of the states before each step
  const double copies = c.lengths.empty() ? 0.0 : double(d.I + d.P);
  const double per_row = double(d.I) + GH + double(backward_extra_width(c)) + copies;
  const double fixed = 2.0 * GH * double(d.I + d.P + 1) + double(d.P) * double(d.H);
  return sizeof(T) * (double(d.T) * double(d.B) * per_row + fixed);
}

// A fingerprint of n bytes: four Fletcher-style sums of 64-bit words
// (a += w; b += a), so a changed word, or two swapped, changes it.  Fast
// (memory speed): it runs over x and y twice per training step.
inline std::uint64_t fingerprint(const void* data, std::size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  std::uint64_t a[4] = {1, 2, 3, 4}, b[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      std::uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      a[k] += w;
      b[k] += a[k];
    }
  for (; i < n; ++i) {
    a[0] += p[i];
    b[0] += a[0];
  }
  std::uint64_t h = n;
  for (int k = 0; k < 4; ++k)
    h = (h ^ a[k]) * 0x9E3779B97F4A7C15ull ^ (b[k] * 0xC2B2AE3D27D4EB4Full);
  return h;
}

inline std::uint64_t fingerprint(const py::array& a) {
  return fingerprint(a.data(), static_cast<std::size_t>(a.nbytes()));
}

// A cache as Python holds it.  The core's cache reads the forward's x and y
// in place; this keeps both arrays alive and a fingerprint of each, and
// backward refuses to run when either changed since (as PyTorch refuses a
// saved tensor modified in place): the gradients would be silently wrong.
template <typename CacheT>
struct Saved : CacheT {
  py::array x_array, y_array;
  std::uint64_t x_print = 0, y_print = 0;

  // After the forward pass that filled the cache wrote y.
  void keep(const py::array& x, const py::array& y) {
    x_array = x;
    y_array = y;
    py::gil_scoped_release nogil;
    x_print = fingerprint(x_array);
    y_print = fingerprint(y_array);
  }
  void require_unchanged(const char* fn, const char* forward_fn) const {
    bool x_same, y_same;
    {
      py::gil_scoped_release nogil;
      x_same = fingerprint(x_array) == x_print;
      y_same = fingerprint(y_array) == y_print;
    }
    const char* what = !x_same ? "x, the input" : !y_same ? "y, the output" : nullptr;
    if (what)
      fail_value(std::string(fn) + ": " + what + " of the " + forward_fn +
                 " call that made this cache, was modified in place after "
                 "it; backward reads it from there (nothing is copied), so "
                 "the gradients would be wrong. Run forward again, or give "
                 "forward a copy of an array you reuse.");
  }
};

// The cache returned by `forward_fn`, as a C++ reference, whichever dtype.
template <template <typename> class CacheT, typename F>
py::object with_cache(py::handle obj, const char* fn, const char* forward_fn,
                      F&& f) {
  if (obj.is_none())
    fail_value(std::string(fn) +
               ": cache is None: the forward pass ran with keep_cache=False "
               "and kept nothing to backpropagate through");
  auto run = [&](const auto& c) {
    c.require_unchanged(fn, forward_fn);
    require_memory(fn, backward_bytes(c), "the gradients and workspace");
    return f(c);
  };
  if (py::isinstance<Saved<CacheT<float>>>(obj))
    return run(obj.cast<const Saved<CacheT<float>>&>());
  if (py::isinstance<Saved<CacheT<double>>>(obj))
    return run(obj.cast<const Saved<CacheT<double>>&>());
  fail_type(std::string(fn) + ": cache must be a cache returned by " +
            forward_fn + ", got " + type_name(obj));
}

// The gradients backward returns, allocated before the GIL is released.
template <typename T>
struct GradArrays {
  py::array_t<T> dx, dW_ih, dW_hh;
  std::optional<py::array_t<T>> db_ih, db_hh;

  GradArrays(const SeqCache<T>& c, index_t G)
      : dx(new_array<T>({c.d.T, c.d.B, c.d.I})),
        dW_ih(new_array<T>({G * c.d.H, c.d.I})),
        dW_hh(new_array<T>({G * c.d.H, c.d.P})) {
    if (c.has_bias) {
      db_ih = new_array<T>({G * c.d.H});
      db_hh = new_array<T>({G * c.d.H});
    }
  }
  CellGrads<T> grads() {
    return {dW_ih.mutable_data(), dW_hh.mutable_data(),
            db_ih ? db_ih->mutable_data() : nullptr,
            db_hh ? db_hh->mutable_data() : nullptr};
  }
  // An optional gradient as an array or None.
  static py::object optional_array(const std::optional<py::array_t<T>>& b) {
    return b ? py::object(*b) : py::object(py::none());
  }
  // (dx, *states, dW_ih, dW_hh, db_ih, db_hh)
  template <typename... States>
  py::tuple result(const States&... states) const {
    return py::make_tuple(dx, states..., dW_ih, dW_hh, optional_array(db_ih),
                          optional_array(db_hh));
  }
};

// A gradient flowing into forward's outputs, or None: dy [T,B,P] when
// per_step, else a final state's [B, width]; checked against the cache.
template <typename T>
const T* grad_input(py::handle obj, const SeqCache<T>& c, const Arg& arg,
                    bool per_step, index_t width, const char* dims) {
  if (obj.is_none()) return nullptr;
  std::vector<index_t> shape{c.d.B, width};
  if (per_step) shape.insert(shape.begin(), c.d.T);
  py::array a = require_float(obj, arg, py::dtype::of<T>(), shape, dims);
  return data_of<T>(a);
}

// A cache's Python class: opaque, with its shape and size for inspection
// (nbytes: what it owns; it also keeps the forward's x and y alive).
template <typename CacheT>
void register_cache(py::module_& m, const char* name) {
  using T = typename CacheT::value_type;
  py::class_<CacheT, std::shared_ptr<CacheT>>(m, name)
      .def_property_readonly("dtype",
                             [](const CacheT&) { return py::dtype::of<T>(); })
      .def_property_readonly(
          "shape",
          [](const CacheT& c) {
            return py::make_tuple(c.d.T, c.d.B, c.d.I, c.d.H);
          },
          "(T, B, I, H) of the forward pass that made this cache")
      .def_property_readonly("proj_size", [](const CacheT& c) { return c.d.P; })
      .def_property_readonly("reverse", [](const CacheT& c) { return c.reverse; })
      .def_property_readonly("nbytes", [](const CacheT& c) { return c.nbytes(); })
      .def("__repr__", [name](const CacheT& c) {
        return std::string("<rnncore.") + name + " T=" + std::to_string(c.d.T) +
               " B=" + std::to_string(c.d.B) + " I=" + std::to_string(c.d.I) +
               " H=" + std::to_string(c.d.H) + ">";
      });
}

}  // namespace rnncore::bindings

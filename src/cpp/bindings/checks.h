// Every check on arrays that cross from Python into the core.  Each failure
// raises TypeError (wrong type or dtype) or ValueError (wrong rank, shape,
// layout or value) with a message naming the function, the argument, what was
// expected and what was received.  Nothing is converted silently.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>
#include <vector>

#include "rnncore/common.h"

namespace rnncore::bindings {

namespace py = pybind11;

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t k = 0; k < a.ndim(); ++k) {
    if (k) s += ", ";
    s += std::to_string(a.shape(k));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string dtype_str(const py::array& a) {
  return py::str(a.dtype()).cast<std::string>();
}

[[noreturn]] inline void fail_type(const std::string& msg) {
  throw py::type_error(msg);
}
[[noreturn]] inline void fail_value(const std::string& msg) {
  throw py::value_error(msg);
}

// Where a check happens: the public function and the argument.
struct Arg {
  const char* fn;
  const char* name;
  std::string what() const { return std::string(fn) + ": " + name; }
};

inline py::array require_ndarray(py::handle obj, const Arg& arg) {
  if (!py::isinstance<py::array>(obj))
    fail_type(arg.what() + " must be a numpy.ndarray, got " +
              py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  return py::reinterpret_borrow<py::array>(obj);
}

inline bool is_float32(const py::array& a) {
  return a.dtype().is(py::dtype::of<float>());
}
inline bool is_float64(const py::array& a) {
  return a.dtype().is(py::dtype::of<double>());
}

// A floating array of the given dtype (or, when dtype is empty, float32 or
// float64), C-contiguous, with the given shape.  `dims` names the shape in
// the documentation's letters, e.g. "[4H, H]".
inline py::array require_float(py::handle obj, const Arg& arg,
                               const std::optional<py::dtype>& dtype,
                               const std::vector<index_t>& shape,
                               const char* dims) {
  py::array a = require_ndarray(obj, arg);
  if (dtype) {
    if (!a.dtype().is(*dtype))
      fail_type(arg.what() + " has dtype " + dtype_str(a) + ", expected " +
                py::str(*dtype).cast<std::string>() +
                " like x (all arrays must share one dtype)");
  } else if (!is_float32(a) && !is_float64(a)) {
    fail_type(arg.what() + " must have dtype float32 or float64, got " +
              dtype_str(a));
  }
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (std::size_t k = 0; ok && k < shape.size(); ++k)
    ok = shape[k] < 0 || a.shape(static_cast<py::ssize_t>(k)) == shape[k];
  if (!ok) {
    std::string want = "(";
    for (std::size_t k = 0; k < shape.size(); ++k) {
      if (k) want += ", ";
      want += shape[k] < 0 ? std::string("*") : std::to_string(shape[k]);
    }
    want += shape.size() == 1 ? ",)" : ")";
    fail_value(arg.what() + " must have shape " + dims + " = " + want +
               ", got " + shape_str(a));
  }
  if (!(a.flags() & py::array::c_style))
    fail_value(arg.what() +
               " must be C-contiguous (pass numpy.ascontiguousarray(" +
               arg.name + "))");
  return a;
}

// Sizes must be positive (no empty batch, sequence or layer).
inline void require_positive(index_t n, const Arg& arg, const char* size) {
  if (n < 1)
    fail_value(arg.what() + " has " + size + " = " + std::to_string(n) +
               "; every dimension must be at least 1");
}

// lengths: None (every sequence has length T) or integers [B] in [1, T].
inline std::vector<index_t> read_lengths(py::handle obj, const char* fn,
                                         index_t T, index_t B) {
  const Arg arg{fn, "lengths"};
  std::vector<index_t> out;
  if (obj.is_none()) return out;
  // A list of ints is as exact as an array of them; anything that is not
  // integer is refused below.
  py::array a = py::module_::import("numpy").attr("asarray")(obj);
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    fail_type(arg.what() + " must hold integers, got dtype " + dtype_str(a));
  if (a.ndim() != 1 || a.shape(0) != B)
    fail_value(arg.what() + " must have shape [B] = (" + std::to_string(B) +
               ",), got " + shape_str(a));
  py::array_t<std::int64_t> v = a.attr("astype")("int64");
  out.assign(v.data(), v.data() + B);
  for (index_t b = 0; b < B; ++b)
    if (out[b] < 1 || out[b] > T)
      fail_value(arg.what() + "[" + std::to_string(b) + "] = " +
                 py::str(a[py::int_(b)]).cast<std::string>() +
                 " is out of range: every length must be in [1, T] = [1, " +
                 std::to_string(T) + "]");
  return out;
}

// The arguments of one layer-and-direction forward pass, checked together:
// x [T,B,I] fixes dtype, T, B and I; weight_hh [G*H, H] fixes H (or, for a
// projected LSTM, weight_hr [P, H] fixes P and H).
struct SeqInputs {
  py::dtype dtype;
  Dims d;
  py::array x, W_ih, W_hh;
  std::optional<py::array> b_ih, b_hh, W_hr;
  std::vector<std::optional<py::array>> states;  // h0 (and c0), may be None
  std::vector<index_t> lengths;
};

inline std::optional<py::array> optional_float(py::handle obj, const Arg& arg,
                                               const py::dtype& dtype,
                                               const std::vector<index_t>& shape,
                                               const char* dims) {
  if (obj.is_none()) return std::nullopt;
  return require_float(obj, arg, dtype, shape, dims);
}

// states: h0 (width P) then, for the LSTM, c0 (width H).  W_hr: the LSTM's
// projection [P, H] or None (then P = H); None for other cells.
inline SeqInputs parse_inputs(const char* fn, index_t G, py::handle x,
                              const std::vector<std::pair<const char*, py::handle>>& states,
                              py::handle W_ih, py::handle W_hh, py::handle b_ih,
                              py::handle b_hh, py::handle W_hr, py::handle lengths) {
  static const char* gate_dims[] = {"", "[H, I]", "", "[3H, I]", "[4H, I]"};
  static const char* hh_dims[] = {"", "[H, H]", "", "[3H, H]", "[4H, H]"};
  static const char* bias_dims[] = {"", "[H]", "", "[3H]", "[4H]"};
  SeqInputs in;
  in.x = require_float(x, {fn, "x"}, std::nullopt, {-1, -1, -1}, "[T, B, I]");
  in.dtype = in.x.dtype();
  in.d.T = in.x.shape(0);
  in.d.B = in.x.shape(1);
  in.d.I = in.x.shape(2);
  require_positive(in.d.T, {fn, "x"}, "T (axis 0)");
  require_positive(in.d.B, {fn, "x"}, "B (axis 1)");
  require_positive(in.d.I, {fn, "x"}, "I (axis 2)");

  const bool projected = !W_hr.is_none();
  if (projected) {
    in.W_hr = require_float(W_hr, {fn, "weight_hr"}, in.dtype, {-1, -1}, "[P, H]");
    in.d.P = in.W_hr->shape(0);
    in.d.H = in.W_hr->shape(1);
    require_positive(in.d.P, {fn, "weight_hr"}, "P (axis 0)");
    require_positive(in.d.H, {fn, "weight_hr"}, "H (axis 1)");
    require_float(W_hh, {fn, "weight_hh"}, in.dtype, {G * in.d.H, in.d.P}, "[4H, P]");
  } else {
    py::array hh = require_float(W_hh, {fn, "weight_hh"}, in.dtype, {-1, -1},
                                 hh_dims[G]);
    in.d.H = in.d.P = hh.shape(1);
    require_positive(in.d.H, {fn, "weight_hh"}, "H (axis 1)");
  }
  const index_t GH = G * in.d.H;
  in.W_hh = require_float(W_hh, {fn, "weight_hh"}, in.dtype, {GH, in.d.P},
                          projected ? "[4H, P]" : hh_dims[G]);
  in.W_ih = require_float(W_ih, {fn, "weight_ih"}, in.dtype, {GH, in.d.I},
                          gate_dims[G]);
  if (b_ih.is_none() != b_hh.is_none())
    fail_value(std::string(fn) +
               ": bias_ih and bias_hh must both be given or both be None");
  in.b_ih = optional_float(b_ih, {fn, "bias_ih"}, in.dtype, {GH}, bias_dims[G]);
  in.b_hh = optional_float(b_hh, {fn, "bias_hh"}, in.dtype, {GH}, bias_dims[G]);
  for (std::size_t k = 0; k < states.size(); ++k) {
    const bool cell_state = k == 1;
    in.states.push_back(optional_float(
        states[k].second, {fn, states[k].first}, in.dtype,
        {in.d.B, cell_state ? in.d.H : in.d.P},
        cell_state || !projected ? "[B, H]" : "[B, P]"));
  }
  in.lengths = read_lengths(lengths, fn, in.d.T, in.d.B);
  return in;
}

}  // namespace rnncore::bindings

// Every check on arrays that cross from Python into the core.  Each failure
// raises TypeError (wrong type or dtype) or ValueError (wrong rank, shape,
// layout or value) with a message naming the function, the argument, what was
// expected and what was received.  Nothing is converted silently.
//
// Sizes: the core indexes with 64-bit index_t, so no 32-bit limit applies;
// every element count is computed here with overflow checks, and a call
// whose arrays would not fit in the memory still available fails with a
// MemoryError naming the size before anything is allocated.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "rnncore/common.h"
#include "rnncore/packed.h"

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

inline std::string type_name(py::handle obj) {
  return py::str(py::type::of(obj).attr("__name__")).cast<std::string>();
}

// An ndarray (or a subclass such as numpy.memmap), but not a masked array,
// whose mask the kernels would silently ignore.
inline py::array require_ndarray(py::handle obj, const Arg& arg) {
  if (!py::isinstance<py::array>(obj))
    fail_type(arg.what() + " must be a numpy.ndarray, got " + type_name(obj));
  if (Py_TYPE(obj.ptr()) != py::detail::npy_api::get().PyArray_Type_ &&
      py::isinstance(obj, py::module_::import("numpy.ma").attr("MaskedArray")))
    fail_type(arg.what() + " is a numpy.ma.MaskedArray, whose mask would be "
              "ignored: pass " + arg.name + ".filled(0) (and lengths for "
              "variable-length sequences)");
  return py::reinterpret_borrow<py::array>(obj);
}

// Same type and byte order (numpy's equivalence: metadata does not count).
inline bool same_dtype(const py::dtype& a, const py::dtype& b) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.ptr(), b.ptr());
}
inline bool is_float32(const py::array& a) {
  return same_dtype(a.dtype(), py::dtype::of<float>());
}
inline bool is_float64(const py::array& a) {
  return same_dtype(a.dtype(), py::dtype::of<double>());
}

// " (byte order not native ...)" for a byte-swapped float array, else "".
inline std::string byte_order_hint(const py::array& a) {
  if (a.dtype().kind() != 'f' || a.dtype().byteorder() == '=' ||
      a.dtype().byteorder() == '|')
    return "";
  return " (non-native byte order: convert with a.astype(a.dtype.newbyteorder('=')))";
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
    if (!same_dtype(a.dtype(), *dtype))
      fail_type(arg.what() + " has dtype " + dtype_str(a) + ", expected " +
                py::str(*dtype).cast<std::string>() +
                " like x (all arrays must share one dtype)" +
                byte_order_hint(a));
  } else if (!is_float32(a) && !is_float64(a)) {
    fail_type(arg.what() + " must have dtype float32 or float64, got " +
              dtype_str(a) + byte_order_hint(a));
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
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    fail_value(arg.what() + " is not aligned to its dtype's size in memory "
               "(pass numpy.require(" + arg.name + ", requirements='CA'))");
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
  py::array a;
  try {
    a = py::module_::import("numpy").attr("asarray")(obj);
  } catch (py::error_already_set& e) {
    fail_type(arg.what() + " must be an array of integers [B]; converting " +
              type_name(obj) + " failed: " + type_name(e.value()) + ": " +
              py::str(e.value()).cast<std::string>());
  }
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

// --------------------------------------------------------------------------
// Sizes and memory
// --------------------------------------------------------------------------

// G*H and every [T,B,*] array of a call, in bytes, must be indexable by
// index_t.  (A weight of shape (0, n) holds nothing whatever n is, so sizes
// read from shapes can be anything.)
inline void require_indexable(const char* fn, const Dims& d, index_t G) {
  index_t GH = 0, n = 0;
  const bool overflow = __builtin_mul_overflow(G, d.H, &GH) ||
                        __builtin_mul_overflow(d.T, d.B, &n) ||
                        __builtin_mul_overflow(n, std::max({d.I, GH, d.P}), &n) ||
                        __builtin_mul_overflow(n, index_t(sizeof(double)), &n);
  if (overflow)
    fail_value(std::string(fn) + ": sizes T=" + std::to_string(d.T) +
               ", B=" + std::to_string(d.B) + ", I=" + std::to_string(d.I) +
               ", H=" + std::to_string(d.H) + ", P=" + std::to_string(d.P) +
               " overflow 64-bit indexing");
}

// A number from a one-line file (cgroup limits), or infinity when the file
// is missing or says "max".
inline double read_limit(const char* path) {
  std::ifstream f(path);
  double v = 0;
  return f >> v ? v : std::numeric_limits<double>::infinity();
}

// Bytes this process can still allocate without swapping or hitting its
// container's limit: Linux's MemAvailable (else the free physical pages),
// capped by a cgroup v2 or v1 memory limit; infinity when nothing is known.
inline double available_memory() {
  double avail = std::numeric_limits<double>::infinity();
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  double kib = 0;
  bool found = false;
  while (!found && meminfo >> key >> kib && std::getline(meminfo, unit))
    found = key == "MemAvailable:";
  if (found) {
    avail = kib * 1024.0;
  } else {
#ifdef _SC_AVPHYS_PAGES
    avail = double(sysconf(_SC_AVPHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
#endif
  }
  const std::pair<const char*, const char*> cgroups[] = {
      {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
      {"/sys/fs/cgroup/memory/memory.limit_in_bytes",
       "/sys/fs/cgroup/memory/memory.usage_in_bytes"}};
  for (const auto& [limit_file, usage_file] : cgroups) {
    const double limit = read_limit(limit_file);
    if (limit < 0x1p60) {  // v1 writes "no limit" as about 2^63
      avail = std::min(avail, std::max(0.0, limit - read_limit(usage_file)));
      break;
    }
  }
  return avail;
}

// "7.5 TiB (8192268435456 bytes)".
inline std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  double v = bytes;
  for (; v >= 1024.0 && u < 6; ++u) v /= 1024.0;
  char buf[128];
  if (u)
    std::snprintf(buf, sizeof buf, "%.1f %s (%.0f bytes)", v, units[u], bytes);
  else
    std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
  return buf;
}

// Requests below this are not checked: reading the system's counters would
// cost more than small calls themselves.
constexpr double kMemoryCheckFloor = 64.0 * 1024 * 1024;

// MemoryError, before anything is allocated, when `bytes` (what `what`
// needs) exceed the memory available.
inline void require_memory(const char* fn, double bytes, const std::string& what) {
  if (bytes < kMemoryCheckFloor) return;
  const double avail = available_memory();
  if (bytes <= avail) return;
  const std::string msg = std::string(fn) + ": " + what + " need " +
                          format_bytes(bytes) + ", but only " +
                          format_bytes(avail) + " of memory is available";
  PyErr_SetString(PyExc_MemoryError, msg.c_str());
  throw py::error_already_set();
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
  // The packed weights' store when the weights come from a PackedWeights
  // (bindings/packed.h), for the dtype of x; else null.
  const PackStore<float>* packs32 = nullptr;
  const PackStore<double>* packs64 = nullptr;
};

inline std::optional<py::array> optional_float(py::handle obj, const Arg& arg,
                                               const py::dtype& dtype,
                                               const std::vector<index_t>& shape,
                                               const char* dims) {
  if (obj.is_none()) return std::nullopt;
  return require_float(obj, arg, dtype, shape, dims);
}

// The weights of a G-gate cell into `in` (whose dtype and d.I, the width
// of x, are set; d.I < 0: W_ih's own width): shapes in PyTorch's layout.
// W_hr: the LSTM's projection [P, H] or None (then P = H); None for other
// cells.
inline void parse_weights(const char* fn, index_t G, SeqInputs& in,
                          py::handle W_ih, py::handle W_hh, py::handle b_ih,
                          py::handle b_hh, py::handle W_hr) {
  static const char* gate_dims[] = {"", "[H, I]", "", "[3H, I]", "[4H, I]"};
  static const char* hh_dims[] = {"", "[H, H]", "", "[3H, H]", "[4H, H]"};
  static const char* bias_dims[] = {"", "[H]", "", "[3H]", "[4H]"};
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
  if (in.d.I < 0) {
    in.d.I = require_float(W_ih, {fn, "weight_ih"}, in.dtype, {-1, -1},
                           gate_dims[G]).shape(1);
    require_positive(in.d.I, {fn, "weight_ih"}, "I (axis 1)");
  }
  require_indexable(fn, in.d, G);
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
}

// states: h0 (width P) then, for the LSTM, c0 (width H).
inline SeqInputs parse_inputs(const char* fn, index_t G, py::handle x,
                              const std::vector<std::pair<const char*, py::handle>>& states,
                              py::handle W_ih, py::handle W_hh, py::handle b_ih,
                              py::handle b_hh, py::handle W_hr, py::handle lengths) {
  SeqInputs in;
  in.x = require_float(x, {fn, "x"}, std::nullopt, {-1, -1, -1}, "[T, B, I]");
  in.dtype = in.x.dtype();
  in.d.T = in.x.shape(0);
  in.d.B = in.x.shape(1);
  in.d.I = in.x.shape(2);
  require_positive(in.d.T, {fn, "x"}, "T (axis 0)");
  require_positive(in.d.B, {fn, "x"}, "B (axis 1)");
  require_positive(in.d.I, {fn, "x"}, "I (axis 2)");
  parse_weights(fn, G, in, W_ih, W_hh, b_ih, b_hh, W_hr);
  const bool projected = in.W_hr.has_value();
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

// Private bindings: the GEMM on NumPy matrices (_gemm, threaded, used by
// rnncore.nn.Linear) and, for tests and benchmarks, the GEMM entry points
// and the micro-kernels.  Matrices may be strided views (row
// stride = lda/ldb/ldc) but their columns must be contiguous.  Products
// write into the given C in place; `repeat` reruns them (for benchmarks).
#include <pybind11/stl.h>

#include "bindings/checks.h"
#include "cells/sequence.h"
#include "dispatch/dispatch.h"
#include "rnncore/cache.h"
#include "rnncore/gemm.h"

namespace rnncore::bindings {
namespace {

using gemm::Trans;

// A 2-D array of T with contiguous columns, as pointer and row stride.
template <typename T>
struct Matrix {
  index_t rows, cols, ld;
  T* p;
};

template <typename T>
Matrix<T> matrix(py::handle obj, const Arg& arg, bool writable = false) {
  py::array a = require_ndarray(obj, arg);
  if (!a.dtype().is(py::dtype::of<T>()))
    fail_type(arg.what() + " has dtype " + dtype_str(a) + ", expected " +
              py::str(py::dtype::of<T>()).cast<std::string>() + " like C");
  if (a.ndim() != 2)
    fail_value(arg.what() + " must be 2-D, got shape " + shape_str(a));
  const index_t rows = a.shape(0), cols = a.shape(1);
  if (writable && !a.writeable())
    fail_value(arg.what() + " must be writeable");
  const index_t item = sizeof(T), s0 = a.strides(0), s1 = a.strides(1);
  // Strides of an empty array or of a single row or column do not matter.
  const index_t dense = std::max<index_t>(cols, 1);
  if (rows == 0 || cols == 0) return {rows, cols, dense, nullptr};
  if (cols > 1 && s1 != item)
    fail_value(arg.what() + " must have contiguous columns");
  if (rows > 1 && (s0 % item != 0 || s0 / item < cols))
    fail_value(arg.what() + " must have a row stride >= its width");
  const index_t ld = rows > 1 ? s0 / item : dense;
  // Only C (writable, checked above) is ever written through p.
  return {rows, cols, ld, const_cast<T*>(static_cast<const T*>(a.data()))};
}

Trans trans(const std::string& t, const Arg& arg) {
  if (t == "N") return Trans::N;
  if (t == "T") return Trans::T;
  fail_value(arg.what() + " must be 'N' or 'T', got '" + t + "'");
}

// Calls f(T{}) with T = float or double, as C's dtype says.
template <typename F>
auto with_dtype_of(py::handle c, const Arg& arg, F&& f) {
  const py::array a = require_ndarray(c, arg);
  if (is_float32(a)) return f(float{});
  if (is_float64(a)) return f(double{});
  fail_type(arg.what() + " must have dtype float32 or float64, got " +
            dtype_str(a));
}

void require_shape(bool ok, const char* fn, const std::string& what) {
  if (!ok) fail_value(std::string(fn) + ": " + what);
}

// C = alpha op(A) op(B) + beta C in place: `threaded` splits it over the
// pool (cells::parallel_gemm, what the layers use), else one gemm::gemm
// call on this thread, `repeat` times.
void run_gemm(const char* fn, bool threaded, const std::string& ta,
              const std::string& tb, double alpha, py::handle A, py::handle B,
              double beta, py::handle C, int repeat) {
  with_dtype_of(C, {fn, "C"}, [&](auto tag) {
    using T = decltype(tag);
    const Trans ta_ = trans(ta, {fn, "ta"}), tb_ = trans(tb, {fn, "tb"});
    const auto a = matrix<T>(A, {fn, "A"}), b = matrix<T>(B, {fn, "B"});
    const auto c = matrix<T>(C, {fn, "C"}, true);
    const index_t M = c.rows, N = c.cols;
    const index_t K = ta_ == Trans::N ? a.cols : a.rows;
    require_shape((ta_ == Trans::N ? a.rows : a.cols) == M, fn,
                  "op(A) must have M = C.shape[0] rows");
    require_shape((tb_ == Trans::N ? b.rows : b.cols) == K &&
                      (tb_ == Trans::N ? b.cols : b.rows) == N,
                  fn, "op(B) must have shape [K, N]");
    py::gil_scoped_release release;
    for (int r = 0; r < repeat; ++r)
      if (threaded)
        cells::parallel_gemm<T>(ta_, tb_, M, N, K, T(alpha), a.p, a.ld, b.p,
                                b.ld, T(beta), c.p, c.ld);
      else
        gemm::gemm<T>(ta_, tb_, M, N, K, T(alpha), a.p, a.ld, b.p, b.ld,
                      T(beta), c.p, c.ld);
    return 0;
  });
}

void testing_gemm(const std::string& ta, const std::string& tb, double alpha,
                  py::handle A, py::handle B, double beta, py::handle C,
                  int repeat) {
  run_gemm("_testing_gemm", false, ta, tb, alpha, A, B, beta, C, repeat);
}

void threaded_gemm(const std::string& ta, const std::string& tb, double alpha,
                   py::handle A, py::handle B, double beta, py::handle C) {
  run_gemm("_gemm", true, ta, tb, alpha, A, B, beta, C, 1);
}

// pack_b once, gemm_packed many times.
class TestingPackedB {
 public:
  TestingPackedB(const std::string& tb, py::handle B) {
    const char* fn = "_TestingPackedB";
    dtype_ = require_ndarray(B, {fn, "B"}).dtype();
    with_dtype_of(B, {fn, "B"}, [&](auto tag) {
      using T = decltype(tag);
      const Trans t = trans(tb, {fn, "tb"});
      const auto b = matrix<T>(B, {fn, "B"});
      const index_t K = t == Trans::N ? b.rows : b.cols;
      const index_t N = t == Trans::N ? b.cols : b.rows;
      gemm::pack_b<T>(t, K, N, b.p, b.ld, packed<T>());
      return 0;
    });
  }

  template <typename T>
  gemm::PackedB<T>& packed() {
    if constexpr (std::is_same_v<T, float>)
      return f32_;
    else
      return f64_;
  }

  py::tuple shape() const {
    return is_float32() ? py::make_tuple(f32_.rows(), f32_.cols())
                        : py::make_tuple(f64_.rows(), f64_.cols());
  }
  index_t panel_width() const {
    return is_float32() ? f32_.panel_width() : f64_.panel_width();
  }

  void matmul(double alpha, py::handle A, double beta, py::handle C,
              index_t n0, std::optional<index_t> n1, int repeat,
              bool alternate, bool whole_a) {
    const char* fn = "_TestingPackedB.matmul";
    with_dtype_of(C, {fn, "C"}, [&](auto tag) {
      using T = decltype(tag);
      if (!py::dtype::of<T>().is(dtype_))
        fail_type(std::string(fn) + ": C must have the dtype of B");
      gemm::PackedB<T>& b = packed<T>();
      const auto a = matrix<T>(A, {fn, "A"});
      const auto c = matrix<T>(C, {fn, "C"}, true);
      require_shape(a.cols == b.rows() && a.rows == c.rows &&
                        c.cols == b.cols(),
                    fn, "A must be [M, K] and C [M, N] for B [K, N]");
      const index_t end = n1.value_or(b.cols());
      std::vector<T> room(whole_a ? std::size_t(a.rows * a.cols) : 0);
      py::gil_scoped_release release;
      for (int r = 0; r < repeat; ++r)
        gemm::gemm_packed<T>(a.rows, T(alpha), a.p, a.ld, b, n0, end, T(beta),
                             c.p, c.ld, alternate && r % 2 == 1,
                             whole_a ? room.data() : nullptr);
      return 0;
    });
  }

 private:
  bool is_float32() const { return dtype_.is(py::dtype::of<float>()); }
  py::dtype dtype_;
  gemm::PackedB<float> f32_;
  gemm::PackedB<double> f64_;
};

// The micro-kernel of `isa` on panels a [k, m] and b [k, NR] (layout in
// kernels/kernel_table.h), updating C[:m, :n].
void testing_ukernel(const std::string& isa, index_t m, index_t n,
                     double alpha, py::handle a_panel, py::handle b_panel,
                     double beta, py::handle C) {
  const char* fn = "_testing_ukernel";
  with_dtype_of(C, {fn, "C"}, [&](auto tag) {
    using T = decltype(tag);
    const kernels::GemmKernels<T>& uk = dispatch::table(isa).gemm<T>();
    const auto a = matrix<T>(a_panel, {fn, "a"}), b = matrix<T>(b_panel, {fn, "b"});
    const auto c = matrix<T>(C, {fn, "C"}, true);
    require_shape(1 <= m && m <= uk.mr && 0 <= n && n <= uk.nr &&
                      m <= c.rows && n <= c.cols,
                  fn, "need 1 <= m <= MR, 0 <= n <= NR, C at least [m, n]");
    require_shape(a.cols == m && a.ld == m && b.cols == uk.nr &&
                      b.ld == uk.nr && a.rows == b.rows,
                  fn, "a must be contiguous [k, m] and b [k, NR]");
    uk.ukernel(m, n, a.rows, T(alpha), a.p, b.p, T(beta), c.p, c.ld);
    return 0;
  });
}

// The in-place-rows micro-kernel of `isa` (narrow: the narrow tile) on the
// rows of A [m, k] where they are (any row stride) and a panel b [k, width]
// (width NR, or the narrow NR), updating C[:m, :n].
void testing_ukernel_rows(const std::string& isa, bool narrow, index_t m,
                          index_t n, double alpha, py::handle A,
                          py::handle b_panel, double beta, py::handle C) {
  const char* fn = "_testing_ukernel_rows";
  with_dtype_of(C, {fn, "C"}, [&](auto tag) {
    using T = decltype(tag);
    const kernels::GemmKernels<T>& uk = dispatch::table(isa).gemm<T>();
    const index_t nr = narrow ? uk.nr_narrow : uk.nr;
    const auto a = matrix<T>(A, {fn, "a"}), b = matrix<T>(b_panel, {fn, "b"});
    const auto c = matrix<T>(C, {fn, "C"}, true);
    require_shape(1 <= m && m <= uk.mr && 0 <= n && n <= nr && m <= c.rows &&
                      n <= c.cols && a.rows == m,
                  fn, "need 1 <= m <= MR, 0 <= n <= the panel width, a [m, k], "
                      "C at least [m, n]");
    require_shape(b.cols == nr && b.ld == nr && a.cols == b.rows, fn,
                  "b must be a contiguous [k, width] panel");
    (narrow ? uk.ukernel_rows_narrow : uk.ukernel_rows)(
        m, n, b.rows, T(alpha), a.p, a.ld, b.p, T(beta), c.p, c.ld);
    return 0;
  });
}

// The products of one 1-D array with W (2-D, contiguous rows), for the
// GEMV tests: gemv(w, in, out) with in [in_len] and out [out_len] 1-D,
// contiguous, of out's dtype; the GIL released.
template <typename Gemv>
void testing_gemv(const char* fn, py::handle W, py::handle in, py::handle out,
                  bool transposed, Gemv&& gemv) {
  with_dtype_of(out, {fn, "y"}, [&](auto tag) {
    using T = decltype(tag);
    const auto w = matrix<T>(W, {fn, "W"});
    py::array ia = require_ndarray(in, {fn, "x"}), oa = require_ndarray(out, {fn, "y"});
    const index_t in_len = transposed ? w.cols : w.rows;
    const index_t out_len = transposed ? w.rows : w.cols;
    require_shape(ia.ndim() == 1 && oa.ndim() == 1 && ia.shape(0) == in_len &&
                      oa.shape(0) == out_len && ia.dtype().is(oa.dtype()) &&
                      (ia.flags() & py::array::c_style) &&
                      (oa.flags() & py::array::c_style) && oa.writeable(),
                  fn, "the input must match W, the output be writable, both "
                      "1-D contiguous of W's dtype");
    const T* ip = static_cast<const T*>(ia.data());
    T* op = static_cast<T*>(oa.mutable_data());
    py::gil_scoped_release release;
    gemv(w, ip, op);
    return 0;
  });
}

// y[r] = W[r, :] . x through gemm::gemv_t (y overwritten).
void testing_gemv_t(py::handle W, py::handle x, py::handle y, bool reverse) {
  testing_gemv("_testing_gemv_t", W, x, y, true, [&](const auto& w, auto xp, auto yp) {
    gemm::gemv_t(w.rows, w.cols, w.p, w.ld, xp, yp, reverse);
  });
}

// y = beta y + a W through gemm::gemv_n.
void testing_gemv_n(py::handle W, py::handle a, double beta, py::handle y) {
  testing_gemv("_testing_gemv_n", W, a, y, false, [&](const auto& w, auto ap, auto yp) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(ap)>>;
    gemm::gemv_n(w.rows, w.cols, w.p, w.ld, ap, T(beta), yp);
  });
}

// gemm::reads_b_in_place for gemm(N, T) of A [M, K] times B^T (B [N, K]).
bool testing_reads_b_in_place(index_t M, py::handle B) {
  const char* fn = "_testing_reads_b_in_place";
  bool result = false;
  with_dtype_of(B, {fn, "B"}, [&](auto tag) {
    using T = decltype(tag);
    const auto b = matrix<T>(B, {fn, "B"});
    result = gemm::reads_b_in_place<T>(M, b.rows, b.cols, b.p, b.ld);
    return 0;
  });
  return result;
}

// {"float32": (MR, NR, narrow NR), "float64": (..)} of `isa`'s micro-kernels.
py::dict testing_ukernel_shapes(const std::string& isa) {
  const kernels::KernelTable& t = dispatch::table(isa);
  py::dict shapes;
  shapes["float32"] = py::make_tuple(t.f32.mr, t.f32.nr, t.f32.nr_narrow);
  shapes["float64"] = py::make_tuple(t.f64.mr, t.f64.nr, t.f64.nr_narrow);
  return shapes;
}

}  // namespace

void register_testing(py::module_& m) {
  m.def("_testing_fuse_products",
        [](bool on) { cells::fuse_products.store(on); }, py::arg("on"),
        "Tests only: whether batch-1 and -2 time loops run the fused step kernel "
        "(off: the same chunks, products one after the other).");
  m.def("_testing_fused_chunks", [] { return cells::fused_chunks.load(); },
        "Tests only: how many chunks the fused step kernel has made so far "
        "in this process.");
  m.def("_testing_fused_tile_rows",
        [](const std::string& dtype, index_t m, index_t ki) {
          if (dtype != "float32" && dtype != "float64")
            fail_value("dtype must be 'float32' or 'float64'");
          return dtype == "float32" ? gemm::fused_tile_rows<float>(m, ki)
                                    : gemm::fused_tile_rows<double>(m, ki);
        },
        py::arg("dtype"), py::arg("m"), py::arg("ki"),
        "Tests only: the rows of a fused step's projection tile at batch m "
        "with rows of x of ki values (gemm::fused_tile_rows).");
  m.def("_testing_fail_steppers",
        [](int n) { cells::fail_next_steppers.store(n); },
        py::arg("n"),
        "The next n per-thread stepper builds of a time loop throw "
        "std::bad_alloc (MemoryError), as a failed allocation would.");
  m.def("_gemm", &threaded_gemm, py::arg("ta"), py::arg("tb"),
        py::arg("alpha"), py::arg("A"), py::arg("B"), py::arg("beta"),
        py::arg("C"),
        "C = alpha op(A) op(B) + beta C in place on rnncore's threads (the "
        "GIL released); A, B, C 2-D of C's dtype with contiguous rows. "
        "Used by rnncore.nn.Linear, so that no other BLAS runs threads "
        "beside rnncore's pool.");
  m.def("_testing_gemm", &testing_gemm, py::arg("ta"), py::arg("tb"),
        py::arg("alpha"), py::arg("A"), py::arg("B"), py::arg("beta"),
        py::arg("C"), py::arg("repeat") = 1,
        "C = alpha op(A) op(B) + beta C in place through gemm::gemm");
  py::class_<TestingPackedB>(m, "_TestingPackedB")
      .def(py::init<const std::string&, py::handle>(), py::arg("tb"),
           py::arg("B"), "op(B) [K, N] packed by gemm::pack_b")
      .def_property_readonly("shape", &TestingPackedB::shape)
      .def_property_readonly("panel_width", &TestingPackedB::panel_width)
      .def("matmul", &TestingPackedB::matmul, py::arg("alpha"), py::arg("A"),
           py::arg("beta"), py::arg("C"), py::arg("n0") = 0,
           py::arg("n1") = py::none(), py::arg("repeat") = 1,
           py::arg("alternate") = false, py::arg("whole_a") = false,
           "C[:, n0:n1] = alpha A op(B)[:, n0:n1] + beta C[:, n0:n1] in "
           "place through gemm::gemm_packed, `repeat` times (with "
           "`alternate`, every other time with reverse=true; with "
           "`whole_a`, given room to pack all of A once)");
  m.def("_testing_ukernel", &testing_ukernel, py::arg("isa"), py::arg("m"),
        py::arg("n"), py::arg("alpha"), py::arg("a"), py::arg("b"),
        py::arg("beta"), py::arg("C"));
  m.def("_testing_ukernel_rows", &testing_ukernel_rows, py::arg("isa"),
        py::arg("narrow"), py::arg("m"), py::arg("n"), py::arg("alpha"),
        py::arg("a"), py::arg("b"), py::arg("beta"), py::arg("C"));
  m.def("_testing_pool_cached_bytes", &detail::pool_cached_bytes,
        "bytes the block pool holds for reuse");
  m.def("_testing_pool_release", &detail::pool_release,
        "frees every block the block pool holds");
  m.def("_testing_pool_blocks",
        [](std::size_t bytes, int count) {
          // Takes `count` blocks of `bytes`, gives them all back, and
          // returns their addresses (blocks reused show up again).
          std::vector<std::uintptr_t> where;
          where.reserve(std::size_t(std::max(count, 0)));
          auto give_back = [&] {
            for (std::uintptr_t p : where)
              detail::free_block(reinterpret_cast<void*>(p), bytes);
          };
          try {
            for (int i = 0; i < count; ++i)
              where.push_back(reinterpret_cast<std::uintptr_t>(
                  detail::allocate_block(bytes)));
          } catch (...) {
            give_back();
            throw;
          }
          give_back();
          return where;
        },
        py::arg("bytes"), py::arg("count") = 1);
  m.def("_testing_pool_limits", [] {
    return py::make_tuple(detail::kPoolMinBytes, detail::kPoolCapBytes);
  });
  m.def("_testing_reads_b_in_place", &testing_reads_b_in_place, py::arg("M"),
        py::arg("B"),
        "whether gemm(N, T) of M rows times B^T reads B's rows in place");
  m.def("_testing_ukernel_shapes", &testing_ukernel_shapes, py::arg("isa"));
  m.def("_testing_gemv_t", &testing_gemv_t, py::arg("W"), py::arg("x"),
        py::arg("y"), py::arg("reverse") = false,
        "y = W x through gemm::gemv_t (the batch-1 product, W unpacked)");
  m.def("_testing_gemv_n", &testing_gemv_n, py::arg("W"), py::arg("a"),
        py::arg("beta"), py::arg("y"),
        "y = beta y + a W through gemm::gemv_n (the backward's batch-1 "
        "product, W unpacked)");
}

}  // namespace rnncore::bindings

// The portable reference micro-kernel: plain C++, built on every platform.
// It is the fallback when no ISA kernel applies and the oracle the ISA
// kernels are tested against.  Contract and panel layout:
// src/cpp/kernels/kernel_table.h.
//
// Tiles: MR = 4 rows by NR = 16 bytes * 2 / sizeof(T) columns (two 128-bit
// vectors per row, the SSE2/NEON baseline: 4x8 fp32, 4x4 fp64), so a
// compiler that vectorises the j loops keeps the accumulators in registers;
// the narrow tile is NR / 2 wide (every element summed alike either way).
#include "gemm/pack.h"
#include "kernels/kernel_table.h"

namespace rnncore::kernels {
namespace {

// Ã element (i, p) at a[p*m + i] (packed) or a[i*lda + p] (in place).
template <typename T, int MR, int NR>
void ukernel_ref_any(index_t m, index_t n, index_t k, T alpha, const T* a,
                     index_t lda, const T* b, T beta, T* c, index_t ldc) {
  const index_t si = lda ? lda : 1, sp = lda ? 1 : m;
  T acc[MR][NR] = {};
  for (index_t p = 0; p < k; ++p)
    for (index_t i = 0; i < m; ++i)
      for (int j = 0; j < NR; ++j)
        acc[i][j] += a[i * si + p * sp] * b[p * NR + j];
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      T& cij = c[i * ldc + j];
      cij = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * cij;
    }
}

template <typename T, int MR, int NR>
void ukernel_ref(index_t m, index_t n, index_t k, T alpha, const T* a,
                 const T* b, T beta, T* c, index_t ldc) {
  ukernel_ref_any<T, MR, NR>(m, n, k, alpha, a, 0, b, beta, c, ldc);
}

template <typename T, int MR, int NR>
void ukernel_ref_rows(index_t m, index_t n, index_t k, T alpha, const T* a,
                      index_t lda, const T* b, T beta, T* c, index_t ldc) {
  ukernel_ref_any<T, MR, NR>(m, n, k, alpha, a, lda, b, beta, c, ldc);
}

// Plain dot products, p in order (every row alike, blocks or not).
template <typename T>
void gemv_t_ref(index_t rows, index_t k, const T* W, index_t ldw, const T* x,
                T* y, bool reverse) {
  for (index_t q = 0; q < rows; ++q) {
    const index_t r = reverse ? rows - 1 - q : q;
    T s = T(0);
    for (index_t p = 0; p < k; ++p) s += W[r * ldw + p] * x[p];
    y[r] = s;
  }
}

template <typename T>
void gemv_n_ref(index_t rows, index_t n, const T* W, index_t ldw, const T* a,
                T beta, T* y) {
  for (index_t j = 0; j < n; ++j) {
    T s = T(0);
    for (index_t r = 0; r < rows; ++r) s += a[r] * W[r * ldw + j];
    y[j] = beta == T(0) ? s : beta * y[j] + s;
  }
}

template <typename T>
GemmKernels<T> reference_kernels() {
  constexpr int MR = 4, NR = 32 / sizeof(T);
  return {MR,
          NR,
          &ukernel_ref<T, MR, NR>,
          &ukernel_ref_rows<T, MR, NR>,
          &gemm::pack_t_scalar<T>,
          &gemv_t_ref<T>,
          &gemv_n_ref<T>,
          NR / 2,
          &ukernel_ref_rows<T, MR, NR / 2>};
}

}  // namespace

void fill_gemm_reference(KernelTable& t) {
  t.f32 = reference_kernels<float>();
  t.f64 = reference_kernels<double>();
}

}  // namespace rnncore::kernels

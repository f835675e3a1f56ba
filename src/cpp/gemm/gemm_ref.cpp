// Plain, correct matrix product behind gemm.h.  Loops are ordered so the
// innermost one walks contiguous memory of B and C (or of A and B for the
// dot-product form); accumulation is in T.
#include <algorithm>

#include "rnncore/gemm.h"

namespace rnncore::gemm {

template <typename T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha,
          const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C,
          index_t ldc) {
  for (index_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + N, T(0));
    else if (beta != T(1))
      for (index_t j = 0; j < N; ++j) c[j] *= beta;
  }
  if (M == 0 || N == 0 || K == 0) return;

  if (tb == Trans::T && ta == Trans::N) {
    // C[i,j] += alpha * dot(A[i,:], B[j,:])
    for (index_t i = 0; i < M; ++i)
      for (index_t j = 0; j < N; ++j) {
        const T* a = A + i * lda;
        const T* b = B + j * ldb;
        T sum = T(0);
        for (index_t k = 0; k < K; ++k) sum += a[k] * b[k];
        C[i * ldc + j] += alpha * sum;
      }
    return;
  }
  // C[i,:] += alpha * op(A)[i,k] * op(B)[k,:]
  for (index_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (index_t k = 0; k < K; ++k) {
      const T a = alpha * (ta == Trans::N ? A[i * lda + k] : A[k * lda + i]);
      if (tb == Trans::N) {
        const T* b = B + k * ldb;
        for (index_t j = 0; j < N; ++j) c[j] += a * b[j];
      } else {
        for (index_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + k];
      }
    }
  }
}

template void gemm<float>(Trans, Trans, index_t, index_t, index_t, float,
                          const float*, index_t, const float*, index_t, float,
                          float*, index_t);
template void gemm<double>(Trans, Trans, index_t, index_t, index_t, double,
                           const double*, index_t, const double*, index_t,
                           double, double*, index_t);

}  // namespace rnncore::gemm

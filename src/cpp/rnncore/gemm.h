// The one matrix product every cell uses.  Row-major, BLAS-like:
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]
//
// op(X) is X or X^T; lda/ldb/ldc are row strides in elements.  When
// beta == 0, C is never read (it may hold NaN or garbage).  M, N or K may be
// zero.  Implemented for float and double.
#pragma once

#include "rnncore/common.h"

namespace rnncore::gemm {

enum class Trans { N, T };

template <typename T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha,
          const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C,
          index_t ldc);

}  // namespace rnncore::gemm

// The kernel table: every ISA-specific routine rnncore calls, as function
// pointers.  Each ISA fills its part from its own translation unit (compiled
// with that ISA's flags, see CMakeLists.txt); src/cpp/dispatch picks one
// table at run time.  Other parts of the engine grow this struct with their
// own kernel families (e.g. point-wise gates) next to `f32` / `f64`.
#pragma once

#include <cstddef>
#include <type_traits>

#include "kernels/gates.h"
#include "rnncore/common.h"
#include "rnncore/gemm.h"

namespace rnncore::kernels {

// ---------------------------------------------------------------------------
// The GEMM micro-kernel contract
//
//   C[m,n] = alpha * Ã[m,k] * B̃[k,n] + beta * C[m,n],   1 <= m <= MR, 0 <= n <= NR
//
// Ã and B̃ are packed micro-panels (portable packing in src/cpp/gemm/pack.h):
//
//   Ã: m x k, stored column by column          B̃: k x NR, stored row by row
//      a[p*m + i] = A[i, p]                        b[p*NR + j] = B[p, j]
//
//            p=0  p=1   p=2                                j=0 j=1 ... j=NR-1
//      i=0  [ 0    m    2m   ...]                 p=0  [ 0   1   ...  NR-1 ]
//      i=1  [ 1    m+1  2m+1 ...]                 p=1  [ NR  NR+1 ... 2NR-1]
//      ...                                        p=2  [ 2NR ...           ]
//      i=m-1[ m-1  2m-1 3m-1 ...]                 ...
//
//   so step p of the k loop reads m consecutive values of Ã (broadcast one
//   by one) and NR consecutive values of B̃ (NR / vector-width full vector
//   loads): both panels are walked strictly forwards, once.  Ã has exactly
//   m rows (a short edge tile, e.g. the GEMV m = 1, wastes no cache on
//   padding); B̃ always has NR columns.
//
// Edge tiles: columns n..NR-1 of B̃ are padding (the packing routines zero
// them); a kernel may read them, but only C[0:m, 0:n] is ever loaded or
// stored.  C is addressed as c[i*ldc + j] (row-major, any ldc >= n).  When
// beta == 0, C is never read: NaN in C does not propagate.  k may be 0
// (then C = beta * C, or zeros).  Panels and C need no alignment.
// ---------------------------------------------------------------------------
template <typename T>
using UKernel = void (*)(index_t m, index_t n, index_t k, T alpha, const T* a,
                         const T* b, T beta, T* c, index_t ldc);

// The same product with Ã read in place from a row-major A: A[i, p] at
// a[i*lda + p], no packing (the driver uses it for short rows, see
// gemm.cpp).  Every element is summed exactly as by the packed kernel.
template <typename T>
using UKernelRows = void (*)(index_t m, index_t n, index_t k, T alpha,
                             const T* a, index_t lda, const T* b, T beta,
                             T* c, index_t ldc);

// The transposing pack: one panel of `len` lines of `width` values whose
// lines are columns of the source (row stride ld, unit column stride):
//
//   dst[l*width + q] = src[q*ld + l]   for q < w,   0 for w <= q < width,
//
// for l < len, 1 <= w <= width.  It packs Ã from a row-major A (op(A) = A:
// q = row i, l = column p, width = m) and B̃ from a row-major B read
// transposed (op(B) = B^T: q = column j, l = row p, width = NR).  The
// other packs copy contiguous lines and are portable (gemm/pack.h).  ISA
// versions transpose W x W blocks in registers (W = vector width); the
// reference is the scalar loop.  Both write the same values.
template <typename T>
using PackT = void (*)(const T* src, index_t ld, index_t w, index_t width,
                       index_t len, T* dst);

// The batch-1 product read straight from a row-major W, no packing:
//
//   y[r] = sum_p W[r*ldw + p] * x[p]   for r < rows   (y is overwritten)
//
// Rows are summed in blocks of the vector width, all in the same order
// whichever block a row falls in (so the result of a row does not depend on
// `rows`); `reverse` walks the blocks from the last, the same bit for bit.
// k may be 0 (y = 0).  W, x, y need no more than their type's alignment.
template <typename T>
using GemvT = void (*)(index_t rows, index_t k, const T* W, index_t ldw,
                       const T* x, T* y, bool reverse);

// Its counterpart with W not transposed, for the backward passes:
//
//   y[j] = beta * y[j] + sum_r a[r] * W[r*ldw + j]   for j < n
//
// (beta 0: y is not read).  Every column is summed the same way whatever
// its position, so a thread's share of the columns gets the bits the whole
// product would give.  rows may be 0.
template <typename T>
using GemvN = void (*)(index_t rows, index_t n, const T* W, index_t ldw,
                       const T* a, T beta, T* y);

// The time step of batch m = 1 or 2 fused with tiles of the next input
// projection (gemm::fused_step): two products over packed B̃ panels of NR
// columns, n columns for the recurrent one (panel j at b_hh + j*hh_stride),
// ni for the projection (panel j at b_ih + j*ih_stride):
//
//   y[r, 0:n] = h[r, 0:kh] B̃_hh      for r < m (the recurrent product,
//                                     rows h + r*ldh, y + r*ldy,
//                                     overwritten)
//   out[R, c] = bias[c] + sum_{p < ki} x[R*ldx + p] B̃_ih[p, c]
//            for the rows R = g*rows + i, i < rows, and the columns c of
//            the tiles (g, c) in [t0, t1)
//
// where rows = gemm::fused_tile_rows<T>(m, ki), tile t is the row group
// g = t / ceil(ni / width) and the columns [c*width, (c+1)*width) within
// [0, ni), c = t modulo that: width one vector (fused_width = NR / NV)
// for rows = kFusedRows, a panel (NR) for kFusedRows / 2; bias null: no
// bias.  The
// steps of both products are interleaved, spread evenly over the call, so
// the FMAs of the projection run while the recurrent product, one or two
// FMAs per value streamed, waits on the cache.  Every value is summed
// exactly as by ukernel_rows / ukernel (the recurrent product as its m-row
// tile over one K block, the projection as its full-height tiles' single
// chain, then C = 1 * sum + 1 * bias as with beta 1 on the bias): the bits
// of the unfused products.  reverse: the recurrent product's panels from
// the last.
using gemm::kFusedRows;
using gemm::fused_tile_rows;

template <typename T>
struct FusedStepArgs {
  index_t n = 0, kh = 0, ki = 0, ni = 0;
  index_t m = 1;  // rows of h and y: 1 or 2
  const T* h = nullptr;
  index_t ldh = 0;
  const T* b_hh = nullptr;
  index_t hh_stride = 0;
  T* y = nullptr;
  index_t ldy = 0;
  bool reverse = false;
  const T* x = nullptr;
  index_t ldx = 0;
  const T* b_ih = nullptr;
  index_t ih_stride = 0;
  index_t t0 = 0, t1 = 0;
  const T* bias = nullptr;
  T* out = nullptr;
  index_t ldo = 0;
};

template <typename T>
using FusedStep = void (*)(const FusedStepArgs<T>& f);

// The narrow tile: ukernel_rows on B̃ panels of nr_narrow columns (a
// divisor of NR; b[p*nr_narrow + j]), for products whose B̃ side is only
// that wide -- on a 32-wide tile, 16 columns leave half of every FMA on
// padding.  Every element is summed exactly as by ukernel_rows (the same
// order of p, the same split into chains for every m), so a product gives
// the same bits whichever width its panels have.  0 <= n <= nr_narrow.
template <typename T>
struct GemmKernels {
  index_t mr = 0;  // micro-tile rows (MR)
  index_t nr = 0;  // micro-tile columns (NR), the width of every B̃ panel
  UKernel<T> ukernel = nullptr;
  UKernelRows<T> ukernel_rows = nullptr;
  PackT<T> pack_t = nullptr;
  GemvT<T> gemv_t = nullptr;
  GemvN<T> gemv_n = nullptr;
  index_t nr_narrow = 0;
  UKernelRows<T> ukernel_rows_narrow = nullptr;
  // Null for the reference, and for AVX2, whose 16 registers hold too few
  // of the projection's rows to pay (ukernel_simd.h, FusedKernel): the
  // products then run one after the other.
  FusedStep<T> fused_step = nullptr;
  index_t fused_width = 0;  // columns of a projection tile of fused_step
  // Bytes of the Ã micro-panel of a full tile (MR x KC): sets KC, the
  // length of the products' K blocks (gemm/blocking.h).
  std::size_t panel_bytes = 16 * 1024;
};

struct KernelTable {
  const char* name = nullptr;  // "avx512", "avx2", "reference"
  GemmKernels<float> f32;
  GemmKernels<double> f64;
  GateKernels<float> gates_f32;  // point-wise gate kernels (gates.h)
  GateKernels<double> gates_f64;

  template <typename T>
  const GemmKernels<T>& gemm() const {
    if constexpr (std::is_same_v<T, float>)
      return f32;
    else
      return f64;
  }
  template <typename T>
  const GateKernels<T>& gates() const {
    if constexpr (std::is_same_v<T, float>)
      return gates_f32;
    else
      return gates_f64;
  }
};

// The one exported entry of each kernel translation unit.  Only call the
// ISA-specific ones on a CPU that has the ISA (src/cpp/dispatch checks).
void fill_gemm_reference(KernelTable& t);  // src/cpp/gemm/ukernel_ref.cpp
void fill_gemm_avx2(KernelTable& t);       // src/cpp/kernels/gemm_avx2.cpp
void fill_gemm_avx512(KernelTable& t);     // src/cpp/kernels/gemm_avx512.cpp
void fill_gates_reference(KernelTable& t);  // src/cpp/kernels/gates_reference.cpp
void fill_gates_avx2(KernelTable& t);       // src/cpp/kernels/gates_avx2.cpp
void fill_gates_avx512(KernelTable& t);     // src/cpp/kernels/gates_avx512.cpp

}  // namespace rnncore::kernels

// The one matrix product every cell uses.  Row-major, BLAS-like:
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N]
//
// op(X) is X or X^T; lda/ldb/ldc are row strides in elements.  When
// beta == 0, C is never read (it may hold NaN or garbage).  M, N or K may be
// zero; when K == 0 or alpha == 0, A and B are not read.  Implemented for
// float and double, BLIS-style (src/cpp/gemm) on the micro-kernels of the
// instruction set chosen at run time (rnncore/cpu.h).  Reentrant: any number
// of threads may multiply at once (packing buffers are per thread).
//
// For a product that reuses one B many times (the recurrent product h W_hh^T
// at every time step), pack B once with pack_b() and call gemm_packed().
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "rnncore/common.h"

namespace rnncore::kernels {
template <typename T>
struct GemmKernels;
}  // namespace rnncore::kernels

namespace rnncore::gemm {

enum class Trans { N, T };

template <typename T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha,
          const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C,
          index_t ldc);

// Whether gemm(Trans::N, Trans::T, M, N, K, .., B, ldb, ..) multiplies by
// B's rows where they are instead of packing B (it computes C^T = B A^T:
// few rows of A, B's rows short enough to be read in place); the result
// is the same either way.  A product made once in a call then costs no
// packing of the weights (4-64 rows of A with K >= 256, 12-64 with K in
// [64, 256); 0.7-0.9x the time of the packed way at batch 4-32).
template <typename T>
bool reads_b_in_place(index_t M, index_t N, index_t K, const T* B,
                      index_t ldb);

namespace detail {
// Cache-line aligned storage that keeps its capacity when reused (its
// blocks come from the block pool of rnncore/cache.h).
template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), capacity_(std::exchange(o.capacity_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~AlignedBuffer() { release(); }

  // Room for n values (contents unspecified); allocates only to grow.
  T* reserve(std::size_t n);
  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t capacity() const { return capacity_; }

 private:
  void release() noexcept;
  T* p_ = nullptr;
  std::size_t capacity_ = 0;
};
}  // namespace detail

template <typename T>
class PackedB;

// count rows of a row-major matrix from `first` on (row stride: the ld
// given with them).
template <typename T>
struct RowBlock {
  const T* first;
  index_t count;
};

// out <- op(B) [K,N] packed into the micro-kernel's panels of the ISA active
// now (out remembers it, so a later rnncore::cpu::set_isa does not affect
// it).  Reuses out's storage: allocates only when it must grow.
template <typename T>
void pack_b(Trans tb, index_t K, index_t N, const T* B, index_t ldb,
            PackedB<T>& out);

// out <- R^T [K, N], R [N, K] being the rows of `blocks` one after another
// (K values each, row stride ld): pack_b(Trans::T, K, N, R, ld) without
// gathering R first (one thread's recurrent weights: a block of rows per
// gate).  Only a panel that spans two blocks is gathered, NR rows.
template <typename T>
void pack_b_rows(index_t K, const std::vector<RowBlock<T>>& blocks,
                 index_t ld, PackedB<T>& out);

// C[:, n0:n1] = alpha * A[M,K] * op(B)[:, n0:n1] + beta * C[:, n0:n1], with
// A row-major (not transposed) and B packed by pack_b.  C points at column 0
// of C [M, >= n1].  n0 must be a multiple of B.panel_width() and
// 0 <= n0 <= n1 <= N (std::invalid_argument otherwise), so threads may split
// the columns.  beta == 0 never reads C.  Allocates nothing.
//
// reverse: walk B's panels from the last to the first (the result is the
// same bit for bit).  A time loop that alternates it step by step reads
// first what the previous step read last, still in cache: when B is about
// as large as the L2 cache, an LRU cache streaming it in the same order every
// time keeps none of it (a 1 MiB B, batch 1: 28.6 -> 21.0 us a product).
//
// whole_a: null, or room for M*K values (whole_a_values): then, when the
// rows of A are too long to be read in place and the columns span more
// than one cache block of B, A is packed into it once for all the blocks
// instead of once per block (the same result; a 256 x 1024 A times a
// 1024 x 3072 B packed it 7 times).
template <typename T>
void gemm_packed(index_t M, T alpha, const T* A, index_t lda,
                 const PackedB<T>& B, index_t n0, index_t n1, T beta, T* C,
                 index_t ldc, bool reverse = false, T* whole_a = nullptr);

// The room gemm_packed would use as whole_a for A [M, K] times a B of N
// columns (all of them), with the active kernels: M*K values when rows of K
// values are too long to be read in place and N spans several cache
// blocks, else 0.
template <typename T>
std::size_t whole_a_values(index_t M, index_t K, index_t N);

// y[r] = sum_p W[r, p] x[p] for r < rows: W [rows, K] row-major (row stride
// ldw), read where it is -- the batch-1 product of a time step without
// packing W for the call.  Each row's sum does not depend on `rows` or on
// where the rows start; reverse walks the rows from the last (same result;
// see gemm_packed).  Allocates nothing.
template <typename T>
void gemv_t(index_t rows, index_t K, const T* W, index_t ldw, const T* x,
            T* y, bool reverse = false);

// y[j] = beta y[j] + sum_r a[r] W[r, j] for j < n: W [rows, n] row-major
// (row stride ldw) read where it is -- the backward's batch-1 products.
// beta == 0 never reads y.  Each column's sum does not depend on n or on
// where the columns start.  Allocates nothing.
template <typename T>
void gemv_n(index_t rows, index_t n, const T* W, index_t ldw, const T* a,
            T beta, T* y);

// The step of a time loop at batch m (1 <= m <= kFusedMaxBatch) fused
// with part of the next chunk's input projection, when fuses(Whh, Wih): in
// one pass,
//
//   y_r = h_r Whh                         for r < m, h_r = h + r*ldh,
//                                         y_r = y + r*ldy (gemm_packed
//                                         with M = m, beta 0)
//   out[i, c] = bias[c] + x_i Wih[:, c]   for the rows i < kFusedRows*m of
//                                         x (x_i = x + i*ldx) and the
//                                         columns c of the tiles [t0, t1)
//
// where the projection's fused_tiles(m, Wih) tiles are its row groups of
// fused_tile_rows rows times its column tiles of equal width (the last one
// may be narrower): tile t is group t / (the number of column tiles).
// Whh and Wih may have different columns (a reset-before GRU's first
// product covers two of the projection's three gates).  bias null: none.
// Both results have the bits gemm_packed would give (y with beta 0; out
// for C = bias rows with beta 1, or beta 0 without a bias).  The
// recurrent product is bound by the cache's bandwidth (one or two FMAs per
// value of Whh) and the projection by the FMA pipes: together they overlap
// (kernels::FusedStep).  x aligned to T; reverse as in gemm_packed.
// Allocates nothing.
constexpr index_t kFusedRows = 16;
constexpr index_t kFusedMaxBatch = 2;

// Rows of a projection tile of fused_step: kFusedRows, one vector wide,
// but at batch 1 with rows of x of kFusedWideBytes or more half as many,
// a whole panel (two vectors) wide.  A tile broadcasts each value of its
// rows of x once per vector it spans, reading those rows side by side over
// all of ki: 16 rows of 2 KiB fill L1 (32 KiB on Zen 4 and on Intel cores
// since Skylake) beside W_hh's stream, 8 rows do not, and 8 broadcasts per
// 16 FMAs (not 16) leave the load ports to the stream.  Batch 1, I = H =
// 512-768: LSTM 0.90-0.98x the time, GRU 0.89-0.98x, tanh RNN 0.97-0.99x;
// at I = 128-384 1.00-1.09x, and at batch 2 1.12-1.2x (its recurrent product
// holds twice the registers), so those keep 16 rows (lockstep A/B, Zen 4).
constexpr index_t kFusedWideBytes = 2048;
template <typename T>
constexpr index_t fused_tile_rows(index_t m, index_t ki) {
  return m == 1 && ki * index_t(sizeof(T)) >= kFusedWideBytes ? kFusedRows / 2
                                                              : kFusedRows;
}

// Whether the active kernels fuse a recurrent product of K = kh with a
// projection of K = ki (each must be one K block, rows of x not 4 KiB
// apart: gemm.cpp); fuses(): and these two packs, for the kernels they
// were packed for.
template <typename T>
bool fuses_shapes(index_t kh, index_t ki);
template <typename T>
bool fuses(const PackedB<T>& Whh, const PackedB<T>& Wih);

// The tiles of a fused step's projection at batch m (0 for kernels that
// do not fuse).
template <typename T>
index_t fused_tiles(index_t m, const PackedB<T>& Wih);

template <typename T>
void fused_step(index_t m, const T* h, index_t ldh, const PackedB<T>& Whh,
                T* y, index_t ldy, bool reverse, const T* x, index_t ldx,
                const PackedB<T>& Wih, index_t t0, index_t t1, const T* bias,
                T* out, index_t ldo);

// op(B) [K,N] as panels of panel_width() columns, each K rows by
// panel_width(), zero-padded on the right (layout: kernels/kernel_table.h),
// one after another (a little apart for some K: gemm.cpp, panel_stride).
template <typename T>
class PackedB {
 public:
  index_t rows() const { return K_; }  // K
  index_t cols() const { return N_; }  // N
  // Columns per panel (the micro-kernel's NR); 0 before the first pack_b.
  index_t panel_width() const;
  // Bytes held for the panels.
  std::size_t nbytes() const { return sizeof(T) * panels_.capacity(); }

 private:
  friend void pack_b<T>(Trans, index_t, index_t, const T*, index_t,
                        PackedB<T>&);
  friend void pack_b_rows<T>(index_t, const std::vector<RowBlock<T>>&,
                             index_t, PackedB<T>&);
  friend void gemm_packed<T>(index_t, T, const T*, index_t, const PackedB<T>&,
                             index_t, index_t, T, T*, index_t, bool, T*);
  friend bool fuses<T>(const PackedB<T>&, const PackedB<T>&);
  friend index_t fused_tiles<T>(index_t, const PackedB<T>&);
  friend void fused_step<T>(index_t, const T*, index_t, const PackedB<T>&,
                            T*, index_t, bool, const T*, index_t,
                            const PackedB<T>&, index_t, index_t, const T*,
                            T*, index_t);
  // Records the kernels and shape of a new packing; room for its panels.
  T* start(const kernels::GemmKernels<T>& uk, index_t K, index_t N);
  const kernels::GemmKernels<T>* kernels_ = nullptr;
  index_t K_ = 0, N_ = 0;
  detail::AlignedBuffer<T> panels_;
};

}  // namespace rnncore::gemm

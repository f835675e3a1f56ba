// Pieces every cell's sequence loop shares: how threads split the work, the
// hoisted input projection, the cache's common part, the time loops of
// forward and BPTT, and the products after BPTT's loop.  Internal to
// src/cpp/cells.
//
// Widths: the recurrent state h and the output y are P wide (P = H but for a
// projected LSTM); gates are G*H wide, gate g of unit j at column g*H + j.
//
// Threads: one parallel region per call.  Thread t owns a contiguous share
// of the hidden units [j0, j1) (and of the state columns [p0, p1)): it
// computes the recurrent products of exactly its units' gate rows, runs
// their point-wise gates, and writes their state.  Every output element is
// computed by one thread with the same arithmetic whatever the thread count,
// so results do not depend on it.  The state is double-buffered, so one
// barrier per step separates "everyone read h_t" from "someone writes h_t+2".
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <vector>

#include "dispatch/dispatch.h"
#include "rnncore/cache.h"
#include "rnncore/gemm.h"
#include "rnncore/packed.h"
#include "rnncore/threads.h"

namespace rnncore::cells {

using gemm::Trans;
using threads::Barrier;

// Units per share: one AVX-512 vector of floats, so shares stay aligned.
constexpr index_t kGrain = 16;

// Threads worth using for a sequence loop whose step multiplies [B,P] by
// [P, G*H]: enough work per step to pay for a barrier, at least one grain
// of units per thread.
inline int loop_threads(const Dims& d, index_t G) {
  const double macs = double(d.B) * double(G * d.H) * double(d.P);
  if (macs < 32768.0) return 1;
  const index_t shares = (d.H + kGrain - 1) / kGrain;
  return static_cast<int>(std::min<index_t>(threads::num_threads(), shares));
}

// Threads worth using for one product of M*N*K multiply-adds.
inline int gemm_threads(double macs) {
  return macs < 262144.0 ? 1 : threads::num_threads();
}

// The units [j0, j1) and state columns [p0, p1) of thread tid of n.
struct Slice {
  index_t j0, j1, p0, p1;
  index_t units() const { return j1 - j0; }
  index_t cols() const { return p1 - p0; }
};

inline Slice slice_of(const Dims& d, int tid, int n) {
  const threads::Range u = threads::split(d.H, kGrain, tid, n);
  const threads::Range p =
      d.P == d.H ? u : threads::split(d.P, kGrain, tid, n);
  return {u.begin, u.end, p.begin, p.end};
}

// The direction of step `step`'s walk over the recurrent weights: the time
// loops pass reverse = odd(step), so a W about the size of the L2 cache is
// mostly read from it (gemm_packed).
inline bool odd(index_t step) { return step % 2 != 0; }

// gemm_packed's whole_a for a product of M rows of K values: the room, if
// it was allocated for that many rows (GateRows, ColBlock), else null.
template <typename T>
T* whole_a(Buffer<T>& room, index_t M, index_t K) {
  return !room.empty() && std::size_t(M * K) <= room.size() ? room.data()
                                                            : nullptr;
}

// Rows r0 + g*gate_rows + [0, n) of W (row stride ldw, ldw values each) for
// g in [g0, g1) -- one thread's rows of each gate -- as the right operand
// of a product A [M, ldw] x rows^T -> [M, (g1-g0)*n], gate-major.  Packed
// once (gemm_packed) unless `direct`: then each row of A is multiplied by
// the rows where they are (gemv_t), which streams W once per row of A but
// packs nothing -- the batch-1 time loops (W read once per step either way,
// as fast) and single-row products (a one-step call: packing was half its
// time).  max_rows: the most rows of A a product will have (room for
// gemm_packed's whole_a is allocated here, before any time loop).  once:
// the call makes a single product (a one-step call); then, when gemm
// would read W's rows in place for it (gemm::reads_b_in_place), W is not
// packed and the product goes through gemm.  packs: where W's rows may be
// packed already (rnncore/packed.h), used wherever the call would pack
// them, and for `once` instead of gemm's swap, whose narrow tiles spend
// most lanes on padding at a few rows -- the packed product wins once the
// pack is free (gemm gives the same bits either way, gemm.cpp swaps()):
// LSTM T=1, H=256, B=4-8 0.28-0.49x the time, B=16-64 0.9x.  The direct
// (batch-1) paths stay as they are.
template <typename T>
class GateRows {
 public:
  GateRows() = default;
  GateRows(const T* W, index_t ldw, index_t gate_rows, index_t g0, index_t g1,
           index_t r0, index_t n, bool direct, index_t max_rows,
           bool once = false, const PackStore<T>* packs = nullptr)
      : W_(W + r0 * ldw), ldw_(ldw), gate_rows_(gate_rows), g0_(g0),
        gates_(g1 - g0), n_(n), direct_(direct),
        by_gemm_(!direct && once && !packs &&
                 gemm::reads_b_in_place<T>(max_rows, n, ldw, W_, ldw)) {
    if (direct_ || by_gemm_) return;
    auto pack = [&](gemm::PackedB<T>& out) {
      std::vector<gemm::RowBlock<T>> blocks;
      for (index_t g = g0; g < g1; ++g)
        blocks.push_back({W_ + g * gate_rows * ldw, n});
      gemm::pack_b_rows(ldw, blocks, ldw, out);
    };
    if (packs)
      shared_ = &packs->get({&dispatch::active().gemm<T>(), W, ldw, gate_rows,
                             g0, g1, r0, n},
                            pack);
    else
      pack(packed_);
    whole_a_.resize(gemm::whole_a_values<T>(max_rows, ldw, cols()));
  }
  // One thread's gate rows of W [G*H, cols] for the units of sl.
  GateRows(const T* W, index_t H, index_t cols, index_t g0, index_t g1,
           const Slice& sl, bool direct, index_t max_rows, bool once = false,
           const PackStore<T>* packs = nullptr)
      : GateRows(W, cols, H, g0, g1, sl.j0, sl.units(), direct, max_rows,
                 once, packs) {}

  index_t cols() const { return gates_ * n_; }

  bool direct() const { return direct_; }

  // The packed rows the products run on (gemm_packed), or null: read in
  // place (direct, or gemm's one-step product).
  const gemm::PackedB<T>* packed() const {
    return direct_ || by_gemm_ ? nullptr : shared_ ? shared_ : &packed_;
  }

  // C [M, cols()] (row stride ldc) = A [M, ldw] (row stride lda) x rows^T
  // (+ C when `accumulate`, not direct: the direct path overwrites C);
  // reverse: the walk over W backwards (the same result; odd()).
  void mul(index_t M, const T* A, index_t lda, T* C, index_t ldc,
           bool reverse = false, bool accumulate = false) {
    if (n_ == 0) return;
    if (by_gemm_) {
      // One thread holding every unit: the gates' rows are one block.
      const bool whole = n_ == gate_rows_;
      for (index_t k = 0; k < (whole ? 1 : gates_); ++k)
        gemm::gemm<T>(Trans::N, Trans::T, M, whole ? cols() : n_, ldw_, T(1),
                      A, lda, W_ + (g0_ + k) * gate_rows_ * ldw_, ldw_,
                      accumulate ? T(1) : T(0), C + k * n_, ldc);
      return;
    }
    if (!direct_)
      return gemm::gemm_packed<T>(M, T(1), A, lda, shared_ ? *shared_ : packed_,
                                  0, cols(), accumulate ? T(1) : T(0), C, ldc,
                                  reverse, whole_a(whole_a_, M, ldw_));
    for (index_t i = 0; i < M; ++i)
      for (index_t q = 0; q < gates_; ++q) {
        const index_t k = reverse ? gates_ - 1 - q : q;
        gemm::gemv_t<T>(n_, ldw_, W_ + (g0_ + k) * gate_rows_ * ldw_, ldw_,
                        A + i * lda, C + i * ldc + k * n_, reverse);
      }
  }

 private:
  const T* W_ = nullptr;
  index_t ldw_ = 0, gate_rows_ = 0, g0_ = 0, gates_ = 0, n_ = 0;
  bool direct_ = false, by_gemm_ = false;
  gemm::PackedB<T> packed_;
  const gemm::PackedB<T>* shared_ = nullptr;  // in a PackStore, else packed_
  Buffer<T> whole_a_;
};

// Whether a time loop reads its recurrent weights where they are (GateRows
// direct) rather than packing them for the call: batch 1 (from batch 2 the
// packed product reads W once for all rows) in a short call -- packing
// costs about as much as 8 steps.  Interleaved A/B, batch 1, T = 1: 0.2-0.3x
// the packed time (LSTM, GRU, tanh RNN, H = 256), T = 4-8: 0.5-0.9x.  In
// longer calls the packed product wins as soon as W stays in L2 (T = 100,
// H = 256: gemv 1.2-1.27x for the GRU and RNN; LSTM 0.8-1.25x, noise); a
// bigger W streams from L3 either way (H = 512: 0.99x).  The choice must
// not depend on the thread count: the two paths sum in different orders.
inline bool direct_rows(const Schedule& s) {
  return s.d.B == 1 && s.steps() <= 8;
}

// Whether BPTT's step products dh = dG W_hh read W_hh where it is
// (ColBlock direct, gemv_n: W streamed row by row, each row scaled into
// dh) rather than packing it for the call: the short batch-1 calls of
// direct_rows, and any batch-1 call whose W_hh (w_bytes, all of it: the
// choice must not depend on the thread count) is at most 1 MiB -- read
// once per step either way, from L2, so the pack is all the difference:
// fwd+bwd at B=1, LSTM H=32-256 0.94-0.98x the time, GRU H=32-256
// 0.93-0.99x, tanh RNN 0.88-0.97x; at H=512 (3-4 MiB, from L3) 0.99-1.01x,
// kept packed (lockstep A/B, Zen 4).
constexpr std::size_t kDirectColsBytes = std::size_t(1) << 20;
inline bool direct_cols(const Schedule& s, std::size_t w_bytes) {
  return direct_rows(s) || (s.d.B == 1 && w_bytes <= kDirectColsBytes);
}

// Products of at most this many rows in all (a one-step batch-1 call, or
// two) read W where it is however it is used: the input projection
// (GateRows) and dx = dG W_ih (gemv_n), instead of packing W for them.
constexpr index_t kDirectRows = 2;

// C = alpha op(A) op(B) + beta C with the rows (or, when C is wider than
// tall, the columns) of C shared among the pool's threads.  Every element
// is summed in the order a single call would use: rows are split at whole
// micro-tiles with the short remainder kept on the last share (the tile
// height and the K blocking, which depend on M, stay the same), columns at
// whole panels.
template <typename T>
void parallel_gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K,
                   T alpha, const T* A, index_t lda, const T* B, index_t ldb,
                   T beta, T* C, index_t ldc) {
  const kernels::GemmKernels<T>& uk = dispatch::active().gemm<T>();
  const bool by_rows = M >= N;
  const index_t units = by_rows ? M / uk.mr : (N + uk.nr - 1) / uk.nr;
  const int nt = static_cast<int>(std::min<double>(
      gemm_threads(double(M) * double(N) * double(K)), double(units)));
  threads::parallel(nt, [&](int tid, int n) {
    const threads::Range r = threads::split(units, 1, tid, n);
    if (by_rows) {
      const index_t r0 = r.begin * uk.mr;
      const index_t r1 = tid == n - 1 ? M : r.end * uk.mr;
      const T* a = ta == Trans::N ? A + r0 * lda : A + r0;
      gemm::gemm<T>(ta, tb, r1 - r0, N, K, alpha, a, lda, B, ldb, beta,
                    C + r0 * ldc, ldc);
    } else {
      const index_t c0 = r.begin * uk.nr, c1 = std::min(N, r.end * uk.nr);
      const T* b = tb == Trans::N ? B + c0 : B + c0 * ldb;
      gemm::gemm<T>(ta, tb, M, c1 - c0, K, alpha, A, lda, b, ldb, beta,
                    C + c0, ldc);
    }
  });
}

// Bias added to every row of the input projection: b_ih plus the parts of
// b_hh that are added outside the recurrent product (all of b_hh except the
// last `inner` rows, which the caller adds inside it).  Empty without bias.
template <typename T>
std::vector<T> folded_bias(index_t GH, index_t inner, const CellWeights<T>& w) {
  std::vector<T> b;
  if (!w.b_ih) return b;
  b.assign(w.b_ih, w.b_ih + GH);
  for (index_t j = 0; j < GH - inner; ++j) b[j] += w.b_hh[j];
  return b;
}

// Columns [c0, c0 + n) of W [rows, ldw] as the right operand of the
// backward's step products A [M, rows] x W[:, c0:c0+n] -> [M, n] (a
// thread's share of W_hh's columns): packed once per call, or, `direct`
// (the batch-1 short calls of direct_rows), read where they are (gemv_n).
template <typename T>
class ColBlock {
 public:
  ColBlock() = default;
  ColBlock(const T* W, index_t ldw, index_t rows, index_t c0, index_t n,
           bool direct, index_t max_rows)
      : W_(W + c0), ldw_(ldw), rows_(rows), n_(n), direct_(direct) {
    if (direct_) return;
    gemm::pack_b(Trans::N, rows, n, W_, ldw, packed_);
    whole_a_.resize(gemm::whole_a_values<T>(max_rows, rows, n));
  }
  index_t cols() const { return n_; }

  // C [M, n] (row stride ldc) = A [M, rows] x W[:, c0:c0+n] + beta C.
  void mul(index_t M, const T* A, index_t lda, T beta, T* C, index_t ldc,
           bool reverse = false) {
    if (n_ == 0) return;
    if (!direct_)
      return gemm::gemm_packed<T>(M, T(1), A, lda, packed_, 0, n_, beta, C,
                                  ldc, reverse, whole_a(whole_a_, M, rows_));
    for (index_t i = 0; i < M; ++i)
      gemm::gemv_n<T>(rows_, n_, W_, ldw_, A + i * lda, beta, C + i * ldc);
  }

 private:
  const T* W_ = nullptr;
  index_t ldw_ = 0, rows_ = 0, n_ = 0;
  bool direct_ = false;
  gemm::PackedB<T> packed_;
  Buffer<T> whole_a_;
};

// Tests only (_core._testing_fuse_products, _testing_fused_chunks):
// fuse_products false makes the fused chunks' products one after the
// other (gemm_packed, the same chunks); fused_chunks counts the chunks
// the fused kernel has made.
inline std::atomic<bool> fuse_products{true};
inline std::atomic<long long> fused_chunks{0};

// One thread's input projection x W_ih^T + bias for its units, computed for
// a chunk of steps at a time as one product (the time-independent work,
// hoisted out of the step loop), so memory stays O(B*H) however long the
// sequence.  row(step, b) holds, for sequence b at `step`, gate g of unit j
// at column g*n + j - j0.  Steps must be visited in increasing order (the
// forward loop does).
//
// At batch 1 or 2 the step's recurrent product (mul_step) streams W_hh
// from cache with one or two FMAs per value, leaving the FMA pipes mostly
// idle, while the projection is bound by them.  So when the kernels fuse
// the two (gemm::fuses), chunks are kFusedRows steps and each step of a
// chunk also computes a kFusedRows-th of the next chunk's projection (a
// share of its tiles) in the same pass (gemm::fused_step), into the
// other of two buffers.  The bits are those of the unfused products, as
// every row of a chunk is summed alike however many rows the chunk has (4
// or more: gemm/blocking.h; a last chunk that would have fewer joins the
// one before it).
template <typename T>
class InputChunks {
 public:
  // A quarter of L2: the chunk is still in cache when the gates read it,
  // beside W_hh (1 MiB chunks: LSTM B=64 H=256 about 10% slower); the
  // product of a chunk keeps at least B rows.
  static constexpr index_t kChunkBytes = 256 * 1024;
  // Chunks of fewer rows are summed with split chains (ukernel_simd.h).
  static constexpr index_t kMinRows = 4;

  // bias: the folded bias [G*H] (folded_bias) or empty; packs: GateRows'.
  InputChunks(const Schedule& s, index_t G, const Slice& sl, const T* x,
              const T* W_ih, const std::vector<T>& bias,
              const PackStore<T>* packs = nullptr)
      : s_(s), x_(x), cols_(G * sl.units()) {
    const Dims& d = s.d;
    // Fused: batch 1 or 2 (kFusedMaxBatch), the recurrent product packed
    // for the call (more than direct_rows' steps), two chunks at least,
    // and enough columns (fused_pays).  The choice must not depend on the
    // thread count (the chunks would: a last one of fewer than kMinRows
    // rows sums otherwise).
    fused_ = d.B <= gemm::kFusedMaxBatch &&
             s.steps() >= 2 * gemm::kFusedRows &&
             fused_pays(G * d.H) &&
             gemm::fuses_shapes<T>(d.P, d.I) &&
             (!in_place() ||
              reinterpret_cast<std::uintptr_t>(x) % alignof(T) == 0);
    fuse_kernel_ = fused_ && fuse_products.load(std::memory_order_relaxed);
    // Steps per chunk: the whole projection of a chunk about kChunkBytes, at
    // least one step, at most the call's (a short call is one chunk: room
    // for its rows only, and one product, which gemm may make on W_ih where
    // it is -- GateRows' once; sized by the chunk's bytes, a one-step GRU or
    // RNN at batch 4-16 packed W_ih, 37% of a GRU's call at batch 4).  It
    // depends on G*H, not on this thread's share, so chunks (and each
    // element's rounding) are the same for every thread count.
    const index_t row_bytes = G * d.H * index_t(sizeof(T));
    steps_ = fused_ ? gemm::kFusedRows
                    : std::clamp<index_t>((kChunkBytes / row_bytes) / d.B, 1,
                                          std::max<index_t>(1, s.steps()));
    room_ = (fused_ ? gemm::kFusedRows + kMinRows - 1 : steps_) * d.B;
    W_ = GateRows<T>(W_ih, d.H, d.I, 0, G, sl, s.steps() * d.B <= kDirectRows,
                     room_, steps_ >= s.steps(), packs);
    for (index_t g = 0; !bias.empty() && g < G; ++g)
      bias_.insert(bias_.end(), bias.begin() + g * d.H + sl.j0,
                   bias.begin() + g * d.H + sl.j1);
    const index_t buffers = fused_ ? 2 : 1;
    if (!in_place())
      x_rows_.resize(static_cast<std::size_t>(buffers * room_ * d.I));
    xp_.resize(static_cast<std::size_t>(buffers * room_ * cols_));
  }

  // The projection row of sequence b at `step` (b active at step).
  const T* row(index_t step, index_t b) {
    if (step < s0_ || step >= s1_) start(step);
    // In place, the chunk's rows are in time order: reversed, step s0_ is
    // its last block of B rows.
    const index_t k = in_place() && s_.reverse ? s1_ - 1 - step : step - s0_;
    return chunk(cur_) + (k * s_.d.B + b) * cols_;
  }

  // The step's recurrent product C [B, W.cols()] = h [B, ldh] x W's rows^T
  // (GateRows::mul), with, fused, a piece of the next chunk's projection.
  void mul_step(GateRows<T>& W, index_t step, const T* h, index_t ldh, T* C,
                index_t ldc, bool reverse) {
    if (!fuse_kernel_) return W.mul(s_.d.B, h, ldh, C, ldc, reverse);
    fused_mul_step(W, step, h, ldh, C, ldc, reverse);
  }

 private:
  void fused_mul_step(GateRows<T>& W, index_t step, const T* h, index_t ldh,
                      T* C, index_t ldc, bool reverse) {
    if (step < s0_ || step >= s1_) start(step);
    const index_t k = step - s0_, other = 1 - cur_;
    // Once per chunk: whether it makes the next one (both of kFusedRows
    // steps, both products packed for kernels that fuse them), and from
    // which rows of x.
    if (k == 0) rows_src_ = makes_next(W) ? rows_of(s1_, other) : nullptr;
    if (!rows_src_) return W.mul(s_.d.B, h, ldh, C, ldc, reverse);
    const gemm::PackedB<T>& Wih = *W_.packed();
    const index_t B = s_.d.B, tiles = gemm::fused_tiles(B, Wih);
    const index_t t0 = k * tiles / gemm::kFusedRows;
    const index_t t1 = (k + 1) * tiles / gemm::kFusedRows;
    if (t1 > t0)
      gemm::fused_step<T>(B, h, ldh, *W.packed(), C, ldc, reverse, rows_src_,
                          s_.d.I, Wih, t0, t1,
                          bias_.empty() ? nullptr : bias_.data(), chunk(other),
                          cols_);
    else
      W.mul(s_.d.B, h, ldh, C, ldc, reverse);
    if (k == gemm::kFusedRows - 1) {
      ready_ = s1_;
      fused_chunks.fetch_add(1, std::memory_order_relaxed);
    }
  }

  bool makes_next(const GateRows<T>& W) const {
    const gemm::PackedB<T>* Whh = W.packed();
    const gemm::PackedB<T>* Wih = W_.packed();
    return Whh && Wih && s1_ - s0_ == gemm::kFusedRows &&
           end_of(s1_) - s1_ == gemm::kFusedRows && gemm::fuses(*Whh, *Wih);
  }

  // Without lengths a chunk's rows of x are one contiguous block (its
  // steps' times, in increasing order either way), multiplied where they
  // are; with lengths the valid rows are gathered and padded rows zeroed.
  // (2-7% faster than copying them, 1 and 2 threads, interleaved A/B.)
  bool in_place() const { return !s_.lengths; }

  T* chunk(index_t buffer) { return xp_.data() + buffer * room_ * cols_; }

  // The end of the chunk starting at s0: steps_ later, but fused, a rest of
  // fewer than kMinRows steps joins the chunk before it.
  index_t end_of(index_t s0) const {
    const index_t left = s_.steps() - s0;
    if (fused_ && left < steps_ + kMinRows) return s_.steps();
    return s0 + std::min(steps_, left);
  }

  // The chunk from s0 becomes current: already computed by the fused
  // pieces (ready_), or computed now.
  void start(index_t s0) {
    const index_t s1 = end_of(s0);
    if (fused_ && ready_ == s0) {
      cur_ = 1 - cur_;
      s0_ = s0;
      s1_ = s1;
      ready_ = -1;
      return;
    }
    s0_ = s0;
    s1_ = s1;
    finish((s1 - s0) * s_.d.B, rows_of(s0, cur_));
  }

  // The rows of x of the chunk from s0, in place or gathered into buffer.
  const T* rows_of(index_t s0, index_t buffer) {
    const Dims& d = s_.d;
    const index_t s1 = end_of(s0), n = s1 - s0;
    if (in_place()) {
      const index_t t_lo = s_.reverse ? d.T - s1 : s0;
      return x_ + t_lo * d.B * d.I;
    }
    T* const rows = x_rows_.data() + buffer * room_ * d.I;
    for (index_t k = 0; k < n; ++k)
      for (index_t b = 0; b < d.B; ++b) {
        T* dst = rows + (k * d.B + b) * d.I;
        if (s_.active(s0 + k, b)) {
          const T* src = x_ + s_.row(s0 + k, b) * d.I;
          std::copy(src, src + d.I, dst);
        } else {
          std::fill(dst, dst + d.I, T(0));
        }
      }
    return rows;
  }

  // The current chunk = rows of a (row stride I) times W_ih^T, plus the
  // bias.  Packed, the product adds itself to rows that hold the bias
  // (copied, vectorised by the C library): the scalar add after it was
  // 3-4% of a batch-16 tanh RNN's forward.  The sum then rounds as bias +
  // (x W_ih^T) when I fits one K block of the GEMM, (bias + first block) +
  // ... when longer.
  // (The direct path, at most kDirectRows rows, overwrites C: it adds the
  // bias after.)
  void finish(index_t rows, const T* a) {
    T* const xp = chunk(cur_);
    if (bias_.empty() || W_.direct()) {
      W_.mul(rows, a, s_.d.I, xp, cols_);
      for (index_t r = 0; !bias_.empty() && r < rows; ++r)
        for (index_t j = 0; j < cols_; ++j) xp[r * cols_ + j] += bias_[j];
      return;
    }
    for (index_t r = 0; r < rows; ++r)
      std::copy(bias_.begin(), bias_.end(), xp + r * cols_);
    W_.mul(rows, a, s_.d.I, xp, cols_, false, true);
  }

  // Whether fusing pays: a recurrent product of at least 96 columns (G*H,
  // the whole layer's).  Interleaved A/B, forward T=100 B=1 (I = H),
  // fused / unfused time: LSTM H=32 (T=1000) 0.98x, 64 0.94x, 96 0.90x,
  // 128 0.88x, 256 0.88-0.89x, 512 0.95-1.0x; GRU H=32 (T=1000) 0.97x, 64
  // 0.94x, 96 0.91-0.95x, 128 0.87-0.94x, 256 0.88-0.89x, 512 0.94-0.95x;
  // tanh RNN H=96 1.0x, 128 0.97x, 256 0.86-0.87x, 512 0.95x, but H=32
  // (T=1000) 1.03x: two tiles of 16 columns for 16 steps.  B=2 (against
  // the build before batch 2 fused, lockstep): LSTM H=64-256 0.92-0.94x,
  // 512 0.98x; GRU 0.93-0.95x, 0.97x; tanh RNN H=128-256 0.92-0.93x,
  // 512 0.97x.  The reset-before GRU against its unfused build: B=1
  // H=64-256 0.89-0.90x, 512 0.96x; B=2 H=128-256 0.95x.
  static bool fused_pays(index_t columns) { return columns >= 96; }

  const Schedule& s_;
  const T* x_;
  index_t cols_, steps_ = 1;
  index_t room_ = 0;         // rows a chunk's buffer holds
  index_t s0_ = 0, s1_ = 0;  // the steps of the current chunk
  bool fused_ = false;       // chunks of kFusedRows steps, made fused
  bool fuse_kernel_ = false; // fused_ and fuse_products: the fused kernel
  index_t cur_ = 0;          // its buffer (fused: 0 or 1)
  index_t ready_ = -1;       // fused: the first step of a finished next chunk
  const T* rows_src_ = nullptr;  // the next chunk's rows of x, if made fused
  GateRows<T> W_;
  std::vector<T> bias_;
  Buffer<T> x_rows_, xp_;
};

// Rows of a [T,B,width] array past each sequence's length are exactly zero.
template <typename T>
void zero_padding(const Schedule& s, index_t width, T* a) {
  if (!s.lengths) return;
  const Dims& d = s.d;
  for (index_t b = 0; b < d.B; ++b)
    for (index_t t = s.length(b); t < d.T; ++t)
      std::fill(a + (t * d.B + b) * width, a + (t * d.B + b + 1) * width, T(0));
}

// s [B,width] <- s0, or zeros when s0 is null.
template <typename T>
void init_state(index_t B, index_t width, const T* s0, T* s) {
  const std::size_t n = static_cast<std::size_t>(B * width);
  if (s0)
    std::memcpy(s, s0, n * sizeof(T));
  else
    std::fill(s, s + n, T(0));
}

// A per-step buffer [T,B,width], uninitialised but for the rows past each
// sequence's length, which are zero.
template <typename T>
void allocate_rows(Buffer<T>& buf, const Schedule& s, index_t width) {
  buf.resize(static_cast<std::size_t>(s.d.T * s.d.B * width));
  zero_padding(s, width, buf.data());
}

// The part of the cache every cell keeps: schedule, where x and y are, the
// initial state, the weights, and room for the gates (unless keep_gates is
// false: the dense cell's only "gate" is h, which y holds).
template <typename T>
void start_cache(SeqCache<T>& c, const Schedule& s, index_t G, const T* x,
                 const T* h0, const T* y, const CellWeights<T>& w,
                 bool keep_gates = true) {
  const Dims& d = s.d;
  const index_t GH = G * d.H;
  c.d = d;
  c.reverse = s.reverse;
  c.lengths.clear();
  if (s.lengths) c.lengths.assign(s.lengths, s.lengths + d.B);
  c.has_bias = w.b_ih != nullptr;
  c.x = x;
  c.y = y;
  c.h0.assign(static_cast<std::size_t>(d.B * d.P), T(0));
  if (h0) std::copy(h0, h0 + d.B * d.P, c.h0.begin());
  c.W_ih.assign(w.W_ih, w.W_ih + GH * d.I);
  c.W_hh.assign(w.W_hh, w.W_hh + GH * d.P);
  c.gates.clear();
  if (keep_gates) c.gates.resize(static_cast<std::size_t>(d.T * d.B * GH));
}

// Builds one thread's stepper with make_step(sl) before a time loop, then
// meets the region's other threads: if any thread failed to build its own
// (an allocation failure), all return nullopt together, the failing one
// rethrowing its exception (Region::run hands it to the caller), and no
// thread is left waiting at a barrier.  The steppers do not allocate.
// Tests only (_core._testing_fail_steppers): the next this-many stepper
// builds throw std::bad_alloc, as a failed allocation would.
inline std::atomic<int> fail_next_steppers{0};

template <typename MakeStep>
auto ready(MakeStep& make_step, const Slice& sl, Barrier& barrier,
           std::atomic<bool>& failed)
    -> std::optional<decltype(make_step(sl))> {
  std::optional<decltype(make_step(sl))> stepper;
  std::exception_ptr error;
  try {
    if (fail_next_steppers.load(std::memory_order_relaxed) > 0 &&
        fail_next_steppers.fetch_sub(1) > 0)
      throw std::bad_alloc();
    stepper.emplace(make_step(sl));
  } catch (...) {
    error = std::current_exception();
    failed.store(true);
  }
  barrier.wait();
  if (error) std::rethrow_exception(error);
  if (failed.load()) stepper.reset();
  return stepper;
}

// The forward time loop.  make_step(slice) builds one thread's stepper
// (its weight rows and scratch, allocated before the loop); then at every
// step `stepper(step, h, h_next, barrier)` must write h_next[b, p0:p1] and
// y for each active sequence b.  The loop itself carries the state of
// sequences that have ended and meets at the barrier after each step.  h_io: h0 in, h_n out, [B,P].
template <typename T, typename MakeStep>
void forward_loop(const Schedule& s, index_t G, T* h_io, MakeStep&& make_step) {
  const Dims& d = s.d;
  const std::size_t BP = static_cast<std::size_t>(d.B * d.P);
  std::vector<T> hbuf(2 * BP);
  std::copy(h_io, h_io + BP, hbuf.begin());
  const index_t steps = s.steps();
  threads::Region region(loop_threads(d, G));
  Barrier barrier(region.size());
  std::atomic<bool> failed{false};
  region.run([&](int tid, int n) {
    const Slice sl = slice_of(d, tid, n);
    auto built = ready(make_step, sl, barrier, failed);
    if (!built) return;
    auto& stepper = *built;
    for (index_t step = 0; step < steps; ++step) {
      const T* h = hbuf.data() + (step % 2) * BP;
      T* h_next = hbuf.data() + ((step + 1) % 2) * BP;
      for (index_t b = 0; b < d.B; ++b) {
        if (s.active(step, b)) continue;
        const T* from = h + b * d.P + sl.p0;
        std::copy(from, from + sl.cols(), h_next + b * d.P + sl.p0);
      }
      stepper(step, h, h_next, barrier);
      barrier.wait();
    }
  });
  const T* h_last = hbuf.data() + (steps % 2) * BP;
  std::copy(h_last, h_last + BP, h_io);
}

// The BPTT time loop: make_step(slice) builds one thread's stepper (its
// scratch allocated before the loop), called for steps T-1 .. 0 as
// stepper(step, parity, barrier); it synchronises itself (scratch shared
// between threads alternates with `parity`, so one barrier per phase
// suffices) and must leave dh [B,P] holding the gradient that reaches the
// state before the step.
template <typename T, typename MakeStep>
void bptt_loop(const SeqCache<T>& c, index_t G, MakeStep&& make_step) {
  const Schedule s = c.schedule();
  threads::Region region(loop_threads(c.d, G));
  Barrier barrier(region.size());
  std::atomic<bool> failed{false};
  region.run([&](int tid, int n) {
    const Slice sl = slice_of(c.d, tid, n);
    auto built = ready(make_step, sl, barrier, failed);
    if (!built) return;
    auto& stepper = *built;
    for (index_t step = s.steps() - 1; step >= 0; --step)
      stepper(step, static_cast<int>(step % 2), barrier);
  });
}

// Where a BPTT step's gate gradients ds_all [B, GH] go, for dh += ds_all
// W_hh inside the loop and for the products over dG [T*B, GH] after it.
// When every sequence is at the same time at each step (no lengths, or a
// forward walk) the step's rows of dG are one block, and ds_all is that
// block: the gate kernel writes each value once.  Otherwise (reversed
// sequences of different lengths) ds_all alternates between two scratch
// blocks and the kernel copies each row into dG as well (copy_to).  Either
// way consecutive steps write different memory, so a thread may start the
// next step's gate pass while another still reads this step's ds_all.
// (With put_line's inlined MR-value lines, pack.h: LSTM fwd+bwd T=100
// B=16 H=128 0.977x the time, B=64 H=256 0.984x; tanh RNN: within noise.)
template <typename T>
class StepGrads {
 public:
  StepGrads(const Schedule& s, T* dG, index_t GH)
      : s_(s), dG_(dG), GH_(GH), in_dG_(!s.lengths || !s.reverse),
        scratch_(in_dG_ ? 0 : static_cast<std::size_t>(2 * s.d.B * GH)) {}
  T* rows(index_t step) {
    return in_dG_ ? dG_ + s_.row(step, 0) * GH_
                  : scratch_.data() + (step % 2) * s_.d.B * GH_;
  }
  // The row of dG the kernel must also write (unit j0 of gate 0), or null.
  T* copy_to(index_t row, index_t j0) {
    return in_dG_ ? nullptr : dG_ + row * GH_ + j0;
  }

 private:
  const Schedule& s_;
  T* dG_;
  index_t GH_;
  bool in_dG_;
  std::vector<T> scratch_;
};

// One BPTT step's point-wise pass over the batch for one thread: calls
// fn(b, row, ds) for each sequence active at `step`, ds being its share of
// ds_all [B, G*H] (unit j0 of gate 0); zeroes the share of the others, so
// the product dh += ds W_hh adds nothing to their state gradient.
template <typename T, typename Fn>
void backward_rows(const Schedule& s, index_t step, const Slice& sl,
                   index_t G, T* ds_all, Fn&& fn) {
  const index_t GH = G * s.d.H;
  for (index_t b = 0; b < s.d.B; ++b) {
    T* ds = ds_all + b * GH + sl.j0;
    if (s.active(step, b)) {
      fn(b, s.row(step, b), ds);
      continue;
    }
    for (index_t g = 0; g < G; ++g)
      std::fill(ds + g * s.d.H, ds + g * s.d.H + sl.units(), T(0));
  }
}

// dh[:, cols of W] += ds W: the step's product into the state gradient.
// The rows of ds for sequences inactive at `step` are zero, but 0 times a
// non-finite weight is NaN, so their rows of dh are saved in `keep` (room
// for B rows of W.cols(), allocated before the loop) and put back: padding
// never reaches a gradient, whatever the weights hold.
template <typename T>
void add_state_grads(const Schedule& s, index_t step, const T* ds,
                     index_t lds, ColBlock<T>& W, T* dh,
                     index_t ldh, T* keep) {
  const index_t B = s.d.B, cols = W.cols();
  const bool padded = s.lengths != nullptr;
  if (padded)
    for (index_t b = 0; b < B; ++b)
      if (!s.active(step, b))
        std::copy(dh + b * ldh, dh + b * ldh + cols, keep + b * cols);
  W.mul(B, ds, lds, T(1), dh, ldh, odd(step));
  if (padded)
    for (index_t b = 0; b < B; ++b)
      if (!s.active(step, b))
        std::copy(keep + b * cols, keep + (b + 1) * cols, dh + b * ldh);
}

// Room for add_state_grads' saved rows: none without lengths.
template <typename T>
std::vector<T> state_keep(const Schedule& s, index_t cols) {
  return std::vector<T>(s.lengths ? s.d.B * cols : 0);
}

template <typename T>
void column_sums(index_t rows, index_t cols, const T* a, T* out) {
  std::fill(out, out + cols, T(0));
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) out[j] += a[r * cols + j];
}

// After BPTT's loop, from dGx [T*B, G*H] (gradients of the input-side
// pre-activations, zero on padded rows): dx = dGx W_ih, db_ih = column sums
// of dGx.  Padded rows of dx are set to zero after the product (0 times a
// non-finite weight would be NaN there).
template <typename T>
void input_grads(const SeqCache<T>& c, index_t GH, const T* dGx, T* dx,
                 T* db_ih) {
  const Dims& d = c.d;
  const index_t rows = d.T * d.B;
  if (rows <= kDirectRows)
    for (index_t r = 0; r < rows; ++r)
      gemm::gemv_n<T>(GH, d.I, c.W_ih.data(), d.I, dGx + r * GH, T(0),
                      dx + r * d.I);
  else
    parallel_gemm<T>(Trans::N, Trans::N, rows, d.I, GH, T(1), dGx, GH,
                     c.W_ih.data(), d.I, T(0), dx, d.I);
  zero_padding(c.schedule(), d.I, dx);
  if (db_ih) column_sums(rows, GH, dGx, db_ih);
}

// dW[n, width] = dG[:, n cols]^T src over all T*B rows, for one block of n
// gate rows: dG [T*B, ldg] and src [T*B, lds] (column offsets applied by
// the caller).
template <typename T>
void weight_grads(const Dims& d, index_t n, const T* dG, index_t ldg,
                  const T* src, index_t lds, index_t width, T* dW) {
  parallel_gemm<T>(Trans::T, Trans::N, n, width, d.T * d.B, T(1), dG, ldg,
                   src, lds, T(0), dW, width);
}

// A copy [T*B, width] of the rows src(step, b) of every active (step, b),
// zero on padded rows.
template <typename T, typename Src>
Buffer<T> masked_rows(const SeqCache<T>& c, index_t width, Src&& src) {
  const Schedule s = c.schedule();
  Buffer<T> out;
  allocate_rows(out, s, width);
  for (index_t step = 0; step < s.steps(); ++step)
    for (index_t b = 0; b < c.d.B; ++b)
      if (s.active(step, b)) {
        const T* p = src(step, b);
        std::copy(p, p + width, out.begin() + s.row(step, b) * width);
      }
  return out;
}

// dW [n, I] = dG[:, n cols]^T x over all T*B rows, dG [T*B, ldg] zero on
// padded rows.  x's padded rows are the caller's (NaN, maybe: 0 times NaN
// is NaN), so with lengths the product reads a copy with zeros there.
template <typename T>
void input_weight_grads(const SeqCache<T>& c, index_t n, const T* dG,
                        index_t ldg, T* dW) {
  const Dims& d = c.d;
  if (c.lengths.empty()) return weight_grads(d, n, dG, ldg, c.x, d.I, d.I, dW);
  const Buffer<T> x = masked_rows(c, d.I, [&](index_t step, index_t b) {
    return c.x + c.schedule().row(step, b) * d.I;
  });
  weight_grads(d, n, dG, ldg, x.data(), d.I, d.I, dW);
}

// dW [n, P] = dG[:, n cols]^T h_prev over all T*B rows, h_prev being the
// state entering each row's step.  Without lengths that is y shifted by one
// step (forward: row r reads y row r - B; reverse: r + B) and h0 for the
// rows of step 0: two products, nothing copied.  With lengths the rows of
// step 0 are scattered, and y's last rows of a sequence are read by none:
// the product reads a copy.
template <typename T>
void state_weight_grads(const SeqCache<T>& c, index_t n, const T* dG,
                        index_t ldg, T* dW) {
  const Dims& d = c.d;
  if (!c.lengths.empty()) {
    const Buffer<T> h = masked_rows(c, d.P, [&](index_t step, index_t b) {
      return c.h_prev(step, b);
    });
    return weight_grads(d, n, dG, ldg, h.data(), d.P, d.P, dW);
  }
  const index_t later = (d.T - 1) * d.B;  // rows past step 0
  const T* dG_later = c.reverse ? dG : dG + d.B * ldg;
  const T* y_later = c.reverse ? c.y + d.B * d.P : c.y;
  const T* dG_first = c.reverse ? dG + later * ldg : dG;
  if (later > 0)
    parallel_gemm<T>(Trans::T, Trans::N, n, d.P, later, T(1), dG_later, ldg,
                     y_later, d.P, T(0), dW, d.P);
  parallel_gemm<T>(Trans::T, Trans::N, n, d.P, d.B, T(1), dG_first, ldg,
                   c.h0.data(), d.P, later > 0 ? T(1) : T(0), dW, d.P);
}

}  // namespace rnncore::cells

// The GEMM driver behind rnncore/gemm.h: portable blocking loops (sizes and
// loop nest in blocking.h) around the active ISA's micro-kernel.
#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>

#include "dispatch/dispatch.h"
#include "gemm/blocking.h"
#include "gemm/pack.h"
#include "rnncore/cache.h"
#include "rnncore/gemm.h"

namespace rnncore::gemm {

namespace detail {

template <typename T>
T* AlignedBuffer<T>::reserve(std::size_t n) {
  if (n > capacity_) {
    release();
    p_ = static_cast<T*>(rnncore::detail::allocate_block(n * sizeof(T)));
    capacity_ = n;
  }
  return p_;
}

template <typename T>
void AlignedBuffer<T>::release() noexcept {
  rnncore::detail::free_block(p_, capacity_ * sizeof(T));
  p_ = nullptr;
  capacity_ = 0;
}

}  // namespace detail

namespace {

using kernels::GemmKernels;

template <typename T>
View<T> op_view(Trans t, const T* X, index_t ld) {
  return t == Trans::N ? View<T>{X, ld, 1} : View<T>{X, 1, ld};
}

// The B̃ panels of one (jc, pc) block: panel j at b + j*stride.
template <typename T>
struct Panels {
  const T* b;
  index_t stride;
};

// All of A [M, K] packed up front as Ã micro-panels (blocked(), when given
// room): the panel of the row tile from row i0 (m rows) for the K block
// from pc at p + i0*K + pc*m.  p null: not packed.
template <typename T>
struct WholeA {
  T* p = nullptr;
  index_t K = 0;
  T* at(index_t i0, index_t m, index_t pc) const { return p + i0 * K + pc * m; }
};

// Whether the columns of a product span more than one cache block of B, so
// that an A which must be packed pays for packing it once for all blocks
// (gemm's slabs, gemm_packed's whole_a) instead of once per block.
template <typename T>
bool several_column_blocks(const GemmKernels<T>& uk, index_t M, index_t N,
                           index_t K) {
  return N > blocking(uk, M, K, false).nc;
}

// C[:, n0:n1] = beta * C[:, n0:n1], never reading C when beta == 0.
template <typename T>
void scale(index_t M, index_t n0, index_t n1, T beta, T* C, index_t ldc) {
  for (index_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (index_t j = n0; j < n1; ++j) c[j] = beta == T(0) ? T(0) : beta * c[j];
  }
}

// One row tile's pass over the B̃ panels of a block: C[0:m, 0:nc] =
// alpha * Ã (m x kc) * B̃ + beta * C, panels in increasing order or, when
// `backwards`, decreasing (the arithmetic of every element is the same).
// Ã is the packed micro-panel at a_tile (lda == 0) or row-major rows in
// place (A[i, p] at a_tile[i*lda + p]).  narrow: panels uk.nr_narrow wide,
// for the narrow tile (rows in place only).
template <typename T>
void tile_pass(const GemmKernels<T>& uk, index_t m, index_t nc, index_t kc,
               T alpha, const T* a_tile, index_t lda, Panels<T> b, T beta,
               T* c, index_t ldc, bool backwards, bool narrow = false) {
  const index_t nr = narrow ? uk.nr_narrow : uk.nr;
  const index_t panels = (nc + nr - 1) / nr;
  for (index_t q = 0; q < panels; ++q) {
    const index_t j = backwards ? panels - 1 - q : q;
    const index_t jr = j * nr, n = std::min(nr, nc - jr);
    if (narrow)
      uk.ukernel_rows_narrow(m, n, kc, alpha, a_tile, lda, b.b + j * b.stride,
                             beta, c + jr, ldc);
    else if (lda)
      uk.ukernel_rows(m, n, kc, alpha, a_tile, lda, b.b + j * b.stride, beta,
                      c + jr, ldc);
    else
      uk.ukernel(m, n, kc, alpha, a_tile, b.b + j * b.stride, beta, c + jr,
                 ldc);
  }
}

// C[M, nc] = alpha * a[M, kc] * B̃ + beta * C for A not transposed: the
// inner loops of blocking.h.  Row tiles take turns walking the panels
// forwards and backwards (the first one backwards when `reverse`), so each
// starts on the panels the previous one left in cache.  Tiles have
// near-equal heights (RowTiles), e.g. 8 + 8 rows for M = 16 with MR = 14,
// not 14 + 2: a 2-row tile streams B̃ all the same for a seventh of the
// FMAs.  Short rows of A (in_place, blocking.h) are read where they are;
// longer ones are packed one micro-panel at a time into a_room, or, when
// `whole` holds all of A packed, read from there.
template <typename T>
void block_product(const GemmKernels<T>& uk, index_t M, index_t nc, index_t kc,
                   T alpha, View<T> a, Panels<T> b, T beta, T* C, index_t ldc,
                   T* a_room, const WholeA<T>& whole, index_t pc,
                   bool reverse) {
  bool backwards = reverse;
  const RowTiles tiles(M, uk.mr);
  const bool in_place = in_place_rows<T>(a.p, a.rs, a.cs);
  for (index_t t = 0; t < tiles.count(); ++t, backwards = !backwards) {
    const index_t i0 = tiles.begin(t), m = tiles.height(t);
    if (in_place) {
      tile_pass(uk, m, nc, kc, alpha, a.at(i0, 0), a.rs, b, beta,
                C + i0 * ldc, ldc, backwards);
      continue;
    }
    const T* panel = whole.p ? whole.at(i0, m, pc) : a_room;
    if (!whole.p)
      pack_a_panels(uk, View<T>{a.at(i0, 0), a.rs, a.cs}, m, kc, a_room);
    tile_pass(uk, m, nc, kc, alpha, panel, index_t(0), b, beta, C + i0 * ldc,
              ldc, backwards);
  }
}

// C[:, n0:n1] = alpha * a[M,K] * op(B)[:, n0:n1] + beta * C[:, n0:n1], where
// b_block(jc, nc, pc, kc) supplies the B̃ panels of op(B)[pc:pc+kc, jc:jc+nc]
// and a_room(blk) room for min(M, blk.mc) x blk.kc values of Ã (by_slab:
// see blocking()).  reverse: the column blocks and panels in decreasing
// order; K blocks are always summed in increasing order, so the result is
// the same bit for bit.
//
// A transposed (by_slab) takes the K blocks outermost (blocking.h): each
// slab of MC rows of Ã is packed once per K block and serves every column
// block; packed again for each column block, it was 15% of the time of the
// backward's dW = dG^T x (3072 x 1024 x 5120).  A not transposed, given
// whole_room (M*K values; gemm_packed's whole_a), rows not read in place
// and more than one column block: all of A is packed once up front (WholeA)
// instead of each micro-panel once per column block.
template <typename T, typename BBlock, typename ARoom>
void blocked(const GemmKernels<T>& uk, index_t M, index_t n0, index_t n1,
             index_t K, T alpha, View<T> a, bool by_slab, BBlock&& b_block,
             ARoom&& a_room, T beta, T* C, index_t ldc, bool reverse = false,
             T* whole_room = nullptr) {
  if (M == 0 || n1 == n0) return;
  if (K == 0 || alpha == T(0)) return scale(M, n0, n1, beta, C, ldc);
  const Blocking blk = blocking(uk, M, K, by_slab);
  T* const a_panels = a_room(blk);
  const index_t blocks = (n1 - n0 + blk.nc - 1) / blk.nc;
  auto block_start = [&](index_t q) {
    return n0 + (reverse ? blocks - 1 - q : q) * blk.nc;
  };
  if (by_slab) {
    bool backwards = reverse;
    for (index_t pc = 0; pc < K; pc += blk.kc) {
      const index_t kc = std::min(blk.kc, K - pc);
      for (index_t ic = 0; ic < M; ic += blk.mc) {
        const index_t mc = std::min(blk.mc, M - ic);
        pack_a_panels(uk, View<T>{a.at(ic, pc), a.rs, a.cs}, mc, kc, a_panels);
        for (index_t q = 0; q < blocks; ++q) {
          const index_t jc = block_start(q), nc = std::min(blk.nc, n1 - jc);
          const Panels<T> b = b_block(jc, nc, pc, kc);
          for (index_t ir = 0; ir < mc; ir += uk.mr, backwards = !backwards)
            tile_pass(uk, std::min(uk.mr, mc - ir), nc, kc, alpha,
                      a_panels + ir * kc, index_t(0), b, pc == 0 ? beta : T(1),
                      C + (ic + ir) * ldc + jc, ldc, backwards);
        }
      }
    }
    return;
  }
  WholeA<T> whole;
  if (whole_room && blocks > 1 && !in_place_rows<T>(a.p, a.rs, a.cs)) {
    whole = {whole_room, K};
    const RowTiles tiles(M, uk.mr);
    for (index_t t = 0; t < tiles.count(); ++t) {
      const index_t i0 = tiles.begin(t), m = tiles.height(t);
      for (index_t pc = 0; pc < K; pc += blk.kc)
        pack_a_panels(uk, View<T>{a.at(i0, pc), a.rs, a.cs}, m,
                      std::min(blk.kc, K - pc), whole.at(i0, m, pc));
    }
  }
  for (index_t q = 0; q < blocks; ++q) {
    const index_t jc = block_start(q), nc = std::min(blk.nc, n1 - jc);
    for (index_t pc = 0; pc < K; pc += blk.kc) {
      const index_t kc = std::min(blk.kc, K - pc);
      block_product(uk, M, nc, kc, alpha, View<T>{a.at(0, pc), a.rs, a.cs},
                    b_block(jc, nc, pc, kc), pc == 0 ? beta : T(1), C + jc,
                    ldc, a_panels, whole, pc, reverse);
    }
  }
}

// C [M, N] (row stride ldc) = ct^T, ct [N, M] contiguous: straight into a
// contiguous C, else through t_room and row copies.
template <typename T>
void transpose_into(const GemmKernels<T>& uk, const T* ct, index_t M,
                    index_t N, T* C, index_t ldc,
                    detail::AlignedBuffer<T>& t_room) {
  if (ldc == N) return uk.pack_t(ct, M, N, N, M, C);
  T* const t = t_room.reserve(std::size_t(M * N));
  uk.pack_t(ct, M, N, N, M, t);
  for (index_t i = 0; i < M; ++i) std::copy_n(t + i * N, N, C + i * ldc);
}

// A product that gains from running with its operands swapped, C^T =
// B A^T (swapped() below): C = A B^T with B [N, K] row-major (the cells'
// x W^T, W a weight matrix) whose rows the micro-kernel can read in place,
// and few rows of A.  Packed the usual way, W goes through the transposing
// pack (K*N values) for only M rows of A.  Swapped, W is the Ã side, read
// where it is, and A^T is packed (M*K values); the price is two transposes
// of C (M*N values) and, for M not a multiple of the panel width, vector
// lanes spent on padding (the narrow tile takes a rest of at most its
// width).  Measured (AVX-512, float32, best of 300 interleaved; usual ->
// swapped time): K = 256, N = 1024: M = 4-16 0.75-0.85x; K = 512, N =
// 2048: M = 8-16 0.77x; K = 128 (the transposes weigh more against the
// product), N = 512-1024: M = 4-8 1.07-1.10x, 12 0.87x, 16 0.69-0.83x,
// 24-32 0.86-0.93x, 64 1.0x; K = 64: M = 16-32 0.91x.  Before the narrow
// tile (32-wide panels only, best of 15), K = 256: M = 12 1.06x, 16-64
// 0.77-0.85x, 80-112 0.95-1.08x, 256 1.20x.  From M = 4 every tile of the
// usual path keeps the full tile's arithmetic (ukernel_simd.h), as the
// swapped tiles of W's rows do, and the K blocks are the same, so both
// paths give the same result bit for bit (the choice needs no care for
// thread counts).
constexpr index_t kSwapMaxRows = 64, kSwapMinK = 64;

// The fewest rows of A that swap: with K >= 256 the product outweighs the
// transposes from 4 rows, with a shorter K from 12.  Tiles below 4 rows
// split their sums (ukernel_simd.h), so the usual path's row tiles must
// all have 4 or more (AVX2's MR = 6 cuts M = 7 into 4 + 3: not swapped).
constexpr index_t swap_min_rows(index_t K) { return K >= 256 ? 4 : 12; }

template <typename T>
bool swaps(const GemmKernels<T>& uk, index_t M, index_t N, index_t K,
           const T* B, index_t ldb) {
  return M >= swap_min_rows(K) && M <= kSwapMaxRows && M < N &&
         K >= kSwapMinK && in_place_rows<T>(B, ldb, 1) &&
         RowTiles(M, uk.mr).smallest() >= kFullArithmeticRows;
}

// C = alpha A B^T + beta C as C^T = alpha B A^T + beta C^T (see swaps()),
// in ct [N, M]: C transposed into it (unless beta is 0: C is not read),
// then for each K block of the usual path (the same blocking(M, K)) the
// micro-kernel on W's row tiles, in place, and the panels of A^T, with
// beta on the first block and 1 on the others as in the usual path; ct
// transposed back into C at the end.
template <typename T>
void swapped(const GemmKernels<T>& uk, index_t M, index_t N, index_t K,
             T alpha, const T* A, index_t lda, const T* B, index_t ldb,
             T beta, T* C, index_t ldc) {
  thread_local detail::AlignedBuffer<T> panels_room, ct_room, t_room;
  if (N == 0) return;
  if (K == 0 || alpha == T(0)) return scale(M, index_t(0), N, beta, C, ldc);
  const Blocking blk = blocking(uk, M, K, false);
  // The columns of ct (rows of A) in panels NR wide, but for a rest that
  // fits the narrow tile (M = 16: one narrow panel, 48: 32 + 16), which
  // spends no lanes on padding beyond that width.
  const index_t nw = uk.nr_narrow, rest = M % uk.nr;
  const index_t tail = rest > 0 && rest <= nw ? rest : 0, wide = M - tail;
  const index_t wide_width = (wide + uk.nr - 1) / uk.nr * uk.nr;
  T* const at = panels_room.reserve(
      std::size_t((wide_width + (tail ? nw : 0)) * blk.kc));
  T* const ct = ct_room.reserve(std::size_t(N * M));
  if (beta != T(0)) uk.pack_t(C, ldc, M, M, N, ct);  // ct[n*M + m] = C[m, n]
  const RowTiles tiles(N, uk.mr);
  bool backwards = false;
  for (index_t pc = 0; pc < K; pc += blk.kc) {
    const index_t kc = std::min(blk.kc, K - pc);
    const Panels<T> wide_panels{at, kc * uk.nr};
    const Panels<T> tail_panel{at + wide_width * kc, kc * nw};
    // A^T [kc, M]: element (p, i) at A[i*lda + pc + p].
    pack_b_panels(uk, View<T>{A + pc, 1, lda}, kc, wide, at, wide_panels.stride,
                  uk.nr);
    pack_b_panels(uk, View<T>{A + wide * lda + pc, 1, lda}, kc, tail,
                  at + wide_width * kc, tail_panel.stride, nw);
    const T bk = pc == 0 ? beta : T(1);
    for (index_t q = 0; q < tiles.count(); ++q, backwards = !backwards) {
      const index_t r0 = tiles.begin(q), m = tiles.height(q);
      const T* w = B + r0 * ldb + pc;
      tile_pass(uk, m, wide, kc, alpha, w, ldb, wide_panels, bk, ct + r0 * M,
                M, backwards);
      tile_pass(uk, m, tail, kc, alpha, w, ldb, tail_panel, bk,
                ct + r0 * M + wide, M, backwards, true);
    }
  }
  transpose_into(uk, ct, M, N, C, ldc, t_room);  // C[m, n] = ct[n*M + m]
}

// A transposed and B not, the backward's dW = dG^T x (M = G*H rows, N = I
// or H columns, K = T*B): Ã is packed from pieces of rows of A, a line of
// MR values each (pack_a_panels), B̃ from whole rows of B.  With M at least
// twice N, C^T = B^T A has the pieces on its N x K side and the whole rows
// on its K x M side; C^T (M*N values, against M*N*K multiply-adds) is then
// transposed into C.  Every element is summed in the same order either way
// -- the FMA's two factors swap places, the K blocks are blocking()'s for
// 4 or more rows on both sides, and tiles of 4 rows or more keep one chain
// per element -- so the bits are the same, provided every tile on both
// sides has 4 rows or more: a transposed A goes by slabs, whose tiles are
// MR rows but the last, of X % MR rows (slab_tiles_whole).  beta must be 0
// (beta C added to a finished C^T would round once more than the usual
// path).  parallel_gemm hands each thread whole tiles of rows, the rest to
// the last: a share that swaps has the bits it would have had unswapped.
// Fp32 AVX-512 (MR 14) swaps for H = 32, 64, 256, 512, not 128 or 1024 (a
// 2-row last tile).  Fwd+bwd T=50 B=64 H=256: LSTM 0.99x, GRU 0.98x the
// time (lockstep medians; the scattered pack of dG^T was 5% of the LSTM's).
constexpr index_t kSwapTnRatio = 2;

constexpr bool slab_tiles_whole(index_t rows, index_t mr) {
  return rows >= kFullArithmeticRows &&
         (rows % mr == 0 || rows % mr >= kFullArithmeticRows);
}

template <typename T>
bool swaps_tn(const GemmKernels<T>& uk, index_t M, index_t N, T beta) {
  return beta == T(0) && M >= kSwapTnRatio * N &&
         slab_tiles_whole(M, uk.mr) && slab_tiles_whole(N, uk.mr);
}

}  // namespace

template <typename T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha,
          const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C,
          index_t ldc) {
  const GemmKernels<T>& uk = dispatch::active().gemm<T>();
  if (ta == Trans::N && tb == Trans::T && swaps(uk, M, N, K, B, ldb))
    return swapped(uk, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (ta == Trans::T && tb == Trans::N && swaps_tn(uk, M, N, beta)) {
    // Not thread_local: C^T is as large as C (a whole dW), which a thread
    // would keep for good; freed, its block goes back to the pool (cache.h).
    detail::AlignedBuffer<T> ct_room, t_room;
    T* const ct = ct_room.reserve(std::size_t(N * M));
    gemm<T>(Trans::T, Trans::N, N, M, K, alpha, B, ldb, A, lda, T(0), ct, M);
    return transpose_into(uk, ct, M, N, C, ldc, t_room);
  }
  thread_local detail::AlignedBuffer<T> buffer, a_buffer;
  const View<T> b = op_view(tb, B, ldb);
  // Slabs for A transposed, and for rows of A too long to be read in place
  // when there is more than one column block: packed once per K block
  // rather than once per column block (the backward's dx = dG W_ih).
  const bool by_slab =
      ta == Trans::T ||
      (!in_place_rows<T>(A, lda, 1) && several_column_blocks(uk, M, N, K));
  // By slabs, blocked() takes the K blocks outermost and every slab of
  // Ã meets every column block, so all of a K block's rows of B are packed
  // at once, when the block is first asked for (in a buffer of this call:
  // K block x N values), and serve every slab.  Otherwise each (column
  // block, K block) is used once, packed in turn into the thread's buffer.
  detail::AlignedBuffer<T> k_rows;
  index_t packed_pc = -1;
  auto pack_block = [&](index_t jc, index_t nc, index_t pc, index_t kc) {
    const index_t stride = kc * uk.nr;
    if (by_slab) {
      T* all = k_rows.reserve(std::size_t((N + uk.nr - 1) / uk.nr * stride));
      if (pc != packed_pc)
        pack_b_panels(uk, View<T>{b.at(pc, 0), b.rs, b.cs}, kc, N, all, stride);
      packed_pc = pc;
      return Panels<T>{all + jc / uk.nr * stride, stride};
    }
    T* dst = buffer.reserve(std::size_t((nc + uk.nr - 1) / uk.nr * stride));
    pack_b_panels(uk, View<T>{b.at(pc, jc), b.rs, b.cs}, kc, nc, dst, stride);
    return Panels<T>{dst, stride};
  };
  auto a_room = [&](const Blocking& blk) {
    return a_buffer.reserve(std::size_t(std::min(M, blk.mc) * blk.kc));
  };
  blocked(uk, M, 0, N, K, alpha, op_view(ta, A, lda), by_slab, pack_block,
          a_room, beta, C, ldc);
}

template <typename T>
bool reads_b_in_place(index_t M, index_t N, index_t K, const T* B,
                      index_t ldb) {
  return swaps(dispatch::active().gemm<T>(), M, N, K, B, ldb);
}

template <typename T>
index_t PackedB<T>::panel_width() const {
  return kernels_ ? kernels_->nr : 0;
}

// Values from one B̃ panel to the next.  K * NR, but when that is a
// multiple of 64 KiB (K a multiple of 512 for fp32 AVX-512) 4 KiB more: the
// L2 cache maps an address by its offset modulo 64 KiB (1024 sets of 16
// ways on Intel; 128 KiB and 8 ways on Zen 4), so unpadded, the K-block
// segments of the 14-16 panels of one column block all fell in the same
// sets, more lines than their ways, and evicted one another while a row
// tile walked them.  Padded, consecutive panels start 4 KiB apart.  (On
// this project's VM, whose L3 is shared and noisy, the effect is within
// +-4%: bench/ab.py --stat best, LSTM forward B=64 H=512 and B=256 H=1024.)
template <typename T>
index_t panel_stride(index_t K, index_t nr) {
  constexpr std::size_t kAliasBytes = 64 * 1024, kPadBytes = 4096;
  const index_t s = K * nr;
  return s > 0 && std::size_t(s) * sizeof(T) % kAliasBytes == 0
             ? s + index_t(kPadBytes / sizeof(T))
             : s;
}

template <typename T>
T* PackedB<T>::start(const GemmKernels<T>& uk, index_t K, index_t N) {
  kernels_ = &uk;
  K_ = K;
  N_ = N;
  return panels_.reserve(
      std::size_t((N + uk.nr - 1) / uk.nr * panel_stride<T>(K, uk.nr)));
}

template <typename T>
void pack_b(Trans tb, index_t K, index_t N, const T* B, index_t ldb,
            PackedB<T>& out) {
  const GemmKernels<T>& uk = dispatch::active().gemm<T>();
  pack_b_panels(uk, op_view(tb, B, ldb), K, N, out.start(uk, K, N),
                panel_stride<T>(K, uk.nr));
}

template <typename T>
void pack_b_rows(index_t K, const std::vector<RowBlock<T>>& blocks,
                 index_t ld, PackedB<T>& out) {
  const GemmKernels<T>& uk = dispatch::active().gemm<T>();
  index_t N = 0;
  for (const RowBlock<T>& b : blocks) N += b.count;
  const index_t stride = panel_stride<T>(K, uk.nr);
  T* dst = out.start(uk, K, N);
  std::vector<T> spanning;  // the rows of a panel that spans two blocks
  std::size_t blk = 0;      // column j of R^T is row `row` of blocks[blk]
  index_t row = 0;
  auto skip_used = [&]() {  // past the blocks whose rows are all packed
    while (row == blocks[blk].count) ++blk, row = 0;
  };
  auto next_row = [&]() {
    skip_used();
    return blocks[blk].first + (row++) * ld;
  };
  for (index_t j = 0; j < N; j += uk.nr, dst += stride) {
    const index_t w = std::min(uk.nr, N - j);
    skip_used();
    if (blocks[blk].count - row >= w) {
      pack_panel(uk, blocks[blk].first + row * ld, ld, index_t(1), w, uk.nr, K,
                 dst);
      row += w;
      continue;
    }
    spanning.resize(std::size_t(w * K));
    for (index_t q = 0; q < w; ++q)
      std::copy_n(next_row(), K, spanning.begin() + q * K);
    pack_panel(uk, spanning.data(), K, index_t(1), w, uk.nr, K, dst);
  }
}

template <typename T>
void gemm_packed(index_t M, T alpha, const T* A, index_t lda,
                 const PackedB<T>& B, index_t n0, index_t n1, T beta, T* C,
                 index_t ldc, bool reverse, T* whole_a) {
  const index_t nr = B.panel_width();
  if (n0 < 0 || n1 < n0 || n1 > B.N_ || (nr && n0 % nr))
    throw std::invalid_argument(
        "gemm_packed: columns [" + std::to_string(n0) + ", " +
        std::to_string(n1) + ") must satisfy 0 <= n0 <= n1 <= N = " +
        std::to_string(B.N_) + " with n0 a multiple of the panel width " +
        std::to_string(nr));
  if (n1 == n0) return;  // an empty range is fine even before any pack_b
  const index_t stride = panel_stride<T>(B.K_, nr);
  if (M == 1 && B.K_ > 0 && B.K_ <= kMaxKC && alpha != T(0)) {
    // One row (a batch-1 step): blocking() gives it one K block, and its K
    // values are its Ã micro-panel as they are, so the product is one
    // tile_pass over all the columns: the micro-kernel calls blocked()
    // makes, in its order, the same bits (tests/test_gemm.py), without the blocking and tiling bookkeeping, which
    // cost as much as a product of a few KiB: forward at B=1, T=1000, H=32
    // (lockstep A/B): LSTM 0.93x the time, GRU 0.89x, tanh RNN 0.85x; H=64
    // 0.85-0.96x; H>=256 within +-1%.
    const Panels<T> all{B.panels_.data() + n0 / nr * stride, stride};
    return tile_pass(*B.kernels_, index_t(1), n1 - n0, B.K_, alpha, A,
                     index_t(0), all, beta, C + n0, ldc, reverse);
  }
  auto panels = [&](index_t jc, index_t, index_t pc, index_t) {
    return Panels<T>{B.panels_.data() + jc / nr * stride + pc * nr, stride};
  };
  // A is not transposed: one Ã micro-panel at a time, on the stack.
  alignas(64) T a_panel[kPanelBytes / sizeof(T)];
  auto a_room = [&](const Blocking&) { return a_panel; };
  blocked(*B.kernels_, M, n0, n1, B.K_, alpha, View<T>{A, lda, 1}, false,
          panels, a_room, beta, C, ldc, reverse, whole_a);
}

namespace {
// Each product one K block: the recurrent one as blocking() cuts
// kFusedMaxBatch rows (fewer rows never get a shorter block, and one row
// takes gemm_packed's one-row path, which asks no more), the projection
// as it cuts kFusedRows rows.  And rows of x
// (ki values apart) that are not a multiple of 4 KiB apart: a projection
// tile reads its rows side by side, and rows 4 KiB apart all fall in the
// same set of L1 (64 sets of 64 bytes, 8 ways on Zen 4 and on Intel cores
// since Skylake), 16 rows in 8 ways: the fused forward at B = 1-2, T =
// 100, I = 1024 (fp32; fp64 512) took 1.3-1.7x the time of the products
// one after the other (H = 256-1024; I = 640, 768: 0.81-0.85x, lockstep in
// one process).  Batch 1's tiles of 8 rows (fused_tile_rows) fit the 8
// ways but no more: fused at I = H = 1024, T = 30-100, LSTM 1.03-1.13x the
// time, GRU 1.00-1.04x, tanh RNN 0.95-1.00x (lockstep A/B): not fused
// either.
template <typename T>
bool fuses_with(const GemmKernels<T>& uk, index_t kh, index_t ki) {
  return uk.fused_step && kh > 0 && ki > 0 &&
         std::size_t(ki) * sizeof(T) % 4096 != 0 &&
         blocking(uk, kFusedMaxBatch, kh, false).kc >= kh &&
         blocking(uk, kFusedRows, ki, false).kc >= ki;
}
}  // namespace

template <typename T>
bool fuses_shapes(index_t kh, index_t ki) {
  return fuses_with(dispatch::active().gemm<T>(), kh, ki);
}

template <typename T>
bool fuses(const PackedB<T>& Whh, const PackedB<T>& Wih) {
  const GemmKernels<T>* uk = Whh.kernels_;
  return uk && Wih.kernels_ == uk && Whh.N_ > 0 && Wih.N_ > 0 &&
         fuses_with(*uk, Whh.K_, Wih.K_);
}

template <typename T>
index_t fused_tiles(index_t m, const PackedB<T>& Wih) {
  const GemmKernels<T>* uk = Wih.kernels_;
  if (!uk || !uk->fused_width) return 0;
  const index_t rows = fused_tile_rows<T>(m, Wih.K_);
  const index_t width = rows == kFusedRows ? uk->fused_width : uk->nr;
  return m * kFusedRows / rows * ((Wih.N_ + width - 1) / width);
}

template <typename T>
void fused_step(index_t m, const T* h, index_t ldh, const PackedB<T>& Whh,
                T* y, index_t ldy, bool reverse, const T* x, index_t ldx,
                const PackedB<T>& Wih, index_t t0, index_t t1, const T* bias,
                T* out, index_t ldo) {
  if (m < 1 || m > kFusedMaxBatch || !fuses(Whh, Wih) || t0 < 0 ||
      t1 <= t0 || t1 > fused_tiles(m, Wih))
    throw std::invalid_argument("fused_step: a batch it does not fuse, packs "
                                "that do not fuse, or an empty or "
                                "out-of-range set of tiles");
  const index_t nr = Whh.kernels_->nr;
  // In FusedStepArgs' order: the shapes, the recurrent product's operands,
  // the projection's.
  const kernels::FusedStepArgs<T> f{
      Whh.N_, Whh.K_, Wih.K_, Wih.N_, m,
      h, ldh, Whh.panels_.data(), panel_stride<T>(Whh.K_, nr), y, ldy, reverse,
      x, ldx, Wih.panels_.data(), panel_stride<T>(Wih.K_, nr),
      t0, t1, bias, out, ldo};
  Whh.kernels_->fused_step(f);
}

template <typename T>
std::size_t whole_a_values(index_t M, index_t K, index_t N) {
  const bool used =
      std::size_t(K) * sizeof(T) > kInPlaceRowBytes &&
      several_column_blocks(dispatch::active().gemm<T>(), M, N, K);
  return used ? std::size_t(M * K) : 0;
}

template <typename T>
void gemv_t(index_t rows, index_t K, const T* W, index_t ldw, const T* x,
            T* y, bool reverse) {
  if (rows <= 0) return;
  dispatch::active().gemm<T>().gemv_t(rows, K, W, ldw, x, y, reverse);
}

template <typename T>
void gemv_n(index_t rows, index_t n, const T* W, index_t ldw, const T* a,
            T beta, T* y) {
  if (n <= 0) return;
  dispatch::active().gemm<T>().gemv_n(rows, n, W, ldw, a, beta, y);
}

#define RNNCORE_GEMM_INSTANTIATE(T)                                          \
  template class detail::AlignedBuffer<T>;                                   \
  template class PackedB<T>;                                                 \
  template void gemm<T>(Trans, Trans, index_t, index_t, index_t, T,          \
                        const T*, index_t, const T*, index_t, T, T*,         \
                        index_t);                                            \
  template void pack_b<T>(Trans, index_t, index_t, const T*, index_t,        \
                          PackedB<T>&);                                      \
  template void pack_b_rows<T>(index_t, const std::vector<RowBlock<T>>&,     \
                               index_t, PackedB<T>&);                        \
  template void gemm_packed<T>(index_t, T, const T*, index_t,                \
                               const PackedB<T>&, index_t, index_t, T, T*,   \
                               index_t, bool, T*);                           \
  template std::size_t whole_a_values<T>(index_t, index_t, index_t);         \
  template bool fuses_shapes<T>(index_t, index_t);                           \
  template bool fuses<T>(const PackedB<T>&, const PackedB<T>&);              \
  template index_t fused_tiles<T>(index_t, const PackedB<T>&);               \
  template void fused_step<T>(index_t, const T*, index_t, const PackedB<T>&, \
                              T*, index_t, bool, const T*, index_t,          \
                              const PackedB<T>&, index_t, index_t, const T*, \
                              T*, index_t);                                  \
  template bool reads_b_in_place<T>(index_t, index_t, index_t, const T*,     \
                                    index_t);                                \
  template void gemv_t<T>(index_t, index_t, const T*, index_t, const T*, T*, \
                          bool);                                             \
  template void gemv_n<T>(index_t, index_t, const T*, index_t, const T*, T,  \
                          T*);
RNNCORE_GEMM_INSTANTIATE(float)
RNNCORE_GEMM_INSTANTIATE(double)
#undef RNNCORE_GEMM_INSTANTIATE

}  // namespace rnncore::gemm

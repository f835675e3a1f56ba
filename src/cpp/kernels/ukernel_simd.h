// The register-blocked GEMM micro-kernel, written once over a vector type V
// and instantiated by each ISA translation unit with its own V (see
// gemm_avx2.cpp, gemm_avx512.cpp).  Contract and panel layout: kernel_table.h.
//
// Include this ONLY from a file in src/cpp/kernels/.  Everything here sits in
// an anonymous namespace, so each ISA's instantiations are private to its
// translation unit and code built with different -m flags never merges
// (no ODR mixing).  For the same reason it calls no function from std
// (std::integer_sequence is a type only).
//
// V provides:  T, reg, width;  zero(), set1(x), load(p), load_n(p, n),
//              store(p, r), store_n(p, r, n) (first n lanes only),
//              fmadd(a, b, c) = a*b + c, mul(a, b), add(a, b),
//              transpose(r[width]) (r[i] lane j <-> r[j] lane i).
#pragma once

#include <utility>

#include "kernels/kernel_table.h"

namespace rnncore::kernels {
namespace {

// FMA latency (4 cycles) x FMA pipes (2) on Zen 4 and on Intel cores since
// Skylake: fewer independent accumulators than this leave the pipes idle.
constexpr int kMinChains = 8;

// The transposing pack (contract: kernels::PackT), W x W blocks at a time:
// W source rows of W values (one vector each; rows past w are zeros, the
// lines' zero padding), transposed in registers, then stored as W lines of
// up to W values.  Source rows are read whole, a cache line or two each,
// and every store is a vector; the scalar loop it replaces moved one value
// per load and store.  W source rows at a time, each read from its start to
// its end, then the next W: a panel's 2W rows read side by side (lines
// outer) were 2W streams, more than the prefetchers follow -- a 1 MiB
// W_hh [1024, 256] out of L3 packed at 6 GiB/s, at 10-20 GiB/s this way;
// 1.4-2x faster in cache too (python bench/gemm_bench.py --pack).  While
// a group of W rows is transposed, the next group's lines are prefetched in
// address order, W per block (a group's lines, W*len*sizeof(T)/64, over its
// len/W blocks): LSTM and GRU forward at B=1, H=256 0.96x, T=10 B=16 0.97x,
// elsewhere within +-1% (lockstep A/B, Zen 4).
template <class V>
void pack_t(const typename V::T* src, index_t ld, index_t w, index_t width,
            index_t len, typename V::T* dst) {
  using reg = typename V::reg;
  constexpr int W = V::width;
  const index_t row_bytes = len * index_t(sizeof(typename V::T));
  for (index_t q0 = 0; q0 < width; q0 += W) {
    const index_t rows = w - q0 < W ? w - q0 : W;  // may be <= 0
    const index_t cols = width - q0 < W ? width - q0 : W;
    // The next W rows (of this panel or, the last, of the next one: past
    // the matrix a prefetch is dropped, never a fault), as integers: a
    // pointer past the array would be undefined.
    using uptr = __UINTPTR_TYPE__;
    const uptr next = reinterpret_cast<uptr>(src) +
                      uptr((q0 + W) * ld) * sizeof(typename V::T);
    index_t pr = 0, pb = 0;  // the next line to prefetch: row pr, byte pb
    for (index_t l0 = 0; l0 < len; l0 += W) {
      const index_t lines = len - l0 < W ? len - l0 : W;
      const typename V::T* s = src + q0 * ld + l0;
      for (int k = 0; k < W && pr < W; ++k) {
        __builtin_prefetch(
            reinterpret_cast<const void*>(
                next + uptr(pr * ld * index_t(sizeof(typename V::T)) + pb)),
            0, 3);
        pb += 64;
        if (pb >= row_bytes) pb = 0, ++pr;
      }
      reg r[W];
#pragma GCC unroll 16
      for (int q = 0; q < W; ++q)
        r[q] = q >= rows      ? V::zero()
               : lines == W ? V::load(s + q * ld)
                            : V::load_n(s + q * ld, lines);
      V::transpose(r);
      typename V::T* d = dst + l0 * width + q0;
      if (cols == W)
#pragma GCC unroll 16
        for (int l = 0; l < W; ++l) {
          if (l < lines) V::store(d + l * width, r[l]);
        }
      else
#pragma GCC unroll 16
        for (int l = 0; l < W; ++l) {
          if (l < lines) V::store_n(d + l * width, r[l], cols);
        }
    }
  }
}

// One block of the batch-1 product: y[0:nr] for rows w + r*ldw, nr <= W
// (the vector width).  Two groups of W/2 rows; each row sums into two
// accumulators (even and odd vectors of p), so a group keeps W independent
// chains (the FMA latency hidden) while streaming only W/2 rows at once:
// 16 rows at once kept more lines in flight than L1 tracks (30-45% slower
// than the packed GEMV; this is within 5-10% of it).  The W row sums then
// pass through a transpose, whose W vectors add up to the W dot products.
// A short block (kFull false) repeats its last row in the missing ones,
// read but never stored, so every row is summed the same way whatever its
// block.  Arrays are indexed by constants only (unrolled loops): they stay
// in registers.
template <class V, bool kFull>
inline __attribute__((always_inline)) void gemv_block(
    index_t nr, index_t k, const typename V::T* w, index_t ldw,
    const typename V::T* x, typename V::T* y) {
  using reg = typename V::reg;
  constexpr int W = V::width, G = W / 2;
  auto row = [&](int r) { return kFull || r < nr ? r : nr - 1; };
  const index_t pairs = k / (2 * W) * (2 * W);
  reg sums[W];
#pragma GCC unroll 2
  for (int g0 = 0; g0 < W; g0 += G) {
    reg acc[G][2];
#pragma GCC unroll 16
    for (int r = 0; r < G; ++r) acc[r][0] = acc[r][1] = V::zero();
    for (index_t p = 0; p < pairs; p += 2 * W) {
      const reg x0 = V::load(x + p), x1 = V::load(x + p + W);
#pragma GCC unroll 16
      for (int r = 0; r < G; ++r) {
        const typename V::T* wr = w + row(g0 + r) * ldw + p;
        acc[r][0] = V::fmadd(V::load(wr), x0, acc[r][0]);
        acc[r][1] = V::fmadd(V::load(wr + W), x1, acc[r][1]);
      }
    }
    index_t p = pairs;
    if (k - p >= W) {
      const reg x0 = V::load(x + p);
#pragma GCC unroll 16
      for (int r = 0; r < G; ++r)
        acc[r][0] = V::fmadd(V::load(w + row(g0 + r) * ldw + p), x0, acc[r][0]);
      p += W;
    }
    if (p < k) {
      const index_t m = k - p;
      const reg x1 = V::load_n(x + p, m);
#pragma GCC unroll 16
      for (int r = 0; r < G; ++r)
        acc[r][1] = V::fmadd(V::load_n(w + row(g0 + r) * ldw + p, m), x1, acc[r][1]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < G; ++r) sums[g0 + r] = V::add(acc[r][0], acc[r][1]);
  }
  V::transpose(sums);  // sums[i] lane r: lane i of row r's sums
  reg sum = sums[0];
#pragma GCC unroll 16
  for (int i = 1; i < W; ++i) sum = V::add(sum, sums[i]);
  if (kFull)
    V::store(y, sum);
  else
    V::store_n(y, sum, nr);
}

// The batch-1 product (contract: kernels::GemvT), W rows at a time
// (gemv_block).  Loads: W rows + x per W FMAs, so it runs at the speed W
// streams in from cache, without the per-call packing of W.
template <class V>
void gemv_t(index_t rows, index_t k, const typename V::T* Wm, index_t ldw,
            const typename V::T* x, typename V::T* y, bool reverse) {
  constexpr int W = V::width;
  const index_t blocks = (rows + W - 1) / W;
  for (index_t q = 0; q < blocks; ++q) {
    const index_t r0 = (reverse ? blocks - 1 - q : q) * W;
    const index_t nr = rows - r0 < W ? rows - r0 : W;
    if (nr == W)
      gemv_block<V, true>(nr, k, Wm + r0 * ldw, ldw, x, y + r0);
    else
      gemv_block<V, false>(nr, k, Wm + r0 * ldw, ldw, x, y + r0);
  }
}

// One block of up to NV vectors of columns of gemv_n (kFull: exactly NV
// full vectors; else w columns, the last vector masked), summed over the
// rows of W in two chains (even and odd rows: 2*NV independent
// accumulators) added at the end, so every column is summed alike.
template <class V, int NV, bool kFull>
inline __attribute__((always_inline)) void gemv_n_block(
    index_t rows, index_t w, const typename V::T* Wm, index_t ldw,
    const typename V::T* a, typename V::T beta, typename V::T* y) {
  using reg = typename V::reg;
  using T = typename V::T;
  constexpr int W = V::width;
  auto lanes = [&](int v) { return kFull ? index_t(W) : w - v * W; };
  auto load = [&](const T* p, int v) {
    return kFull || lanes(v) >= W ? V::load(p + v * W)
                                  : V::load_n(p + v * W, lanes(v));
  };
  reg acc[2][NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) acc[0][v] = acc[1][v] = V::zero();
  index_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    const T* w0 = Wm + r * ldw;
    const reg a0 = V::set1(a[r]), a1 = V::set1(a[r + 1]);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      if (lanes(v) > 0) {
        acc[0][v] = V::fmadd(a0, load(w0, v), acc[0][v]);
        acc[1][v] = V::fmadd(a1, load(w0 + ldw, v), acc[1][v]);
      }
  }
  if (r < rows) {
    const reg a0 = V::set1(a[r]);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      if (lanes(v) > 0) acc[0][v] = V::fmadd(a0, load(Wm + r * ldw, v), acc[0][v]);
  }
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    if (lanes(v) <= 0) break;
    reg sum = V::add(acc[0][v], acc[1][v]);
    if (beta != T(0)) sum = V::fmadd(V::set1(beta), load(y, v), sum);
    if (lanes(v) >= W)
      V::store(y + v * W, sum);
    else
      V::store_n(y + v * W, sum, lanes(v));
  }
}

// The backward's batch-1 product (contract: kernels::GemvN): columns in
// blocks of 4 vectors (gemv_n_block); the rows of W stream through once per
// block.
template <class V>
void gemv_n(index_t rows, index_t n, const typename V::T* Wm, index_t ldw,
            const typename V::T* a, typename V::T beta, typename V::T* y) {
  constexpr int NV = 4, C = NV * V::width;
  index_t j0 = 0;
  for (; j0 + C <= n; j0 += C)
    gemv_n_block<V, NV, true>(rows, C, Wm + j0, ldw, a, beta, y + j0);
  if (j0 < n)
    gemv_n_block<V, NV, false>(rows, n - j0, Wm + j0, ldw, a, beta, y + j0);
}

// Register-blocked tile of MR x NR, NR = NV vectors of V.
//
// Register budget (vector registers):  M*NV*U accumulators  +  NV for the
// current row of B̃  +  1 broadcast of Ã (often folded into the FMA as a
// memory operand).  MR*NV + NV + 1 must fit the register file:
//   AVX-512 (32 zmm): MR=14, NV=2 -> 28 + 2 + 1 = 31
//   AVX2    (16 ymm): MR=6,  NV=2 -> 12 + 2 + 1 = 15
// Per step p the full tile issues NV loads and MR broadcasts for MR*NV FMAs.
//
// Short tiles (M < MR rows, e.g. the batch-1 GEMV M = 1) have too few
// accumulators to hide the FMA latency, so they keep U independent copies
// that take turns over p (p % U) and are summed at the end; U*M*NV stays
// within the full tile's budget.
//
// kChainNV: the NV whose chain count U a tile of M rows keeps (unroll()),
// NV itself but for the narrow tile (NV = 1, kernel_table.h), which keeps
// the full tile's U so that both sum every element alike.
//
// kPrefetchRows (the narrow tile): rows read in place are prefetched
// kRowPrefetchBytes ahead, one line per row every line of k.  The narrow
// tile runs only in gemm's swapped products, on the rows of a weight
// matrix that is not in cache (a one-step call); there it is 0.83-0.93x
// the time (one-step LSTM forward, batch 4-16, lockstep A/B), 2-3 lines
// ahead best (1 line: no gain; 4: less; 8: slower).  The full-width tiles
// read rows in place that are in L1 (the time loops' rows of A) or, in
// swapped products, while twice as many FMAs hide the misses: prefetching
// made both slower (1.06-1.27x).
template <class V, int MR, int NV, int kChainNV = NV,
          bool kPrefetchRows = false>
struct MicroKernel {
  using T = typename V::T;
  using reg = typename V::reg;
  static constexpr int W = V::width;
  static constexpr int NR = NV * W;

  template <int M>
  static constexpr int unroll() {
    int u = (kMinChains + M * kChainNV - 1) / (M * kChainNV);
    return u < MR / M ? u : MR / M;
  }

  // Software prefetch of B̃ this far ahead (8+ steps of a tall tile), only
  // in tiles whose step is FMA-bound, where loads + prefetches fit the load
  // ports (as many as FMA pipes): M + NV + lines <= M * NV.
  static constexpr int kPrefetchBytes = 1024;
  static constexpr int kRowPrefetchBytes = 192;
  static constexpr int kLines = int(NR * sizeof(T) + 63) / 64;
  template <int M>
  static constexpr bool prefetches() {
    return M + NV + kLines <= M * NV;
  }

  // Ã element (i, p): a[i] of the packed micro-panel at step p (kRows
  // false: a = Ã + p*M), or a[i*lda] of a row-major A read in place
  // (kRows: a = A + p).
  template <int M, bool kRows>
  static inline __attribute__((always_inline)) void step(
      reg (&acc)[M][NV], const T* a, index_t lda, const T* b) {
    if constexpr (prefetches<M>()) {
      const char* ahead = reinterpret_cast<const char*>(b) + kPrefetchBytes;
#pragma GCC unroll 8
      for (int l = 0; l < kLines; ++l) __builtin_prefetch(ahead + 64 * l);
    }
    reg bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) {
      const reg ai = V::set1(kRows ? a[i * lda] : a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fmadd(ai, bv[v], acc[i][v]);
    }
  }

  // One row of C: c[0:n] = alpha*acc (+ beta*c[0:n] when beta != 0).
  static inline __attribute__((always_inline)) void store_row(
      const reg (&acc)[NV], index_t n, reg alpha, T beta, T* c) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const index_t left = n - v * W;
      if (left <= 0) return;
      reg r = V::mul(alpha, acc[v]);
      T* cv = c + v * W;
      if (beta != T(0))
        r = V::fmadd(V::set1(beta),
                     left >= W ? V::load(cv) : V::load_n(cv, left), r);
      if (left >= W)
        V::store(cv, r);
      else
        V::store_n(cv, r, left);
    }
  }

  template <int M, bool kRows>
  static void tile(index_t n, index_t k, T alpha, const T* a, index_t lda,
                   const T* b, T beta, T* c, index_t ldc) {
    constexpr int U = unroll<M>();
    reg acc[U][M][NV];
#pragma GCC unroll 16
    for (int u = 0; u < U; ++u)
#pragma GCC unroll 16
      for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[u][i][v] = V::zero();

    auto at = [&](index_t p) { return kRows ? a + p : a + p * M; };
    index_t p = 0;
    if constexpr (kRows && kPrefetchRows && U == 1) {
      constexpr int kStep = 64 / int(sizeof(T));
      constexpr int kAhead = kRowPrefetchBytes / int(sizeof(T));
      for (; p + kStep <= k; p += kStep) {
#pragma GCC unroll 16
        for (int i = 0; i < M; ++i)
          __builtin_prefetch(a + i * lda + p + kAhead, 0, 3);
#pragma GCC unroll 16
        for (int q = 0; q < kStep; ++q)
          step<M, kRows>(acc[0], at(p + q), lda, b + (p + q) * NR);
      }
    }
    for (; p + U <= k; p += U)
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u)
        step<M, kRows>(acc[u], at(p + u), lda, b + (p + u) * NR);
    for (; p < k; ++p) step<M, kRows>(acc[0], at(p), lda, b + p * NR);

#pragma GCC unroll 8
    for (int u = 1; u < U; ++u)
#pragma GCC unroll 16
      for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[0][i][v] = V::add(acc[0][i][v], acc[u][i][v]);

    const reg va = V::set1(alpha);
#pragma GCC unroll 16
    for (int i = 0; i < M; ++i) store_row(acc[0][i], n, va, beta, c + i * ldc);
  }

  // Tiles of every height 1..MR, compiled separately so that a short edge
  // tile costs only its own rows; run() picks one by m.
  using Tile = void (*)(index_t n, index_t k, T alpha, const T* a,
                        index_t lda, const T* b, T beta, T* c, index_t ldc);
  template <bool kRows, class Seq>
  struct Tiles;
  template <bool kRows, int... I>
  struct Tiles<kRows, std::integer_sequence<int, I...>> {
    static constexpr Tile by_height[] = {&tile<I + 1, kRows>...};
  };

  static void run(index_t m, index_t n, index_t k, T alpha, const T* a,
                  const T* b, T beta, T* c, index_t ldc) {
    Tiles<false, std::make_integer_sequence<int, MR>>::by_height[m - 1](
        n, k, alpha, a, 0, b, beta, c, ldc);
  }

  static void run_rows(index_t m, index_t n, index_t k, T alpha, const T* a,
                       index_t lda, const T* b, T beta, T* c, index_t ldc) {
    Tiles<true, std::make_integer_sequence<int, MR>>::by_height[m - 1](
        n, k, alpha, a, lda, b, beta, c, ldc);
  }

  static GemmKernels<T> kernels() {
    using Narrow = MicroKernel<V, MR, 1, NV, true>;
    return {MR,         NR,         &run,      &run_rows,
            &pack_t<V>, &gemv_t<V>, &gemv_n<V>, Narrow::NR,
            &Narrow::run_rows};
  }
};

// The fused step of batch 1 or 2 (contract: kernels::FusedStep) on the
// panels of MicroKernel<V, MR, NV>, whose arithmetic it repeats: the
// recurrent product as tile<1> or tile<2> (U chains taking turns over p,
// summed in order), the projection as its full-height tiles (one chain per
// element).  A projection tile is kFusedRows rows by one vector, summed
// over all of ki in registers and stored once: U*MH*NV (8 for either
// batch) + kFusedRows accumulators + a row of B̃_ih + a broadcast of h =
// 8 + 16 + 2 = 26 of AVX-512's 32; at batch 1 with long rows of x
// (gemm::fused_tile_rows) kFusedRows / 2 rows by a panel, the same 16
// accumulators and FMAs a step, half the broadcasts, 8 + 16 + 2 + 2 + 1
// = 29 (not prefetched: measured without).  AVX2's 16 cannot hold them:
// tiles taken 4 rows at a time there (8 + 4 + 3), each group reading the
// tile's column of B̃_ih again, made the batch-1 forwards 1.06-1.20x the
// time of unfused (LSTM, GRU, tanh RNN, H = 32-512, lockstep A/B on Zen
// 4): 4 FMAs per line of B̃_ih and 4 broadcasts do not hide under the
// stream.  (Chunks of 8 rows, two vectors wide, cut in K into a piece per
// step whose sums waited in memory between steps, read W_ih twice as
// often and loaded and stored 32 sums per panel and step: LSTM B=1 H=256
// forward 1.06-1.09x the time of this, and slower than unfused below 96
// units.)
//
// The recurrent product's kh steps (U at a time) over all panels and the
// tiles' ki steps each are spread evenly over each other (Bresenham): on
// an LSTM with H = I = 256 at batch 1, 64 tiles per chunk of 16 steps, 4
// a step, one projection step (16 FMAs, a line of B̃_ih) after every 8
// recurrent ones (16 FMAs, 16 lines of B̃_hh); at batch 2, 8 tiles a step
// (two row groups), one projection step after every 4 recurrent ones (16
// FMAs, 8 lines).
template <class V, int MR, int NV>
struct FusedKernel {
  using T = typename V::T;
  using reg = typename V::reg;
  using MK = MicroKernel<V, MR, NV>;
  static constexpr int W = V::width, NR = NV * W, M = int(kFusedRows);
  static_assert(MK::template unroll<1>() * NV <= 8 &&
                    MK::template unroll<2>() * 2 * NV <= 8,
                "the recurrent product's accumulators beside the tile's");

  static void run(const FusedStepArgs<T>& f) {
    if (f.m != 1) return run_rows<2, M>(f);
    if (fused_tile_rows<T>(f.m, f.ki) == M) return run_rows<1, M>(f);
    run_rows<1, M / 2>(f);
  }

  // MH rows of h (the batch): the recurrent product as tile<MH>; TR rows
  // a projection tile (M, one vector wide, or M / 2, a panel wide).
  template <int MH, int TR>
  static void run_rows(const FusedStepArgs<T>& f) {
    constexpr int U = MK::template unroll<MH>();
    constexpr int NT = TR == M ? 1 : NV;  // vectors a projection tile spans
    static_assert(TR * NT == M, "a tile of TR rows is M FMAs a step");
    const index_t panels = (f.n + NR - 1) / NR, tiles = f.t1 - f.t0;
    const index_t col_tiles = (f.ni + NT * W - 1) / (NT * W);
    const reg one = V::set1(T(1));
    // Tile t0 + i beside the recurrent product's panels [q0, q1) of the
    // walk (a share of them: every panel goes with one tile), the tile's
    // ki steps spread over those panels' rounds of U steps.
    for (index_t i = 0; i < tiles; ++i) {
      const index_t t = f.t0 + i, g = t / col_tiles, ct = t % col_tiles;
      const index_t q0 = i * panels / tiles, q1 = (i + 1) * panels / tiles;
      const index_t rounds = (q1 - q0) * (f.kh / U);
      // Columns [c0, c0 + NT*W) of B̃_ih (zero-padded past ni) for the rows
      // of group g.
      const index_t c0 = ct * NT * W;
      const T* b = f.b_ih + (c0 / NR) * f.ih_stride + c0 % NR;
      const T* x = f.x + g * TR * f.ldx;
      reg a[TR][NT];
#pragma GCC unroll 16
      for (int r = 0; r < TR; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NT; ++v) a[r][v] = V::zero();
      index_t pp = 0;
      auto proj_step = [&]() {
        const T* bp = b + pp * NR;
        if constexpr (NT == 1 && MK::template prefetches<TR>())
          __builtin_prefetch(reinterpret_cast<const char*>(bp) +
                             MK::kPrefetchBytes);
        reg bv[NT];
#pragma GCC unroll 2
        for (int v = 0; v < NT; ++v) bv[v] = V::load(bp + v * W);
#pragma GCC unroll 16
        for (int r = 0; r < TR; ++r) {
          const reg xr = V::set1(x[r * f.ldx + pp]);
#pragma GCC unroll 2
          for (int v = 0; v < NT; ++v) a[r][v] = V::fmadd(xr, bv[v], a[r][v]);
        }
        ++pp;
      };
      index_t err = 0;
      for (index_t q = q0; q < q1; ++q) {
        const index_t j = f.reverse ? panels - 1 - q : q;
        const index_t jr = j * NR, nj = f.n - jr < NR ? f.n - jr : NR;
        const T* bh = f.b_hh + j * f.hh_stride;
        reg acc[U][MH][NV];
#pragma GCC unroll 8
        for (int u = 0; u < U; ++u)
#pragma GCC unroll 2
          for (int r = 0; r < MH; ++r)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[u][r][v] = V::zero();
        index_t p = 0;
        for (; p + U <= f.kh; p += U) {
#pragma GCC unroll 8
          for (int u = 0; u < U; ++u)
            MK::template step<MH, true>(acc[u], f.h + p + u, f.ldh,
                                        bh + (p + u) * NR);
          err += f.ki;
          while (err >= rounds) {
            proj_step();
            err -= rounds;
          }
        }
        for (; p < f.kh; ++p)
          MK::template step<MH, true>(acc[0], f.h + p, f.ldh, bh + p * NR);
#pragma GCC unroll 8
        for (int u = 1; u < U; ++u)
#pragma GCC unroll 2
          for (int r = 0; r < MH; ++r)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v)
              acc[0][r][v] = V::add(acc[0][r][v], acc[u][r][v]);
#pragma GCC unroll 2
        for (int r = 0; r < MH; ++r)  // as tile<MH>, beta 0
          MK::store_row(acc[0][r], nj, one, T(0), f.y + r * f.ldy + jr);
      }
      while (pp < f.ki) proj_step();  // a tile without panels
      // out = 1 * sum + 1 * bias, as store_row with beta 1 on bias rows.
      T* const out = f.out + g * TR * f.ldo + c0;
#pragma GCC unroll 16
      for (int r = 0; r < TR; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NT; ++v) {
          const index_t lanes = f.ni - c0 - v * W;
          if (lanes <= 0) break;
          reg o = V::mul(one, a[r][v]);
          if (f.bias) {
            const T* bias = f.bias + c0 + v * W;
            o = V::fmadd(
                one, lanes >= W ? V::load(bias) : V::load_n(bias, lanes), o);
          }
          T* const orow = out + r * f.ldo + v * W;
          if (lanes >= W)
            V::store(orow, o);
          else
            V::store_n(orow, o, lanes);
        }
    }
  }
};

}  // namespace
}  // namespace rnncore::kernels

// Cache blocking of the GEMM loops (gemm.cpp).  Internal to src/cpp/gemm.
//
// Loop nest (row-major C; B̃ panels are the vector side, Ã the broadcast side):
//
//   for jc in N step NC                      C[:, jc:jc+NC]
//     for pc in K step KC
//       B block op(B)[pc:pc+KC, jc:jc+NC] as B̃ panels      -> lives in L2
//       for ir in M step MR (row tiles)
//         pack Ã micro-panel of op(A)[ir:ir+MR, pc:pc+KC]    -> L1
//         for jr in NC step NR
//           micro-kernel: C[ir:ir+MR, jc+jr:jc+jr+NR] += Ã B̃[:, jr:jr+NR]
//
// BLIS's roles, mirrored for row-major C: the L1-resident micro-panel is the
// broadcast side Ã (MR x KC), the L2-resident block is the vector side
// (KC x NC, streamed once per ir).  op(A) is read from its source once per
// (jc, pc); A not transposed is packed one micro-panel at a time, on the
// stack, which keeps gemm_packed allocation-free.
//
// A transposed, or with rows too long to read in place when N spans more
// than one column block (by_slab), instead runs
//
//   for pc in K step KC
//     op(B)[pc:pc+KC, :] as B̃ panels, all columns (gemm: once per K block)
//     for ic in M step MC
//       pack Ã panels of op(A)[ic:ic+MC, pc:pc+KC]          -> L2 (the slab)
//       for jc in N step NC, for ir in MC step MR, for jr in NC step NR
//         micro-kernel as above
//
// so each slab, BLIS's "MC" block, is packed once per K block whatever N.

// Sizes come from the per-core caches of the target, AMD Zen 4 (L1d 32 KiB
// 8-way, L2 1 MiB 8-way; Intel Skylake-SP .. Sapphire Rapids have 32-48 KiB
// and 1-2 MiB, so the same numbers suit them):
//   KC: the tallest Ã (MR x KC) fills GemmKernels::panel_bytes: half of
//       L1 for the AVX2 and reference tiles (the other half holds the B̃
//       lines in flight and the C tile; fp32 AVX2, MR 6: 680), 56 KiB for
//       AVX-512's (MR 14: fp32 1024, fp64 512), whose C tiles, reloaded
//       once per K block, cost more than Ã streaming from L2
//       (gemm_avx512.cpp).  Products of 1-3 rows get longer
//       runs, capped at 1024 (C's load and store are then < 0.1% of the
//       work): the GEMV (M = 1) reads each B̃ panel as one forward stream.
//       From 4 rows on, KC is that of MR rows whatever M, so a product's
//       K blocks -- and its bits -- do not depend on its number of rows
//       (a one-step call at batch 4 sums as the chunks of a longer call;
//       below 4 rows the tiles split their sums anyway, ukernel_simd.h).
//       K is then cut into that many blocks of near-equal length (multiples
//       of 8): K = 2048 as 8 x 256, not 7 x 288 + 32, whose short last
//       block paid a whole pass of C loads and stores for 32 steps (on
//       this project's VM the difference is within its +-4% noise).
//   NC: the B block (KC x NC) fills half of L2, leaving room for the C rows
//       and the A stream.  fp32 AVX-512: 128 columns at KC = 1024 (4
//       panels of 32), 256 at KC = 512.
//   MC: when A is transposed, a line of Ã (MR values of a row of A) is a
//       short piece of a row of A, and the rows are far apart (the RNN's
//       dG^T: 4 KiB, so every row falls in the same L1 set and in few L2
//       sets); packing one micro-panel at a time then reads each cache line
//       of A from L3 about twice, for little more than 56 of its 64 bytes.
//       Instead the Ã panels of MC rows (a quarter of L2: 56 for fp32
//       AVX-512 at KC = 1024, 224 at 256) are packed at once, reading
//       whole stretches of rows of A (TN 1024 x 256 x 3200: 90 -> 105 GFLOP/s), and, K blocks outermost,
//       once per K block rather than once per column block (TN dW = dG^T x,
//       3072 x 1024 x 5120: 0.89-0.90x the time; packing was 15% of it).
//       With A not transposed the per-panel pack keeps each Ã in L1 and is
//       as fast (MC = MR) within one column block; over several, rows that
//       must be packed go by slabs too (NN dx = dG W_ih, 5120 x 1024 x
//       3072: 0.89x the time).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/kernel_table.h"

namespace rnncore::gemm {

constexpr std::size_t kL1Bytes = 32 * 1024;
constexpr std::size_t kL2Bytes = 1024 * 1024;
constexpr index_t kMaxKC = 1024;
// Capacity of the stack buffer for one Ã micro-panel: the largest
// GemmKernels::panel_bytes of any ISA; KC is chosen so that min(M, MR) x KC
// values fit in the kernels' own budget.
constexpr std::size_t kPanelBytes = 56 * 1024;

// Tiles of at least this many rows keep one chain per element (the full
// tile's arithmetic, ukernel_simd.h); shorter ones split their sums.
constexpr index_t kFullArithmeticRows = 4;

struct Blocking {
  index_t kc, nc, mc;
};

// by_slab: A is transposed, so Ã is packed MC rows at a time (see MC
// above); otherwise MC = MR.  NC counts the rows the blocks really have,
// min(K, KC): a product with K = 128 keeps 1024 fp32 columns in half of L2,
// so its Ã micro-panels are packed once per K block, not once per 448
// columns.  Neither NC nor MC changes the order of any sum.
template <typename T>
Blocking blocking(const kernels::GemmKernels<T>& uk, index_t M, index_t K,
                  bool by_slab) {
  const std::size_t rows =
      std::size_t(M < kFullArithmeticRows ? M : uk.mr);
  const index_t kc_max =
      std::min(kMaxKC, index_t(std::min(uk.panel_bytes, kPanelBytes) /
                               (rows * sizeof(T))) / 8 * 8);
  const index_t k_blocks = std::max<index_t>(1, (K + kc_max - 1) / kc_max);
  const index_t kc =
      std::min(kc_max, ((K + k_blocks - 1) / k_blocks + 7) / 8 * 8);
  const std::size_t block_rows = std::size_t(std::max<index_t>(1, std::min(K, kc)));
  const index_t panels =
      index_t(kL2Bytes / 2 / (block_rows * std::size_t(uk.nr) * sizeof(T)));
  const index_t slab =
      index_t(kL2Bytes / 4 / (std::size_t(kc) * sizeof(T))) / uk.mr;
  return {kc, std::max<index_t>(1, panels) * uk.nr,
          by_slab ? std::max<index_t>(1, slab) * uk.mr : uk.mr};
}

// Whether the micro-kernel reads the rows of A (row stride rs, column
// stride cs) in place instead of a packed Ã: A not transposed, and rows of
// at most 2 KiB, so that the MR rows of a tile, however far apart, share
// the 8 ways of each L1 set without evicting one another (rows 4 KiB apart
// would all fall in the same sets).  Packing such a tile cost more than
// its product when N is small: 11% of a batch-16 tanh RNN step.  The
// kernel loads the values of A one at a time, so A must also be aligned to
// its type (a NumPy array need not be; a misaligned one is packed, which
// copies it with vector loads).
constexpr std::size_t kInPlaceRowBytes = 2048;

template <typename T>
bool in_place_rows(const T* p, index_t rs, index_t cs) {
  return cs == 1 && std::size_t(rs) * sizeof(T) <= kInPlaceRowBytes &&
         reinterpret_cast<std::uintptr_t>(p) % alignof(T) == 0;
}

// M rows as count() row tiles of near-equal height (at most MR, heights
// differing by at most one, the taller first): a short remainder tile (14 + 2
// for M = 16) costs almost as much as a full one.  Every tile of M >= 4 rows
// keeps the full tile's arithmetic (ukernel_simd.h: short tiles below 4 rows
// alone split their sums), so the split does not change any result as long
// as every tile has 4 rows: for M > MR every tile has at least MR / 2 rows
// (7 on AVX-512; AVX2's MR = 6 cuts M = 7 into 4 + 3).
class RowTiles {
 public:
  RowTiles(index_t M, index_t mr)
      : count_(std::max<index_t>(1, (M + mr - 1) / mr)),
        base_(M / count_),
        extra_(M % count_) {}
  index_t count() const { return count_; }
  index_t smallest() const { return base_; }
  index_t begin(index_t t) const { return t * base_ + std::min(t, extra_); }
  index_t height(index_t t) const { return base_ + (t < extra_ ? 1 : 0); }

 private:
  index_t count_, base_, extra_;
};

}  // namespace rnncore::gemm

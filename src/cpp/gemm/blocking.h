// Cache blocking of the GEMM loops (gemm.cpp).  Internal to src/cpp/gemm.
//
// Loop nest (row-major C; B̃ panels are the vector side, Ã the broadcast side):
//
//   for jc in N step NC                      C[:, jc:jc+NC]
//     for pc in K step KC
//       B block op(B)[pc:pc+KC, jc:jc+NC] as B̃ panels      -> lives in L2
//       for ir in M step MR
//         pack Ã = op(A)[ir:ir+MR, pc:pc+KC] (on the stack)  -> lives in L1
//         for jr in NC step NR
//           micro-kernel: C[ir:ir+MR, jc+jr:jc+jr+NR] += Ã B̃[:, jr:jr+NR]
//
// BLIS's roles, mirrored for row-major C: the L1-resident micro-panel is the
// broadcast side Ã (MR x KC), the L2-resident block is the vector side
// (KC x NC, streamed once per ir), and the M dimension needs no L3 block
// (BLIS's "MC" slab): op(A) is read from its source once per (jc, pc) and
// only MR rows at a time are packed, which keeps gemm_packed allocation-free.
//
// Sizes come from the per-core caches of the target, AMD Zen 4 (L1d 32 KiB
// 8-way, L2 1 MiB 8-way; Intel Skylake-SP .. Sapphire Rapids have 32-48 KiB
// and 1-2 MiB, so the same numbers suit them):
//   KC: the tallest Ã (min(M, MR) x KC) fills half of L1; the other half
//       holds the B̃ lines in flight and the C tile.  fp32 AVX-512 (MR 14):
//       288; fp64: 144; fp32 AVX2 (MR 6): 680.  Short products get longer
//       runs, capped at 1024 (C's load and store are then < 0.1% of the
//       work): the GEMV (M = 1) reads each B̃ panel as one forward stream.
//   NC: the B block (KC x NC) fills half of L2, leaving room for the C rows
//       and the A stream.  fp32 AVX-512: 448 columns (14 panels of 32).
#pragma once

#include <algorithm>
#include <cstddef>

#include "kernels/kernel_table.h"

namespace rnncore::gemm {

constexpr std::size_t kL1Bytes = 32 * 1024;
constexpr std::size_t kL2Bytes = 1024 * 1024;
constexpr index_t kMaxKC = 1024;
// Capacity of the stack buffer for one Ã micro-panel; KC is chosen so that
// min(M, MR) x KC values fit.
constexpr std::size_t kPanelBytes = kL1Bytes / 2;

struct Blocking {
  index_t kc, nc;
};

template <typename T>
Blocking blocking(const kernels::GemmKernels<T>& uk, index_t M) {
  const std::size_t rows = std::size_t(std::min(M, uk.mr));
  const index_t kc =
      std::min(kMaxKC, index_t(kPanelBytes / (rows * sizeof(T))) / 8 * 8);
  const index_t panels =
      index_t(kL2Bytes / 2 / (std::size_t(kc * uk.nr) * sizeof(T)));
  return {kc, std::max<index_t>(1, panels) * uk.nr};
}

}  // namespace rnncore::gemm

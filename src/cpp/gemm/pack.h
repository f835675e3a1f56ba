// Portable packing into the micro-kernel's panels (layout in
// kernels/kernel_table.h).  Internal to src/cpp/gemm.
#pragma once

#include <algorithm>

#include "rnncore/common.h"

namespace rnncore::gemm {

// A strided view of a matrix: element (r, c) at p[r*rs + c*cs].  op(X) of a
// row-major X with row stride ld is {X, ld, 1}; op(X) = X^T is {X, 1, ld}.
template <typename T>
struct View {
  const T* p;
  index_t rs, cs;
  const T* at(index_t r, index_t c) const { return p + r * rs + c * cs; }
};

// One panel, `len` lines of `width` values:
//   dst[l*width + q] = src[q*s_q + l*s_l]  for q < w,   0 for w <= q < width.
// An Ã micro-panel is lines = columns p of A, q = rows i (w = m, width = MR);
// a B̃ panel is lines = rows p of B, q = columns j (w = n, width = NR).
// When a line is not contiguous in src (s_q != 1), lines are copied
// kLines at a time, source row q by source row q, so that both the source
// rows and the destination lines being written stay in L1.
template <typename T>
void pack_panel(const T* src, index_t s_q, index_t s_l, index_t w,
                index_t width, index_t len, T* dst) {
  constexpr index_t kLines = 16;
  for (index_t l0 = 0; l0 < len; l0 += kLines) {
    const index_t lines = std::min(kLines, len - l0);
    T* d = dst + l0 * width;
    if (s_q == 1)
      for (index_t l = 0; l < lines; ++l)
        std::copy_n(src + (l0 + l) * s_l, w, d + l * width);
    else
      for (index_t q = 0; q < w; ++q)
        for (index_t l = 0; l < lines; ++l)
          d[l * width + q] = src[q * s_q + (l0 + l) * s_l];
    for (index_t l = 0; l < lines; ++l)
      std::fill(d + l * width + w, d + (l + 1) * width, T(0));
  }
}

// The k x n block of B at b as ceil(n / nr) panels of nr columns, panel j at
// dst + j*stride.
template <typename T>
void pack_b_panels(View<T> b, index_t k, index_t n, index_t nr, T* dst,
                   index_t stride) {
  for (index_t j = 0; j < n; j += nr, dst += stride)
    pack_panel(b.at(0, j), b.cs, b.rs, std::min(nr, n - j), nr, k, dst);
}

}  // namespace rnncore::gemm

// Packing into the micro-kernel's panels (layout in kernels/kernel_table.h).
// Internal to src/cpp/gemm.
#pragma once

#include <algorithm>
#include <cstring>

#include "kernels/kernel_table.h"

namespace rnncore::gemm {

// A strided view of a matrix: element (r, c) at p[r*rs + c*cs].  op(X) of a
// row-major X with row stride ld is {X, ld, 1}; op(X) = X^T is {X, 1, ld}.
template <typename T>
struct View {
  const T* p;
  index_t rs, cs;
  const T* at(index_t r, index_t c) const { return p + r * rs + c * cs; }
};

// The scalar transposing pack (contract: kernels::PackT), the reference
// kernels' entry.  It reads through memcpy: a NumPy array need not be
// aligned to its type, and a typed load of a misaligned value is undefined.  Lines are copied kLines at a time, source row q by
// source row q, so that both the source rows and the destination lines
// being written stay in L1.
template <typename T>
void pack_t_scalar(const T* src, index_t ld, index_t w, index_t width,
                   index_t len, T* dst) {
  constexpr index_t kLines = 16;
  for (index_t l0 = 0; l0 < len; l0 += kLines) {
    const index_t lines = std::min(kLines, len - l0);
    T* d = dst + l0 * width;
    for (index_t q = 0; q < w; ++q)
      for (index_t l = 0; l < lines; ++l)  // memcpy: src may be misaligned
        std::memcpy(d + l * width + q, src + q * ld + l0 + l, sizeof(T));
    for (index_t l = 0; l < lines; ++l)
      std::fill(d + l * width + w, d + (l + 1) * width, T(0));
  }
}

// One line of a panel: dst[0:w] = src[0:w], dst[w:width] = 0.  The copy
// is of constant size for the panel widths (NR: 32, 16, 8, 4 values) and
// tile heights (MR: 14, 6, 4) of the kernels, which the compiler inlines:
// a library call per line of a panel cost more than the copy.  (The Ã
// panels of a transposed A, dW = dG^T x, are lines of MR values: 118,000
// calls of memmove for 56 bytes in an LSTM fwd+bwd at T=100, B=16, H=128,
// 5-7% of its profile; inlined, the packing is 7%, not 8.2%.)
template <typename T>
inline void put_line(const T* src, index_t w, index_t width, T* dst) {
  switch (w) {
    case 32: std::memcpy(dst, src, 32 * sizeof(T)); break;
    case 16: std::memcpy(dst, src, 16 * sizeof(T)); break;
    case 14: std::memcpy(dst, src, 14 * sizeof(T)); break;
    case 8: std::memcpy(dst, src, 8 * sizeof(T)); break;
    case 6: std::memcpy(dst, src, 6 * sizeof(T)); break;
    case 4: std::memcpy(dst, src, 4 * sizeof(T)); break;
    default: std::memcpy(dst, src, std::size_t(w) * sizeof(T));
  }
  std::fill(dst + w, dst + width, T(0));
}

// One panel, `len` lines of `width` values:
//   dst[l*width + q] = src[q*s_q + l*s_l]  for q < w,   0 for w <= q < width.
// An Ã micro-panel is lines = columns p of A, q = rows i (w = m, width = MR);
// a B̃ panel is lines = rows p of B, q = columns j (w = n, width = NR).
// A view has one unit stride: contiguous lines (s_q == 1) are copied here,
// the others (s_l == 1) go to the ISA's transposing pack, but for panels
// of a few source rows (the Ã of a GEMV or of a batch of 2 or 3), where a
// W x W transpose would move mostly zeros: the scalar loop is faster there.
template <typename T>
void pack_panel(const kernels::GemmKernels<T>& uk, const T* src, index_t s_q,
                index_t s_l, index_t w, index_t width, index_t len, T* dst) {
  constexpr index_t kMinTransposeRows = 4;
  if (s_q != 1)
    return (w < kMinTransposeRows ? pack_t_scalar<T> : uk.pack_t)(
        src, s_q, w, width, len, dst);
  for (index_t l = 0; l < len; ++l)
    put_line(src + l * s_l, w, width, dst + l * width);
}

// Rows [0, m) of a as ceil(m / mr) Ã micro-panels of k lines, panel i
// (rows i*mr ..) at dst + i*mr*k, mr rows wide (the last one m % mr when
// that is not 0).  Contiguous lines (a = op(A) of a transposed A) are read
// once for all the panels: a whole source row of m values at a time, not
// m/mr short pieces of rows far apart.
template <typename T>
void pack_a_panels(const kernels::GemmKernels<T>& uk, View<T> a, index_t m,
                   index_t k, T* dst) {
  if (a.rs != 1) {
    for (index_t i = 0; i < m; i += uk.mr) {
      const index_t w = std::min(uk.mr, m - i);
      pack_panel(uk, a.at(i, 0), a.rs, a.cs, w, w, k, dst + i * k);
    }
    return;
  }
  for (index_t p = 0; p < k; ++p) {
    const T* src = a.at(0, p);
    for (index_t i = 0; i < m; i += uk.mr) {
      const index_t w = std::min(uk.mr, m - i);
      put_line(src + i, w, w, dst + i * k + p * w);
    }
  }
}

// The k x n block of B at b as ceil(n / nr) panels of nr columns, panel j at
// dst + j*stride.  Rows of B contiguous (B not transposed) are read once
// each, whole, for all the panels: panel by panel, the rows of a weight
// matrix (2 KiB or more apart) were read a 128-byte piece at a time, each
// from another cache line the prefetchers had not fetched -- 37% of a
// one-step GRU fwd+bwd at B = 32, H = 512 (the backward packs W_hh and
// W_ih).
// nr: the panel width, uk.nr or, for the narrow tile, uk.nr_narrow.
template <typename T>
void pack_b_panels(const kernels::GemmKernels<T>& uk, View<T> b, index_t k,
                   index_t n, T* dst, index_t stride, index_t nr) {
  if (b.cs == 1) {
    for (index_t l = 0; l < k; ++l) {
      const T* src = b.at(l, 0);
      T* d = dst + l * nr;
      for (index_t j = 0; j < n; j += nr, d += stride)
        put_line(src + j, std::min(nr, n - j), nr, d);
    }
    return;
  }
  for (index_t j = 0; j < n; j += nr, dst += stride)
    pack_panel(uk, b.at(0, j), b.cs, b.rs, std::min(nr, n - j), nr, k, dst);
}

template <typename T>
void pack_b_panels(const kernels::GemmKernels<T>& uk, View<T> b, index_t k,
                   index_t n, T* dst, index_t stride) {
  pack_b_panels(uk, b, k, n, dst, stride, uk.nr);
}

}  // namespace rnncore::gemm

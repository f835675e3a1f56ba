// GEMM micro-kernels for AVX-512F (zmm, 32 registers).  Compiled with
// -mavx512f -mavx2 -mfma only (CMakeLists.txt); called only when cpuid says
// the CPU has all three (src/cpp/dispatch).
//
// Tiles: fp32 ukernel_avx512_14x32, fp64 ukernel_avx512_14x16 (2 zmm of
// columns by 14 rows: 28 accumulators, 2 for B̃, 1 broadcast = 31 of 32).
#include <immintrin.h>

#include "kernels/ukernel_simd.h"

namespace rnncore::kernels {
namespace {

// The last step of a zmm transpose.  The in-lane step leaves 4 groups g of
// G = width/4 registers (G rows of the source each): lane L of r[g*G + k]
// holds column L*G + k of group g's rows.  Afterwards r[L*G + k] lane g is
// that block: for each k a 4 x 4 transpose of 128-bit lanes, done with two
// rounds of shuffle_f32x4 / shuffle_f64x2.
template <class Z>
inline void transpose_lanes(typename Z::reg (&r)[Z::width]) {
  using reg = typename Z::reg;
  constexpr int G = Z::width / 4;
  reg out[Z::width];
#pragma GCC unroll 4
  for (int k = 0; k < G; ++k) {
    // Lane pairs (0, 2) and (1, 3) of groups 0+1 and 2+3.
    const reg v0 = Z::template shuffle_lanes<0x88>(r[0 * G + k], r[1 * G + k]);
    const reg v1 = Z::template shuffle_lanes<0xDD>(r[0 * G + k], r[1 * G + k]);
    const reg v2 = Z::template shuffle_lanes<0x88>(r[2 * G + k], r[3 * G + k]);
    const reg v3 = Z::template shuffle_lanes<0xDD>(r[2 * G + k], r[3 * G + k]);
    out[0 * G + k] = Z::template shuffle_lanes<0x88>(v0, v2);
    out[2 * G + k] = Z::template shuffle_lanes<0xDD>(v0, v2);
    out[1 * G + k] = Z::template shuffle_lanes<0x88>(v1, v3);
    out[3 * G + k] = Z::template shuffle_lanes<0xDD>(v1, v3);
  }
#pragma GCC unroll 16
  for (int i = 0; i < Z::width; ++i) r[i] = out[i];
}

struct Zmm32 {
  using T = float;
  using reg = __m512;
  static constexpr int width = 16;
  static __mmask16 first(index_t n) { return __mmask16((1u << n) - 1u); }
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(T x) { return _mm512_set1_ps(x); }
  static reg load(const T* p) { return _mm512_loadu_ps(p); }
  static reg load_n(const T* p, index_t n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static void store(T* p, reg r) { _mm512_storeu_ps(p, r); }
  static void store_n(T* p, reg r, index_t n) { _mm512_mask_storeu_ps(p, first(n), r); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  template <int imm>
  static reg shuffle_lanes(reg a, reg b) { return _mm512_shuffle_f32x4(a, b, imm); }
  // 16 x 16: 4 x 4 transposes inside each 128-bit lane of 4 rows, then the
  // 4 x 4 transpose of lanes across 4 such groups (transpose_lanes).
  static void transpose(reg (&r)[16]) {
#pragma GCC unroll 4
    for (int g = 0; g < 16; g += 4) {
      const __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(r[g], r[g + 1]));
      const __m512d t1 = _mm512_castps_pd(_mm512_unpackhi_ps(r[g], r[g + 1]));
      const __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(r[g + 2], r[g + 3]));
      const __m512d t3 = _mm512_castps_pd(_mm512_unpackhi_ps(r[g + 2], r[g + 3]));
      r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
      r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
      r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
      r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    transpose_lanes<Zmm32>(r);
  }
};

struct Zmm64 {
  using T = double;
  using reg = __m512d;
  static constexpr int width = 8;
  static __mmask8 first(index_t n) { return __mmask8((1u << n) - 1u); }
  static reg zero() { return _mm512_setzero_pd(); }
  static reg set1(T x) { return _mm512_set1_pd(x); }
  static reg load(const T* p) { return _mm512_loadu_pd(p); }
  static reg load_n(const T* p, index_t n) { return _mm512_maskz_loadu_pd(first(n), p); }
  static void store(T* p, reg r) { _mm512_storeu_pd(p, r); }
  static void store_n(T* p, reg r, index_t n) { _mm512_mask_storeu_pd(p, first(n), r); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  template <int imm>
  static reg shuffle_lanes(reg a, reg b) { return _mm512_shuffle_f64x2(a, b, imm); }
  // 8 x 8: 2 x 2 transposes inside each 128-bit lane of 2 rows, then the
  // 4 x 4 transpose of lanes across 4 such pairs (transpose_lanes).
  static void transpose(reg (&r)[8]) {
#pragma GCC unroll 4
    for (int g = 0; g < 8; g += 2) {
      const reg lo = _mm512_unpacklo_pd(r[g], r[g + 1]);
      r[g + 1] = _mm512_unpackhi_pd(r[g], r[g + 1]);
      r[g] = lo;
    }
    transpose_lanes<Zmm64>(r);
  }
};

using ukernel_avx512_14x32 = MicroKernel<Zmm32, 14, 2>;
using ukernel_avx512_14x16 = MicroKernel<Zmm64, 14, 2>;

}  // namespace

void fill_gemm_avx512(KernelTable& t) {
  t.f32 = ukernel_avx512_14x32::kernels();
  t.f64 = ukernel_avx512_14x16::kernels();
}

}  // namespace rnncore::kernels

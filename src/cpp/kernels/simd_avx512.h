// The AVX-512F vector types the kernels are written over (the V of
// ukernel_simd.h and activations_simd.h).  Include ONLY from a translation
// unit compiled with -mavx512f -mavx2 -mfma (gemm_avx512.cpp,
// gates_avx512.cpp): everything sits in an anonymous namespace, so no
// AVX-512 code merges into code built for another ISA.
#pragma once

#include <immintrin.h>

#include "rnncore/common.h"

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
  // For the activations (activations_simd.h):
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }
  // b when either is NaN, as the instructions do: min(hi, max(lo, x))
  // clamps x and keeps NaN.
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg round(reg a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // p * 2^k for integral k in [-126, 127] (NaN in either: NaN).
  static reg scale2(reg p, reg k) { return _mm512_scalef_ps(p, k); }
  // 1/d within 2^-14 relative.
  static reg rcp(reg d) { return _mm512_rcp14_ps(d); }
  static reg abs(reg a) { return _mm512_abs_ps(a); }
  // The magnitude of mag with the sign of sign (bits: m ? mag : sign).
  static reg copysign(reg mag, reg sign) {
    const __m512i m = _mm512_set1_epi32(0x7fffffff);
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
        m, _mm512_castps_si512(mag), _mm512_castps_si512(sign), 0xca));
  }
  // a < b ? x : y, lane by lane (false for NaN).
  static reg select_lt(reg a, reg b, reg x, reg y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x);
  }
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

}  // namespace
}  // namespace rnncore::kernels

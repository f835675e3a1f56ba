// The AVX2 + FMA vector types the kernels are written over (the V of
// ukernel_simd.h and activations_simd.h).  Include ONLY from a translation
// unit compiled with -mavx2 -mfma (gemm_avx2.cpp, gates_avx2.cpp):
// everything sits in an anonymous namespace, so no AVX2 code merges into
// code built for another ISA.
#pragma once

#include <immintrin.h>

#include "rnncore/common.h"

namespace rnncore::kernels {
namespace {

struct Ymm32 {
  using T = float;
  using reg = __m256;
  static constexpr int width = 8;
  // Lane l is selected when l < n (sign bit set).
  static __m256i first(index_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(T x) { return _mm256_set1_ps(x); }
  static reg load(const T* p) { return _mm256_loadu_ps(p); }
  static reg load_n(const T* p, index_t n) { return _mm256_maskload_ps(p, first(n)); }
  static void store(T* p, reg r) { _mm256_storeu_ps(p, r); }
  static void store_n(T* p, reg r, index_t n) { _mm256_maskstore_ps(p, first(n), r); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  // For the activations (activations_simd.h):
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_ps(a, b, c); }
  // b when either is NaN, as the instructions do: min(hi, max(lo, x))
  // clamps x and keeps NaN.
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg round(reg a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // p * 2^k for integral k in [-126, 127] (NaN p: NaN; a NaN k converts
  // to INT_MIN, whose exponent field is 1: p * 1).
  static reg scale2(reg p, reg k) {
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }
  // 1/d within 1.5 * 2^-12 relative.
  static reg rcp(reg d) { return _mm256_rcp_ps(d); }
  static reg abs(reg a) {
    return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  }
  // The magnitude of mag with the sign of sign.
  static reg copysign(reg mag, reg sign) {
    const reg s = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000u)));
    return _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sign));
  }
  // a < b ? x : y, lane by lane (false for NaN).
  static reg select_lt(reg a, reg b, reg x, reg y) {
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
  }
  // 8 x 8: 4 x 4 transposes inside each 128-bit lane of rows 0-3 and 4-7,
  // then the halves swapped across the two groups.
  static void transpose(reg (&r)[8]) {
#pragma GCC unroll 2
    for (int g = 0; g < 8; g += 4) {
      const __m256d t0 = _mm256_castps_pd(_mm256_unpacklo_ps(r[g], r[g + 1]));
      const __m256d t1 = _mm256_castps_pd(_mm256_unpackhi_ps(r[g], r[g + 1]));
      const __m256d t2 = _mm256_castps_pd(_mm256_unpacklo_ps(r[g + 2], r[g + 3]));
      const __m256d t3 = _mm256_castps_pd(_mm256_unpackhi_ps(r[g + 2], r[g + 3]));
      r[g] = _mm256_castpd_ps(_mm256_unpacklo_pd(t0, t2));
      r[g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(t0, t2));
      r[g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(t1, t3));
      r[g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(t1, t3));
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const reg lo = _mm256_permute2f128_ps(r[k], r[4 + k], 0x20);
      r[4 + k] = _mm256_permute2f128_ps(r[k], r[4 + k], 0x31);
      r[k] = lo;
    }
  }
};

struct Ymm64 {
  using T = double;
  using reg = __m256d;
  static constexpr int width = 4;
  static __m256i first(index_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n),
                              _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static reg zero() { return _mm256_setzero_pd(); }
  static reg set1(T x) { return _mm256_set1_pd(x); }
  static reg load(const T* p) { return _mm256_loadu_pd(p); }
  static reg load_n(const T* p, index_t n) { return _mm256_maskload_pd(p, first(n)); }
  static void store(T* p, reg r) { _mm256_storeu_pd(p, r); }
  static void store_n(T* p, reg r, index_t n) { _mm256_maskstore_pd(p, first(n), r); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  // 4 x 4: 2 x 2 transposes inside each 128-bit lane of rows 0-1 and 2-3,
  // then the halves swapped across the two pairs.
  static void transpose(reg (&r)[4]) {
    const reg t0 = _mm256_unpacklo_pd(r[0], r[1]);
    const reg t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const reg t2 = _mm256_unpacklo_pd(r[2], r[3]);
    const reg t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
  }
};

}  // namespace
}  // namespace rnncore::kernels

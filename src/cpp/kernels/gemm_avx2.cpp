// GEMM micro-kernels for AVX2 + FMA (ymm, 16 registers).  Compiled with
// -mavx2 -mfma only (CMakeLists.txt); called only when cpuid says the CPU
// has both (src/cpp/dispatch).
//
// Tiles: fp32 ukernel_avx2_6x16, fp64 ukernel_avx2_6x8 (2 ymm of columns by
// 6 rows: 12 accumulators, 2 for B̃, 1 broadcast = 15 of 16).
#include <immintrin.h>

#include "kernels/ukernel_simd.h"

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

using ukernel_avx2_6x16 = MicroKernel<Ymm32, 6, 2>;
using ukernel_avx2_6x8 = MicroKernel<Ymm64, 6, 2>;

}  // namespace

void fill_gemm_avx2(KernelTable& t) {
  t.f32 = ukernel_avx2_6x16::kernels();
  t.f64 = ukernel_avx2_6x8::kernels();
}

}  // namespace rnncore::kernels

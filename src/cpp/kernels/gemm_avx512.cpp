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
};

using ukernel_avx512_14x32 = MicroKernel<Zmm32, 14, 2>;
using ukernel_avx512_14x16 = MicroKernel<Zmm64, 14, 2>;

}  // namespace

void fill_gemm_avx512(KernelTable& t) {
  t.f32 = ukernel_avx512_14x32::kernels();
  t.f64 = ukernel_avx512_14x16::kernels();
}

}  // namespace rnncore::kernels

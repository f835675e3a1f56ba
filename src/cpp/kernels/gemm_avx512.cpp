// GEMM micro-kernels for AVX-512F (zmm, 32 registers).  Compiled with
// -mavx512f -mavx2 -mfma only (CMakeLists.txt); called only when cpuid says
// the CPU has all three (src/cpp/dispatch).
//
// Tiles: fp32 ukernel_avx512_14x32, fp64 ukernel_avx512_14x16 (2 zmm of
// columns by 14 rows: 28 accumulators, 2 for B̃, 1 broadcast = 31 of 32).
#include "kernels/simd_avx512.h"
#include "kernels/ukernel_simd.h"

namespace rnncore::kernels {
namespace {

using ukernel_avx512_14x32 = MicroKernel<Zmm32, 14, 2>;
using ukernel_avx512_14x16 = MicroKernel<Zmm64, 14, 2>;

}  // namespace

void fill_gemm_avx512(KernelTable& t) {
  t.f32 = ukernel_avx512_14x32::kernels();
  t.f64 = ukernel_avx512_14x16::kernels();
}

}  // namespace rnncore::kernels

// GEMM micro-kernels for AVX2 + FMA (ymm, 16 registers).  Compiled with
// -mavx2 -mfma only (CMakeLists.txt); called only when cpuid says the CPU
// has both (src/cpp/dispatch).
//
// Tiles: fp32 ukernel_avx2_6x16, fp64 ukernel_avx2_6x8 (2 ymm of columns by
// 6 rows: 12 accumulators, 2 for B̃, 1 broadcast = 15 of 16).
#include "kernels/simd_avx2.h"
#include "kernels/ukernel_simd.h"

namespace rnncore::kernels {
namespace {

using ukernel_avx2_6x16 = MicroKernel<Ymm32, 6, 2>;
using ukernel_avx2_6x8 = MicroKernel<Ymm64, 6, 2>;

}  // namespace

void fill_gemm_avx2(KernelTable& t) {
  t.f32 = ukernel_avx2_6x16::kernels();
  t.f64 = ukernel_avx2_6x8::kernels();
}

}  // namespace rnncore::kernels

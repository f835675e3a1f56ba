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

// Ã micro-panels of 56 KiB: K blocks of 1024 steps (fp32; 512 for fp64),
// not 256 (half of L1, the AVX2 tiles' budget).  Ã and the B̃ panel then
// both stream from L2 into each tile instead of Ã staying in L1, but each
// tile loads and stores its C rows -- in a product over T*B rows they come
// from memory, 28 misses at a time -- a quarter as often.  On Zen 4, one
// thread: 2048^3 102 -> 108-110 GFLOP/s (bench/gemm_bench.py), the LSTM
// input projection 5120 x 4096 x 1024 102 -> 107-110, fp64 2048^3 47 -> 51;
// bench/ab.py, H >= 512: LSTM, GRU and tanh RNN 0.96-0.99x the time
// forward, 0.97-0.99x forward+backward, smaller H unchanged.  The AVX2
// tiles (6 rows) measured no better with longer blocks.
constexpr std::size_t kPanelBytes = 56 * 1024;

void fill_gemm_avx512(KernelTable& t) {
  t.f32 = ukernel_avx512_14x32::kernels();
  t.f64 = ukernel_avx512_14x16::kernels();
  t.f32.panel_bytes = t.f64.panel_bytes = kPanelBytes;
  t.f32.fused_step = &FusedKernel<Zmm32, 14, 2>::run;
  t.f64.fused_step = &FusedKernel<Zmm64, 14, 2>::run;
  t.f32.fused_width = Zmm32::width;
  t.f64.fused_width = Zmm64::width;
}

}  // namespace rnncore::kernels

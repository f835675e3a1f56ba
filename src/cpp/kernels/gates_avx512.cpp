// Point-wise gate kernels compiled for avx512 (flags in CMakeLists.txt).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/kernel_table.h"
#include "kernels/simd_avx512.h"
#include "kernels/activations_simd.h"

#define RNNCORE_RESTRICT __restrict__

namespace rnncore::kernels {
namespace {
#include "kernels/gates_impl.h"

void dense_forward_avx512(const DenseForward<float>& a) {
  if (a.relu) return dense_forward<float>(a);
  dense_forward_simd<Zmm32>(a);
}
}  // namespace

void fill_gates_avx512(KernelTable& t) {
  t.gates_f32 = gate_kernels_of<float>();
  // float forward passes: intrinsics (activations_simd.h).
  t.gates_f32.lstm_forward = &lstm_forward_simd<Zmm32>;
  t.gates_f32.gru_forward = &gru_forward_simd<Zmm32>;
  t.gates_f32.dense_forward = &dense_forward_avx512;
  t.gates_f64 = gate_kernels_of<double>();
}

}  // namespace rnncore::kernels

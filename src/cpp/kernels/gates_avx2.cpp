// Point-wise gate kernels compiled for avx2 (flags in CMakeLists.txt).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/gates.h"

#define RNNCORE_RESTRICT __restrict__

namespace rnncore::kernels {
namespace {
#include "kernels/gates_impl.h"
}  // namespace

void fill_gates_avx2(GateTable& table) {
  table.f32 = gate_kernels_of<float>();
  table.f64 = gate_kernels_of<double>();
}

}  // namespace rnncore::kernels

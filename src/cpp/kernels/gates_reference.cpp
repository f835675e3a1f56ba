// Point-wise gate kernels compiled for reference (flags in CMakeLists.txt).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/kernel_table.h"

#define RNNCORE_RESTRICT __restrict__

namespace rnncore::kernels {
namespace {
#include "kernels/gates_impl.h"
}  // namespace

void fill_gates_reference(KernelTable& t) {
  t.gates_f32 = gate_kernels_of<float>();
  t.gates_f64 = gate_kernels_of<double>();
}

}  // namespace rnncore::kernels

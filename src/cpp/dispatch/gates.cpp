// The gate-kernel table of the instruction set in use.
#include <string>

#include "kernels/gates.h"
#include "rnncore/cpu.h"

namespace rnncore::kernels {
namespace {

struct Tables {
  GateTable reference, avx2, avx512;
  Tables() {
    fill_gates_reference(reference);
    fill_gates_avx2(avx2);
    fill_gates_avx512(avx512);
  }
  const GateTable& of(const std::string& isa) const {
    if (isa == "avx512") return avx512;
    if (isa == "avx2") return avx2;
    return reference;
  }
};

const GateTable& current() {
  static const Tables tables;
  return tables.of(cpu::active_isa());
}

}  // namespace

template <>
const GateKernels<float>& gate_kernels<float>() {
  return current().f32;
}
template <>
const GateKernels<double>& gate_kernels<double>() {
  return current().f64;
}

}  // namespace rnncore::kernels

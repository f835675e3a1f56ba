// What the processor offers and which kernels rnncore runs on it.
//
// The kernel set ("ISA") is chosen once, at first use, from cpuid: the best
// of avx512 > avx2 > reference the CPU supports.  The environment variable
// RNNCORE_FORCE_ISA=avx512|avx2|reference overrides the choice; naming an
// ISA this CPU lacks, or an unknown one, is an error (std::invalid_argument
// from the first GEMM or from active_isa()), never a silent fallback.
#pragma once

#include <string>
#include <vector>

namespace rnncore::cpu {

// Names of the instruction-set features detected at run time (cpuid), e.g.
// "avx2", "fma", "avx512f".  Empty on processors we do not probe.
std::vector<std::string> detected_features();

// Kernel sets this CPU can run, best first; always ends with "reference".
std::vector<std::string> available_isas();

// Name of the kernel set in use ("reference" is the portable C++ path).
std::string active_isa();

// Switch every later product to the named kernel set (thread-safe; products
// already running finish on the old one; PackedB keeps the set it was packed
// for).  std::invalid_argument if the name is unknown or the CPU lacks it.
void set_isa(const std::string& name);

}  // namespace rnncore::cpu

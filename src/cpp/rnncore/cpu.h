// What the processor offers and which code path rnncore runs on it.
#pragma once

#include <string>
#include <vector>

namespace rnncore::cpu {

// Names of the instruction-set features detected at run time (cpuid), e.g.
// "avx2", "fma", "avx512f".  Empty on processors we do not probe.
std::vector<std::string> detected_features();

// Name of the kernel set in use ("reference" is the portable C++ path).
std::string active_isa();

}  // namespace rnncore::cpu

// Run-time CPU feature detection and the choice of kernels.
#include "rnncore/cpu.h"

#include <cstdlib>
#include <stdexcept>

namespace rnncore::cpu {

std::vector<std::string> detected_features() {
  std::vector<std::string> found;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
#define RNNCORE_PROBE(name) \
  if (__builtin_cpu_supports(name)) found.emplace_back(name);
  RNNCORE_PROBE("sse4.2")
  RNNCORE_PROBE("avx")
  RNNCORE_PROBE("avx2")
  RNNCORE_PROBE("fma")
  RNNCORE_PROBE("avx512f")
  RNNCORE_PROBE("avx512bw")
  RNNCORE_PROBE("avx512vl")
  RNNCORE_PROBE("avx512dq")
  RNNCORE_PROBE("avx512bf16")
#undef RNNCORE_PROBE
#endif
  return found;
}

namespace {

bool has(const std::vector<std::string>& f, const char* name) {
  for (const auto& s : f)
    if (s == name) return true;
  return false;
}

bool supported(const std::string& isa) {
  const auto f = detected_features();
  if (isa == "reference") return true;
  if (isa == "avx2") return has(f, "avx2") && has(f, "fma");
  if (isa == "avx512")
    return has(f, "avx512f") && has(f, "avx512bw") && has(f, "avx512vl") &&
           has(f, "avx512dq") && has(f, "fma");
  return false;
}

std::string choose() {
  if (const char* forced = std::getenv("RNNCORE_FORCE_ISA")) {
    const std::string isa = forced;
    if (!supported(isa))
      throw std::runtime_error("RNNCORE_FORCE_ISA=" + isa +
                               ": not an instruction set this CPU supports "
                               "(choose reference, avx2 or avx512)");
    return isa;
  }
  for (const char* isa : {"avx512", "avx2"})
    if (supported(isa)) return isa;
  return "reference";
}

}  // namespace

std::string active_isa() {
  static const std::string isa = choose();
  return isa;
}

}  // namespace rnncore::cpu

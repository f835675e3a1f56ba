// Run-time CPU feature detection.
#include "rnncore/cpu.h"

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

}  // namespace rnncore::cpu

// Which kernel table runs: built once per ISA the CPU supports, chosen at
// first use from cpuid or RNNCORE_FORCE_ISA, switchable by cpu::set_isa.
#include "dispatch/dispatch.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "rnncore/cpu.h"

namespace rnncore::dispatch {
namespace {

using kernels::KernelTable;

// An instruction set: the cpuid features its translation units were compiled
// for (see CMakeLists.txt) and the fill entries of those units.
struct Isa {
  const char* name;
  std::vector<const char*> needs;
  std::vector<void (*)(KernelTable&)> fills;
};

// Best first.
const std::vector<Isa>& known_isas() {
  static const std::vector<Isa> isas = {
#if defined(RNNCORE_X86_KERNELS)
      {"avx512", {"avx512f", "avx2", "fma"},
       {kernels::fill_gemm_avx512, kernels::fill_gates_avx512}},
      {"avx2", {"avx2", "fma"},
       {kernels::fill_gemm_avx2, kernels::fill_gates_avx2}},
#endif
      {"reference", {},
       {kernels::fill_gemm_reference, kernels::fill_gates_reference}},
  };
  return isas;
}

bool supported(const Isa& isa) {
  static const std::vector<std::string> features = cpu::detected_features();
  return std::all_of(isa.needs.begin(), isa.needs.end(), [](const char* f) {
    return std::find(features.begin(), features.end(), f) != features.end();
  });
}

// One table per supported ISA, in known_isas() order; never freed, so
// pointers to them stay valid for the life of the process.
const std::vector<KernelTable>& tables() {
  static const std::vector<KernelTable> built = [] {
    std::vector<KernelTable> out;
    for (const Isa& isa : known_isas()) {
      if (!supported(isa)) continue;
      KernelTable t;
      t.name = isa.name;
      for (auto fill : isa.fills) fill(t);
      out.push_back(t);
    }
    return out;
  }();
  return built;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// The table named `name`; `origin` says where the name came from in errors.
const KernelTable& find(const std::string& name, const std::string& origin) {
  for (const KernelTable& t : tables())
    if (name == t.name) return t;
  std::vector<std::string> known;
  for (const Isa& isa : known_isas()) known.push_back(isa.name);
  const bool is_known =
      std::find(known.begin(), known.end(), name) != known.end();
  throw std::invalid_argument(
      origin + "'" + name + "': " +
      (is_known ? "this CPU lacks the instruction set"
                : "unknown instruction set (known: " + joined(known) + ")") +
      "; available here: " + joined(cpu::available_isas()));
}

const KernelTable& initial() {
  const char* forced = std::getenv("RNNCORE_FORCE_ISA");
  if (forced && *forced) return find(forced, "RNNCORE_FORCE_ISA=");
  return tables().front();
}

std::atomic<const KernelTable*>& current() {
  static std::atomic<const KernelTable*> table{&initial()};
  return table;
}

}  // namespace

const KernelTable& active() {
  return *current().load(std::memory_order_acquire);
}

const KernelTable& table(const std::string& name) {
  return find(name, "ISA ");
}

}  // namespace rnncore::dispatch

namespace rnncore::cpu {

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (const kernels::KernelTable& t : dispatch::tables()) names.push_back(t.name);
  return names;
}

std::string active_isa() { return dispatch::active().name; }

void set_isa(const std::string& name) {
  dispatch::current().store(&dispatch::table(name),
                            std::memory_order_release);
}

}  // namespace rnncore::cpu

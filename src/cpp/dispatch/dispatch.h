// The kernel table in use.  Internal to the core (src/cpp/gemm and the cells'
// kernels); the public face is rnncore/cpu.h.
#pragma once

#include <string>

#include "kernels/kernel_table.h"

namespace rnncore::dispatch {

// The active table: chosen at first call (thread-safe) as rnncore/cpu.h
// describes, then whatever cpu::set_isa picked last.  Throws
// std::invalid_argument when RNNCORE_FORCE_ISA names an unusable ISA.
const kernels::KernelTable& active();

// The table of the named ISA (e.g. to test its kernels while another is
// active); std::invalid_argument if unknown or unsupported on this CPU.
const kernels::KernelTable& table(const std::string& name);

}  // namespace rnncore::dispatch

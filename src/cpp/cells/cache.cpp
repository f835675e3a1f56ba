// The large-buffer allocation behind rnncore/cache.h's UninitAllocator.
#include <new>

#include "rnncore/cache.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace rnncore::detail {

// Aligned to a huge page, so that every whole huge page of the buffer can
// be one; the advice is only a hint (a kernel without THP, or with it off,
// keeps 4 KiB pages and the call still succeeds).
void* allocate_large(std::size_t bytes) {
  void* p = ::operator new(bytes, std::align_val_t(kHugePage));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  return p;
}

void free_large(void* p) noexcept {
  ::operator delete(p, std::align_val_t(kHugePage));
}

}  // namespace rnncore::detail

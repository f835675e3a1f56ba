// The block pool behind rnncore/cache.h's UninitAllocator, the packed
// weights (gemm.cpp's AlignedBuffer) and the arrays the bindings return.
#include <algorithm>
#include <deque>
#include <mutex>
#include <new>
#include <utility>

#include "rnncore/cache.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif
// Under AddressSanitizer a block the pool holds is poisoned: a use after
// free of a pooled block is still reported.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define RNNCORE_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define RNNCORE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define RNNCORE_POISON(p, n) ((void)(p), (void)(n))
#define RNNCORE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace rnncore::detail {
namespace {

constexpr std::size_t kBlockAlign = 64;

// The size class of a block: bytes rounded up to a sixteenth of the power
// of two above them (so at most 1/16 more), from kPoolMinBytes.
std::size_t size_class(std::size_t bytes) {
  std::size_t top = kPoolMinBytes;
  while (top < bytes) top *= 2;
  const std::size_t step = top / 16;
  return (bytes + step - 1) / step * step;
}

std::align_val_t alignment_of(std::size_t cls) {
  return std::align_val_t(cls >= kHugeBytes ? kHugePage : kBlockAlign);
}

// Aligned to a huge page from kHugeBytes, so that every whole huge page of
// the block can be one; the advice is only a hint (a kernel without THP, or
// with it off, keeps 4 KiB pages and the call still succeeds).
void* new_block(std::size_t cls) {
  void* p = ::operator new(cls, alignment_of(cls));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (cls >= kHugeBytes) madvise(p, cls / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  return p;
}

void delete_block(void* p, std::size_t cls) noexcept {
  RNNCORE_UNPOISON(p, cls);
  ::operator delete(p, alignment_of(cls));
}

// Never destroyed: a block may be freed by a thread_local or static
// destructor after the pool's own would have run.  Its blocks stay
// reachable through it (not leaks to a leak checker).
struct Pool {
  std::mutex mutex;
  std::deque<std::pair<std::size_t, void*>> blocks;  // oldest first
  std::size_t cached = 0;  // bytes of `blocks`
  std::size_t in_use = 0;  // bytes of pool-sized blocks handed out
  std::size_t peak = 0;    // the most in_use has been

  // The peak and an eighth: threads that take their blocks in another
  // order than in the previous call may need one more block of a size the
  // pool holds once; without room for it, that block pushed the oldest
  // (often the largest) out, which the call then took fresh, and so on
  // (about 100 page faults per LSTM backward at T=40, B=256, H=256 on 2
  // threads, none on 1).
  std::size_t cap() const { return std::max(kPoolCapBytes, peak + peak / 8); }
  // What the pool may keep beside `used` bytes in use.
  std::size_t room(std::size_t used) const {
    const std::size_t c = cap();
    return used < c ? c - used : 0;
  }
  // Deletes the oldest blocks while `cached` is above `keep`.  Mutex held.
  void trim(std::size_t keep) {
    while (cached > keep && !blocks.empty()) {
      const auto [c, q] = blocks.front();
      blocks.pop_front();
      cached -= c;
      delete_block(q, c);
    }
  }

  Pool() {
#if defined(__unix__) || defined(__APPLE__)
    // fork() while another thread holds the mutex would leave it locked
    // for good in the child: the forking thread takes it first.
    pthread_atfork([] { get().mutex.lock(); }, [] { get().mutex.unlock(); },
                   [] { get().mutex.unlock(); });
#endif
  }
  static Pool& get() {
    static Pool* pool = new Pool;
    return *pool;
  }
};

}  // namespace

void* allocate_block(std::size_t bytes) {
  if (bytes < kPoolMinBytes)
    return ::operator new(std::max<std::size_t>(bytes, 1),
                          std::align_val_t(kBlockAlign));
  const std::size_t cls = size_class(bytes);
  Pool& pool = Pool::get();
  {
    std::lock_guard<std::mutex> lock(pool.mutex);
    // The newest block of the class: the likeliest still in cache.
    for (auto it = pool.blocks.rbegin(); it != pool.blocks.rend(); ++it)
      if (it->first == cls) {
        void* p = it->second;
        pool.cached -= cls;
        pool.blocks.erase(std::next(it).base());
        pool.in_use += cls;
        RNNCORE_UNPOISON(p, cls);
        return p;
      }
    // A new block: first out the pooled ones that, with it and those in
    // use, would pass the cap (a call of new shapes does not add its
    // blocks to the previous shapes' but takes their place).  Counted as
    // in use from here; allocated outside the lock.
    const std::size_t wanted = pool.in_use + cls;
    pool.trim(pool.room(wanted));
    pool.in_use = wanted;
    pool.peak = std::max(pool.peak, wanted);
  }
  try {
    return new_block(cls);
  } catch (...) {
    std::lock_guard<std::mutex> lock(pool.mutex);
    pool.in_use -= cls;
    throw;
  }
}

void free_block(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  if (bytes < kPoolMinBytes)
    return ::operator delete(p, std::align_val_t(kBlockAlign));
  const std::size_t cls = size_class(bytes);
  Pool& pool = Pool::get();
  {
    std::lock_guard<std::mutex> lock(pool.mutex);
    pool.in_use -= cls;
    // Room for it, the oldest blocks out first (within the cap, blocks in
    // use included, unless it alone is larger).
    const std::size_t room = pool.room(pool.in_use);
    if (cls <= room) {
      pool.trim(room - cls);
      try {
        pool.blocks.emplace_back(cls, p);
        pool.cached += cls;
        RNNCORE_POISON(p, cls);
        return;
      } catch (...) {  // no memory for the list: free the block instead
      }
    }
  }
  delete_block(p, cls);
}

std::size_t pool_cached_bytes() {
  Pool& pool = Pool::get();
  std::lock_guard<std::mutex> lock(pool.mutex);
  return pool.cached;
}

std::size_t pool_in_use_bytes() {
  Pool& pool = Pool::get();
  std::lock_guard<std::mutex> lock(pool.mutex);
  return pool.in_use;
}

std::size_t pool_peak_bytes() {
  Pool& pool = Pool::get();
  std::lock_guard<std::mutex> lock(pool.mutex);
  return pool.peak;
}

void pool_release() noexcept {
  Pool& pool = Pool::get();
  std::deque<std::pair<std::size_t, void*>> blocks;
  {
    std::lock_guard<std::mutex> lock(pool.mutex);
    blocks.swap(pool.blocks);
    pool.cached = 0;
    pool.peak = pool.in_use;
  }
  for (const auto& [c, q] : blocks) delete_block(q, c);
}

}  // namespace rnncore::detail

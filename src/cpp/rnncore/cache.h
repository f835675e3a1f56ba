// What a training forward pass keeps for backpropagation through time.
//
// A cache owns copies of the weights and initial states and reads the
// forward's x and y in place (SeqCache::x, y).  Arrays indexed [T,B,*] use the
// row t*B + b of the time step they belong to.  Per-step buffers are not
// cleared when allocated (every valid row is written); the rows past a
// sequence's length of those that feed a product are zeroed, so padding
// never reaches a gradient.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "rnncore/common.h"

namespace rnncore {

namespace detail {
// Buffers of at least this many bytes are asked to live on transparent huge
// pages (Linux, where THP is "madvise", as here; NumPy does the same for its
// large arrays): a training call's gates and gradient buffers, tens of MB
// each, otherwise take a page fault per 4 KiB.
constexpr std::size_t kHugeBytes = std::size_t(4) << 20;
constexpr std::size_t kHugePage = std::size_t(2) << 20;

// The blocks of every per-call buffer from kPoolMinBytes up (the training
// cache, the backward's work, packed weights, the arrays a call returns)
// come from a process-wide pool of freed blocks: freed, a block is kept for
// the next call that asks for its size class (at most 1/16 larger than
// asked), the oldest going first once the pool's blocks and those in use
// together would pass the cap: kPoolCapBytes, or, when the process has had
// more in use at once (the peak), the peak and an eighth.  So the pool
// never makes rnncore hold much more memory than the most it has held for
// its calls, and a training loop of any size gets its buffers back with
// their pages.  Why: the C library
// gives large blocks back to the system when they are freed and takes
// fresh pages for the next call, one page fault per 4 KiB (or a zeroed
// 2 MiB huge page) -- 1,168 faults per forward+backward of a GRU at T=100,
// B=16, H=128, none with the pool: 0.87x the time (tanh RNN 0.78x, LSTM
// 0.94x; lockstep A/B, a training loop of one shape); with blocks above
// 32 MiB kept too (the cap was 64 MiB, the largest block 32 MiB), LSTM
// fwd+bwd T=20, B=256, H=1024 (an 80 MiB cache): 0.84x.  pool_release()
// (rnncore.release_memory()) gives every pooled block back and forgets the
// peak.  Blocks are 64-byte aligned, huge-page aligned from kHugeBytes.
// Thread-safe (one mutex, held for a list lookup); after fork() the child's
// pool is usable.
constexpr std::size_t kPoolMinBytes = std::size_t(64) << 10;
constexpr std::size_t kPoolCapBytes = std::size_t(64) << 20;
// Any size: below kPoolMinBytes a plain aligned allocation.
void* allocate_block(std::size_t bytes);
void free_block(void* p, std::size_t bytes) noexcept;
// Bytes held by the pool, free for reuse (tests).
std::size_t pool_cached_bytes();
// Bytes of pool-sized blocks in use now, and the most in use at once since
// the start or the last pool_release() (tests).
std::size_t pool_in_use_bytes();
std::size_t pool_peak_bytes();
// Frees every block the pool holds and sets the peak to the bytes in use.
void pool_release() noexcept;
}  // namespace detail

// An allocator whose resize() leaves new values uninitialised: large
// per-call buffers that are written before they are read skip a pass.
template <typename T>
struct UninitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <typename U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(detail::allocate_block(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    detail::free_block(p, n * sizeof(T));
  }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <typename T>
using Buffer = std::vector<T, UninitAllocator<T>>;

template <typename T>
struct SeqCache {
  using value_type = T;
  Dims d;
  std::vector<index_t> lengths;  // [B], empty when every sequence has length T
  bool reverse = false;
  bool has_bias = false;
  // The forward's input x [T,B,I] and output y [T,B,P] (the state leaving
  // each step), read in place, not copied (as PyTorch saves tensors):
  // whoever owns them keeps them alive and unchanged while the cache is
  // used (the bindings hold both arrays and check that they did not
  // change).  Padded rows of x hold the caller's values; of y, zeros.
  const T* x = nullptr;
  const T* y = nullptr;
  Buffer<T> h0;     // [B,P] the state entering the first step
  Buffer<T> W_ih;   // [G*H,I]
  Buffer<T> W_hh;   // [G*H,P]
  Buffer<T> gates;  // [T,B,G*H] post-activation gate values

  Schedule schedule() const {
    return Schedule{d, lengths.empty() ? nullptr : lengths.data(), reverse};
  }
  // The state [P] entering `step` for sequence b (active at `step`): h0, or
  // the output of the sequence's previous step.
  const T* h_prev(index_t step, index_t b) const {
    if (step == 0) return h0.data() + b * d.P;
    return y + schedule().row(step - 1, b) * d.P;
  }
  // Bytes the cache owns (x and y are the caller's).
  std::size_t nbytes() const {
    return sizeof(T) * (h0.size() + W_ih.size() + W_hh.size() + gates.size());
  }
};

}  // namespace rnncore

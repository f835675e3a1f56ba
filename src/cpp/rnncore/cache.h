// What a training forward pass keeps for backpropagation through time.
//
// A cache owns copies of everything backward needs, so the caller may reuse
// or free its arrays after forward returns.  Arrays indexed [T,B,*] use the
// row t*B + b of the time step they belong to.  Per-step buffers are not
// cleared when allocated (every valid row is written); the rows past a
// sequence's length of those that feed a product are zeroed, so padding
// never reaches a gradient.
#pragma once

#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "rnncore/common.h"

namespace rnncore {

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
  // [T,B,I+P]: x, then the state entering time t; padded rows zero.  Side by
  // side so that one product gives the gradients of W_ih and W_hh.
  Buffer<T> xh;
  std::vector<T> W_ih;  // [G*H,I]
  std::vector<T> W_hh;  // [G*H,P]
  Buffer<T> gates;      // [T,B,G*H] post-activation gate values

  index_t ld() const { return d.I + d.P; }  // row stride of xh
  const T* x() const { return xh.data(); }
  const T* h_prev() const { return xh.data() + d.I; }
  Schedule schedule() const {
    return Schedule{d, lengths.empty() ? nullptr : lengths.data(), reverse};
  }
  std::size_t nbytes() const {
    return sizeof(T) *
           (xh.size() + W_ih.size() + W_hh.size() + gates.size());
  }
};

}  // namespace rnncore

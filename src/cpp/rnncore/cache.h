// What a training forward pass keeps for backpropagation through time.
//
// A cache owns copies of everything backward needs, so the caller may reuse
// or free its arrays after forward returns.  Arrays indexed [T,B,*] use the
// row t*B + b of the time step they belong to; rows past a sequence's length
// stay zero (padding never reaches a gradient).
#pragma once

#include <vector>

#include "rnncore/common.h"

namespace rnncore {

template <typename T>
struct SeqCache {
  using value_type = T;
  Dims d;
  std::vector<index_t> lengths;  // [B], empty when every sequence has length T
  bool reverse = false;
  bool has_bias = false;
  std::vector<T> x;       // [T,B,I], padded rows zeroed
  std::vector<T> W_ih;    // [G*H,I]
  std::vector<T> W_hh;    // [G*H,P]
  std::vector<T> h_prev;  // [T,B,P] state entering time t
  std::vector<T> gates;   // [T,B,G*H] post-activation gate values

  Schedule schedule() const {
    return Schedule{d, lengths.empty() ? nullptr : lengths.data(), reverse};
  }
  std::size_t nbytes() const {
    return sizeof(T) * (x.size() + W_ih.size() + W_hh.size() + h_prev.size() +
                        gates.size());
  }
};

}  // namespace rnncore

// Weights packed once and kept across forward passes (what an inference
// session does when it is created): every forward pass otherwise packs
// each thread's rows of W_ih and W_hh (and W_hr) into the GEMM's panels
// for the call -- 5-10% of a batch-1 forward, more when the weights come
// from memory rather than cache.
//
// A PackStore is keyed by exactly what a call packs: which rows of which
// array, for the kernels active now.  A thread's share of the rows depends
// on the thread count, so each thread count used gets its own panels (one
// copy of the weights each), packed by the first call that needs them.
// The arrays themselves must not change while the store lives (the Python
// object that owns one keeps its own frozen copies).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "rnncore/common.h"
#include "rnncore/gemm.h"

namespace rnncore {

template <typename T>
class PackStore {
 public:
  // Rows r0 + g*gate_rows + [0, n) of W (row stride ldw) for g in [g0, g1),
  // packed for the kernel set `kernels` (see cells::GateRows).
  struct Key {
    const void* kernels;
    const T* W;
    index_t ldw, gate_rows, g0, g1, r0, n;
    bool operator<(const Key& o) const {
      return std::tie(kernels, W, ldw, gate_rows, g0, g1, r0, n) <
             std::tie(o.kernels, o.W, o.ldw, o.gate_rows, o.g0, o.g1, o.r0, o.n);
    }
  };

  // The panels of `key`, made by pack(panels) on first use.  Safe to call
  // from several threads at once; the panels stay where they are until the
  // store dies.
  template <class Pack>
  const gemm::PackedB<T>& get(const Key& key, Pack&& pack) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = panels_.find(key);
    if (it == panels_.end()) {
      auto made = std::make_unique<gemm::PackedB<T>>();
      pack(*made);
      it = panels_.emplace(key, std::move(made)).first;
    }
    return *it->second;
  }

  // Bytes of all panels packed so far, and how many packings.
  std::size_t nbytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const auto& kv : panels_) n += kv.second->nbytes();
    return n;
  }
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return panels_.size();
  }

 private:
  mutable std::mutex mutex_;
  mutable std::map<Key, std::unique_ptr<gemm::PackedB<T>>> panels_;
};

}  // namespace rnncore

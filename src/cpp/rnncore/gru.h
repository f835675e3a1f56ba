// GRU, one layer and one direction, a whole sequence per call.
//
// Gate order (PyTorch): r, z, n -- rows [0,H), [H,2H), [2H,3H).
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   reset_after (PyTorch, cuDNN):  n = tanh(W_in x + b_in + r*(W_hn h + b_hn))
//   reset before (the paper):      n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)
//   h' = (1-z)*n + z*h
#pragma once

#include "rnncore/cache.h"

namespace rnncore::gru {

template <typename T>
struct Cache : SeqCache<T> {
  bool reset_after = true;
  // [T,B,H]: W_hn h + b_hn when reset_after, else r*h (the input of W_hn);
  // padded rows zero.
  Buffer<T> hn;
  std::size_t nbytes() const {
    return SeqCache<T>::nbytes() + sizeof(T) * hn.size();
  }
};

// x: [T,B,I]  h0: [B,H] or null  w: W_ih [3H,I], W_hh [3H,H], b_* [3H] or
// null  ->  y: [T,B,H], h_n: [B,H].  cache: null for inference.
template <typename T>
void forward(const Schedule& s, bool reset_after, const T* x, const T* h0,
             const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache);

// dy: [T,B,H] or null  dh_n: [B,H] or null  ->  dx: [T,B,I], dh0: [B,H], g.
template <typename T>
void backward(const Cache<T>& cache, const T* dy, const T* dh_n, T* dx,
              T* dh0, const CellGrads<T>& g);

}  // namespace rnncore::gru

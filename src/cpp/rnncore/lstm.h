// LSTM, one layer and one direction, a whole sequence per call.
//
// Gate order (PyTorch): i, f, g, o -- rows [0,H), [H,2H), [2H,3H), [3H,4H)
// of W_ih, W_hh, b_ih, b_hh.  With a = W_ih x + b_ih + W_hh h + b_hh:
//   i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
//   c' = f*c + i*g    h' = o*tanh(c')
#pragma once

#include "rnncore/cache.h"

namespace rnncore::lstm {

template <typename T>
struct Cache : SeqCache<T> {
  std::vector<T> c_prev;  // [T,B,H] cell state entering time t
  std::vector<T> c;       // [T,B,H] cell state leaving time t
  std::size_t nbytes() const {
    return SeqCache<T>::nbytes() + sizeof(T) * (c_prev.size() + c.size());
  }
};

// x: [T,B,I]  h0, c0: [B,H] or null (zeros)  w: W_ih [4H,I], W_hh [4H,H],
// b_ih, b_hh [4H] or null  lengths: [B] or null  ->  y: [T,B,H] (zero past
// each length), h_n, c_n: [B,H] (state after each sequence's last step).
// cache: null for inference (nothing is kept per step), else filled.
template <typename T>
void forward(const Schedule& s, const T* x, const T* h0, const T* c0,
             const CellWeights<T>& w, T* y, T* h_n, T* c_n, Cache<T>* cache);

// dy: [T,B,H] or null  dh_n, dc_n: [B,H] or null  ->  dx: [T,B,I],
// dh0, dc0: [B,H], g: every parameter gradient (db_* null without bias).
template <typename T>
void backward(const Cache<T>& cache, const T* dy, const T* dh_n,
              const T* dc_n, T* dx, T* dh0, T* dc0, const CellGrads<T>& g);

}  // namespace rnncore::lstm

// LSTM, one layer and one direction, a whole sequence per call.
//
// Gate order (PyTorch): i, f, g, o -- rows [0,H), [H,2H), [2H,3H), [3H,4H)
// of W_ih, W_hh, b_ih, b_hh.  With a = W_ih x + b_ih + W_hh h + b_hh:
//   i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
//   c' = f*c + i*g    h' = o*tanh(c')
// With a projection (W_hr [P,H], PyTorch's proj_size): h' = W_hr (o*tanh(c')),
// so h, y and the columns of W_hh are P wide while c stays H wide.
#pragma once

#include "rnncore/cache.h"

namespace rnncore::lstm {

template <typename T>
struct Cache : SeqCache<T> {
  std::vector<T> c0;    // [B,H] initial cell state
  Buffer<T> c;          // [T,B,H] cell state leaving time t (the state
                        // entering a step is the previous step's, or c0)
  std::vector<T> W_hr;  // [P,H], empty without projection
  Buffer<T> hc;         // [T,B,H] o*tanh(c) before the projection; padded rows zero
  bool projected() const { return !W_hr.empty(); }
  std::size_t nbytes() const {
    return SeqCache<T>::nbytes() + sizeof(T) * (c0.size() + c.size() +
                                                W_hr.size() + hc.size());
  }
};

// x: [T,B,I]  h0: [B,P], c0: [B,H] or null (zeros)  w: W_ih [4H,I],
// W_hh [4H,P], b_ih, b_hh [4H] or null, W_hr [P,H] or null (then P == H)
// ->  y: [T,B,P] (zero past each length), h_n: [B,P], c_n: [B,H] (state
// after each sequence's last step).
// cache: null for inference (nothing is kept per step), else filled.
template <typename T>
void forward(const Schedule& s, const T* x, const T* h0, const T* c0,
             const CellWeights<T>& w, T* y, T* h_n, T* c_n, Cache<T>* cache);

// dy: [T,B,P] or null  dh_n: [B,P], dc_n: [B,H] or null  ->  dx: [T,B,I],
// dh0: [B,P], dc0: [B,H], g: every parameter gradient (db_* null without
// bias, dW_hr null without projection).
template <typename T>
void backward(const Cache<T>& cache, const T* dy, const T* dh_n,
              const T* dc_n, T* dx, T* dh0, T* dc0, const CellGrads<T>& g);

}  // namespace rnncore::lstm

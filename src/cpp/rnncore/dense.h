// Dense (Elman) cell, one layer and one direction, a whole sequence per call.
//
//   h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu.
#pragma once

#include "rnncore/cache.h"

namespace rnncore::dense {

enum class Activation { Tanh, Relu };

template <typename T>
struct Cache : SeqCache<T> {
  Activation act = Activation::Tanh;
  // gates stays empty: backward reads h' (the output) from y.
};

// x: [T,B,I]  h0: [B,H] or null  w: W_ih [H,I], W_hh [H,H], b_* [H] or null
// ->  y: [T,B,H], h_n: [B,H].  cache: null for inference.
template <typename T>
void forward(const Schedule& s, Activation act, const T* x, const T* h0,
             const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache);

// dy: [T,B,H] or null  dh_n: [B,H] or null  ->  dx: [T,B,I], dh0: [B,H], g.
template <typename T>
void backward(const Cache<T>& cache, const T* dy, const T* dh_n, T* dx,
              T* dh0, const CellGrads<T>& g);

}  // namespace rnncore::dense

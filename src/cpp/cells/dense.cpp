// Dense (Elman) cell sequence loops.
#include "rnncore/dense.h"

#include "cells/sequence.h"

namespace rnncore::dense {
namespace {

template <Activation kAct, typename T>
inline T activate(T a) {
  if constexpr (kAct == Activation::Tanh)
    return std::tanh(a);
  else
    return a > T(0) ? a : T(0);
}

// Derivative of the activation from its output y = act(a).
template <Activation kAct, typename T>
inline T activation_grad(T y) {
  if constexpr (kAct == Activation::Tanh)
    return T(1) - y * y;
  else
    return y > T(0) ? T(1) : T(0);
}

template <typename T, bool kTrain, Activation kAct>
void run_forward(const Schedule& s, const T* x, const T* h0,
                 const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache) {
  const Dims& d = s.d;
  const index_t H = d.H;
  const std::vector<T> xp =
      cells::project_inputs(d, H, x, w.W_ih, cells::folded_bias(H, 0, w));
  T* h = h_n;
  cells::init_state(d.B, H, h0, h);
  cells::zero_padding(s, H, y);

  cells::forward_loop<T, kTrain>(
      s, H, w.W_hh, h, cache, [&](index_t row, index_t b, const T* a_h) {
        const T* a_x = xp.data() + row * H;
        for (index_t j = 0; j < H; ++j) {
          const T hnew = activate<kAct>(a_x[j] + a_h[j]);
          h[b * H + j] = hnew;
          y[row * H + j] = hnew;
          if constexpr (kTrain) cache->gates[row * H + j] = hnew;
        }
      });
}

template <typename T, bool kTrain>
void dispatch_forward(const Schedule& s, Activation act, const T* x,
                      const T* h0, const CellWeights<T>& w, T* y, T* h_n,
                      Cache<T>* cache) {
  if (act == Activation::Tanh)
    run_forward<T, kTrain, Activation::Tanh>(s, x, h0, w, y, h_n, cache);
  else
    run_forward<T, kTrain, Activation::Relu>(s, x, h0, w, y, h_n, cache);
}

template <typename T, Activation kAct>
void run_backward(const Cache<T>& cache, const T* dy, const T* dh_n, T* dx,
                  T* dh0, const CellGrads<T>& g) {
  const Dims& d = cache.d;
  const index_t H = d.H;
  std::vector<T> dG(static_cast<std::size_t>(d.T * d.B * H), T(0));
  T* dh = dh0;
  cells::init_state(d.B, H, dh_n, dh);

  cells::bptt_loop(cache, H, dh, dG.data(), [&](index_t row, index_t b,
                                                 T* ds) {
    const T* hnew = cache.gates.data() + row * H;
    for (index_t j = 0; j < H; ++j) {
      const T dhj = dh[b * H + j] + (dy ? dy[row * H + j] : T(0));
      ds[j] = dhj * activation_grad<kAct>(hnew[j]);
      dh[b * H + j] = T(0);
    }
  });

  cells::input_grads(cache, H, dG.data(), dx, g.dW_ih, g.db_ih);
  cells::weight_grads(d, H, dG.data(), H, cache.h_prev.data(), H,
                      g.dW_hh);
  if (g.db_hh) std::copy(g.db_ih, g.db_ih + H, g.db_hh);
}

}  // namespace

template <typename T>
void forward(const Schedule& s, Activation act, const T* x, const T* h0,
             const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache) {
  if (!cache)
    return dispatch_forward<T, false>(s, act, x, h0, w, y, h_n, cache);
  cells::start_cache(*cache, s, 1, x, w);
  cache->act = act;
  dispatch_forward<T, true>(s, act, x, h0, w, y, h_n, cache);
}

template <typename T>
void backward(const Cache<T>& cache, const T* dy, const T* dh_n, T* dx,
              T* dh0, const CellGrads<T>& g) {
  if (cache.act == Activation::Tanh)
    run_backward<T, Activation::Tanh>(cache, dy, dh_n, dx, dh0, g);
  else
    run_backward<T, Activation::Relu>(cache, dy, dh_n, dx, dh0, g);
}

#define RNNCORE_INSTANTIATE(T)                                                \
  template void forward<T>(const Schedule&, Activation, const T*, const T*,   \
                           const CellWeights<T>&, T*, T*, Cache<T>*);         \
  template void backward<T>(const Cache<T>&, const T*, const T*, T*, T*,      \
                            const CellGrads<T>&);
RNNCORE_INSTANTIATE(float)
RNNCORE_INSTANTIATE(double)
#undef RNNCORE_INSTANTIATE

}  // namespace rnncore::dense

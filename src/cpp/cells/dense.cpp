// Dense (Elman) cell sequence loops: per step, the recurrent product of each
// thread's units and the activation.
#include "rnncore/dense.h"

#include "cells/sequence.h"

namespace rnncore::dense {
namespace {

using cells::Slice;
using gemm::Trans;

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
  cells::init_state(d.B, H, h0, h_n);
  cells::zero_padding(s, H, y);

  cells::forward_loop<T, kTrain>(s, 1, h_n, cache, [&](const Slice& sl) {
    const index_t n = sl.units();
    std::vector<T> W = cells::gate_rows(w.W_hh, H, H, 0, 1, sl);  // [n,H]
    std::vector<T> a(d.B * n);
    return [&, sl, n, W = std::move(W), a = std::move(a)](
               index_t step, const T* h, T* h_next, threads::Barrier&) mutable {
      gemm::gemm<T>(Trans::N, Trans::T, d.B, n, H, T(1), h, H, W.data(), H,
                    T(0), a.data(), n);
      for (index_t b = 0; b < d.B; ++b) {
        if (!s.active(step, b)) continue;
        const index_t row = s.row(step, b);
        const T* a_x = xp.data() + row * H;
        const T* a_h = a.data() + b * n;
        for (index_t j = sl.j0, k = 0; j < sl.j1; ++j, ++k) {
          const T hn = activate<kAct>(a_x[j] + a_h[k]);
          h_next[b * H + j] = y[row * H + j] = hn;
          if constexpr (kTrain) cache->gates[row * H + j] = hn;
        }
      }
    };
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
  const Schedule s = cache.schedule();
  const Dims& d = s.d;
  const index_t H = d.H;
  std::vector<T> dG(static_cast<std::size_t>(d.T * d.B * H), T(0));
  std::vector<T> dGs(2 * d.B * H);
  T* dh = dh0;
  cells::init_state(d.B, H, dh_n, dh);

  cells::bptt_loop(cache, 1, [&](const Slice& sl) {
    return [&, sl](index_t step, int parity, threads::Barrier& barrier) {
      T* ds_all = dGs.data() + parity * d.B * H;
      for (index_t b = 0; b < d.B; ++b) {
        T* ds = ds_all + b * H;
        if (!s.active(step, b)) {
          std::fill(ds + sl.j0, ds + sl.j1, T(0));
          continue;
        }
        const index_t row = s.row(step, b);
        const T* hnew = cache.gates.data() + row * H;
        for (index_t j = sl.j0; j < sl.j1; ++j) {
          const T dhj = dh[b * H + j] + (dy ? dy[row * H + j] : T(0));
          dG[row * H + j] = ds[j] = dhj * activation_grad<kAct>(hnew[j]);
          dh[b * H + j] = T(0);
        }
      }
      barrier.wait();
      gemm::gemm<T>(Trans::N, Trans::N, d.B, sl.cols(), H, T(1), ds_all, H,
                    cache.W_hh.data() + sl.p0, H, T(1), dh + sl.p0, H);
    };
  });

  cells::input_grads(cache, H, dG.data(), dx, g.dW_ih, g.db_ih);
  cells::weight_grads(d, H, dG.data(), H, cache.h_prev.data(), H, g.dW_hh);
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

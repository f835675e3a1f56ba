// LSTM sequence loops: the recurrent product and the fused point-wise gate
// pass per step; everything time-independent is hoisted out (sequence.h).
#include "rnncore/lstm.h"

#include "cells/sequence.h"

namespace rnncore::lstm {
namespace {

using cells::sigmoid;

template <typename T, bool kTrain>
void run_forward(const Schedule& s, const T* x, const T* h0, const T* c0,
                 const CellWeights<T>& w, T* y, T* h_n, T* c_n,
                 Cache<T>* cache) {
  const Dims& d = s.d;
  const index_t H = d.H, GH = 4 * H;
  const std::vector<T> xp =
      cells::project_inputs(d, GH, x, w.W_ih, cells::folded_bias(GH, 0, w));
  T* h = h_n;  // the running state lives in the outputs
  T* c = c_n;
  cells::init_state(d, h0, h);
  cells::init_state(d, c0, c);
  cells::zero_padding(s, y);

  cells::forward_loop<T, kTrain>(
      s, GH, w.W_hh, h, cache, [&](index_t row, index_t b, const T* a_h) {
        const T* a_x = xp.data() + row * GH;
        T* hb = h + b * H;
        T* cb = c + b * H;
        if constexpr (kTrain)
          std::copy(cb, cb + H, cache->c_prev.begin() + row * H);
        for (index_t j = 0; j < H; ++j) {
          const T i = sigmoid(a_x[j] + a_h[j]);
          const T f = sigmoid(a_x[H + j] + a_h[H + j]);
          const T g = std::tanh(a_x[2 * H + j] + a_h[2 * H + j]);
          const T o = sigmoid(a_x[3 * H + j] + a_h[3 * H + j]);
          const T cn = f * cb[j] + i * g;
          const T hn = o * std::tanh(cn);
          cb[j] = cn;
          hb[j] = hn;
          y[row * H + j] = hn;
          if constexpr (kTrain) {
            T* gates = cache->gates.data() + row * GH;
            gates[j] = i;
            gates[H + j] = f;
            gates[2 * H + j] = g;
            gates[3 * H + j] = o;
            cache->c[row * H + j] = cn;
          }
        }
      });
}

}  // namespace

template <typename T>
void forward(const Schedule& s, const T* x, const T* h0, const T* c0,
             const CellWeights<T>& w, T* y, T* h_n, T* c_n, Cache<T>* cache) {
  if (!cache) return run_forward<T, false>(s, x, h0, c0, w, y, h_n, c_n, cache);
  cells::start_cache(*cache, s, 4, x, w);
  const std::size_t n = static_cast<std::size_t>(s.d.T * s.d.B * s.d.H);
  cache->c_prev.assign(n, T(0));
  cache->c.assign(n, T(0));
  run_forward<T, true>(s, x, h0, c0, w, y, h_n, c_n, cache);
}

template <typename T>
void backward(const Cache<T>& cache, const T* dy, const T* dh_n,
              const T* dc_n, T* dx, T* dh0, T* dc0, const CellGrads<T>& g) {
  const Dims& d = cache.d;
  const index_t H = d.H, GH = 4 * H;
  std::vector<T> dG(static_cast<std::size_t>(d.T * d.B * GH), T(0));
  T* dh = dh0;  // the running gradients live in the outputs
  T* dc = dc0;
  cells::init_state(d, dh_n, dh);
  cells::init_state(d, dc_n, dc);

  cells::bptt_loop(cache, GH, dh, dG.data(), [&](index_t row, index_t b,
                                                  T* ds) {
    const T* gates = cache.gates.data() + row * GH;
    const T* c_prev = cache.c_prev.data() + row * H;
    const T* c_new = cache.c.data() + row * H;
    T* dhb = dh + b * H;
    T* dcb = dc + b * H;
    for (index_t j = 0; j < H; ++j) {
      const T i = gates[j], f = gates[H + j], gg = gates[2 * H + j],
              o = gates[3 * H + j];
      const T dhj = dhb[j] + (dy ? dy[row * H + j] : T(0));
      const T tc = std::tanh(c_new[j]);
      const T dcj = dcb[j] + dhj * o * (T(1) - tc * tc);
      ds[j] = dcj * gg * i * (T(1) - i);
      ds[H + j] = dcj * c_prev[j] * f * (T(1) - f);
      ds[2 * H + j] = dcj * i * (T(1) - gg * gg);
      ds[3 * H + j] = dhj * tc * o * (T(1) - o);
      dcb[j] = dcj * f;
      dhb[j] = T(0);
    }
  });

  cells::input_grads(cache, GH, dG.data(), dx, g.dW_ih, g.db_ih);
  cells::recurrent_weight_grads(d, GH, dG.data(), GH, cache.h_prev.data(),
                                g.dW_hh);
  if (g.db_hh) std::copy(g.db_ih, g.db_ih + GH, g.db_hh);
}

#define RNNCORE_INSTANTIATE(T)                                                \
  template void forward<T>(const Schedule&, const T*, const T*, const T*,     \
                           const CellWeights<T>&, T*, T*, T*, Cache<T>*);     \
  template void backward<T>(const Cache<T>&, const T*, const T*, const T*,    \
                            T*, T*, T*, const CellGrads<T>&);
RNNCORE_INSTANTIATE(float)
RNNCORE_INSTANTIATE(double)
#undef RNNCORE_INSTANTIATE

}  // namespace rnncore::lstm

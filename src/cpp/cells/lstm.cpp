// LSTM sequence loops: the recurrent product and the fused point-wise gate
// pass per step; everything time-independent is hoisted out (sequence.h).
// A projected LSTM adds one product per step, h = (o*tanh(c)) W_hr^T.
#include "rnncore/lstm.h"

#include "cells/sequence.h"

namespace rnncore::lstm {
namespace {

using cells::sigmoid;
using gemm::Trans;

template <typename T, bool kTrain, bool kProj>
void run_forward(const Schedule& s, const T* x, const T* h0, const T* c0,
                 const CellWeights<T>& w, T* y, T* h_n, T* c_n,
                 Cache<T>* cache) {
  const Dims& d = s.d;
  const index_t H = d.H, P = d.P, GH = 4 * H;
  const std::vector<T> xp =
      cells::project_inputs(d, GH, x, w.W_ih, cells::folded_bias(GH, 0, w));
  T* h = h_n;  // the running state lives in the outputs
  T* c = c_n;
  cells::init_state(d.B, P, h0, h);
  cells::init_state(d.B, H, c0, c);
  cells::zero_padding(s, P, y);
  // Projected: o*tanh(c) of this step [B,H], and its projection [B,P].
  std::vector<T> hc(kProj ? d.B * H : 0), hp(kProj ? d.B * P : 0);

  auto pointwise = [&](index_t row, index_t b, const T* a_h) {
    const T* a_x = xp.data() + row * GH;
    T* cb = c + b * H;
    T* out = kProj ? hc.data() + b * H : y + row * H;
    if constexpr (kTrain)
      std::copy(cb, cb + H, cache->c_prev.begin() + row * H);
    for (index_t j = 0; j < H; ++j) {
      const T i = sigmoid(a_x[j] + a_h[j]);
      const T f = sigmoid(a_x[H + j] + a_h[H + j]);
      const T g = std::tanh(a_x[2 * H + j] + a_h[2 * H + j]);
      const T o = sigmoid(a_x[3 * H + j] + a_h[3 * H + j]);
      const T cn = f * cb[j] + i * g;
      cb[j] = cn;
      out[j] = o * std::tanh(cn);
      if constexpr (kTrain) {
        T* gates = cache->gates.data() + row * GH;
        gates[j] = i;
        gates[H + j] = f;
        gates[2 * H + j] = g;
        gates[3 * H + j] = o;
        cache->c[row * H + j] = cn;
      }
    }
    if constexpr (kTrain && kProj)
      std::copy(out, out + H, cache->hc.begin() + row * H);
    if constexpr (!kProj) std::copy(out, out + H, h + b * H);
  };
  auto project = [&](index_t step) {
    if constexpr (kProj) {
      gemm::gemm<T>(Trans::N, Trans::T, d.B, P, H, T(1), hc.data(), H, w.W_hr,
                    H, T(0), hp.data(), P);
      for (index_t b = 0; b < d.B; ++b) {
        if (!s.active(step, b)) continue;
        const T* src = hp.data() + b * P;
        std::copy(src, src + P, h + b * P);
        std::copy(src, src + P, y + s.row(step, b) * P);
      }
    }
  };
  cells::forward_loop<T, kTrain>(s, GH, w.W_hh, h, cache, pointwise, project);
}

template <typename T, bool kProj>
void run_backward(const Cache<T>& cache, const T* dy, const T* dh_n,
                  const T* dc_n, T* dx, T* dh0, T* dc0, const CellGrads<T>& g) {
  const Schedule s = cache.schedule();
  const Dims& d = s.d;
  const index_t H = d.H, P = d.P, GH = 4 * H;
  const std::size_t rows = static_cast<std::size_t>(d.T * d.B);
  std::vector<T> dG(rows * GH, T(0));
  T* dh = dh0;  // the running gradients live in the outputs
  T* dc = dc0;
  cells::init_state(d.B, P, dh_n, dh);
  cells::init_state(d.B, H, dc_n, dc);
  // Projected: the gradient reaching h at every row [T*B,P] (for dW_hr) and
  // the one reaching o*tanh(c) at this step [B,H].
  std::vector<T> dh_rows(kProj ? rows * P : 0, T(0)), dhc(kProj ? d.B * H : 0);

  auto unproject = [&](index_t step) {
    if constexpr (kProj) {
      for (index_t b = 0; b < d.B; ++b) {
        if (!s.active(step, b)) continue;
        const index_t row = s.row(step, b);
        for (index_t j = 0; j < P; ++j)
          dh_rows[row * P + j] = dh[b * P + j] + (dy ? dy[row * P + j] : T(0));
        std::copy(dh_rows.begin() + row * P, dh_rows.begin() + (row + 1) * P,
                  dh + b * P);
      }
      gemm::gemm<T>(Trans::N, Trans::N, d.B, H, P, T(1), dh, P,
                    cache.W_hr.data(), H, T(0), dhc.data(), H);
    }
  };
  auto pointwise = [&](index_t row, index_t b, T* ds) {
    const T* gates = cache.gates.data() + row * GH;
    const T* c_prev = cache.c_prev.data() + row * H;
    const T* c_new = cache.c.data() + row * H;
    T* dcb = dc + b * H;
    for (index_t j = 0; j < H; ++j) {
      const T i = gates[j], f = gates[H + j], gg = gates[2 * H + j],
              o = gates[3 * H + j];
      const T dhj = kProj ? dhc[b * H + j]
                          : dh[b * H + j] + (dy ? dy[row * H + j] : T(0));
      const T tc = std::tanh(c_new[j]);
      const T dcj = dcb[j] + dhj * o * (T(1) - tc * tc);
      ds[j] = dcj * gg * i * (T(1) - i);
      ds[H + j] = dcj * c_prev[j] * f * (T(1) - f);
      ds[2 * H + j] = dcj * i * (T(1) - gg * gg);
      ds[3 * H + j] = dhj * tc * o * (T(1) - o);
      dcb[j] = dcj * f;
    }
    std::fill(dh + b * P, dh + (b + 1) * P, T(0));
  };
  cells::bptt_loop(cache, GH, dh, dG.data(), pointwise, unproject);

  cells::input_grads(cache, GH, dG.data(), dx, g.dW_ih, g.db_ih);
  cells::weight_grads(d, GH, dG.data(), GH, cache.h_prev.data(), P, g.dW_hh);
  if (g.db_hh) std::copy(g.db_ih, g.db_ih + GH, g.db_hh);
  if constexpr (kProj)
    cells::weight_grads(d, P, dh_rows.data(), P, cache.hc.data(), H, g.dW_hr);
}

}  // namespace

template <typename T>
void forward(const Schedule& s, const T* x, const T* h0, const T* c0,
             const CellWeights<T>& w, T* y, T* h_n, T* c_n, Cache<T>* cache) {
  const bool proj = w.W_hr != nullptr;
  if (!cache) {
    if (proj) return run_forward<T, false, true>(s, x, h0, c0, w, y, h_n, c_n, cache);
    return run_forward<T, false, false>(s, x, h0, c0, w, y, h_n, c_n, cache);
  }
  const Dims& d = s.d;
  cells::start_cache(*cache, s, 4, x, w);
  const std::size_t n = static_cast<std::size_t>(d.T * d.B * d.H);
  cache->c_prev.assign(n, T(0));
  cache->c.assign(n, T(0));
  cache->W_hr.clear();
  cache->hc.clear();
  if (proj) {
    cache->W_hr.assign(w.W_hr, w.W_hr + d.P * d.H);
    cache->hc.assign(n, T(0));
    return run_forward<T, true, true>(s, x, h0, c0, w, y, h_n, c_n, cache);
  }
  run_forward<T, true, false>(s, x, h0, c0, w, y, h_n, c_n, cache);
}

template <typename T>
void backward(const Cache<T>& cache, const T* dy, const T* dh_n,
              const T* dc_n, T* dx, T* dh0, T* dc0, const CellGrads<T>& g) {
  if (cache.projected())
    run_backward<T, true>(cache, dy, dh_n, dc_n, dx, dh0, dc0, g);
  else
    run_backward<T, false>(cache, dy, dh_n, dc_n, dx, dh0, dc0, g);
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

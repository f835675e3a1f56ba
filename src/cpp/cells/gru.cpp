// GRU sequence loops, both variants of the candidate gate n.
//
// reset_after: one recurrent product per step, a = h W_hh^T [B,3H]; b_hn is
// added inside r*(.), the rest of b_hh is folded into the input projection.
// reset before: the product is split, h W_hr,hz^T [B,2H] gives r and z, then
// (r*h) W_hn^T [B,H] gives n; all of b_hh is folded into the projection.
#include "rnncore/gru.h"

#include "cells/sequence.h"

namespace rnncore::gru {
namespace {

using cells::sigmoid;
using gemm::Trans;

template <typename T, bool kTrain, bool kResetAfter>
void run_forward(const Schedule& s, const T* x, const T* h0,
                 const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache) {
  const Dims& d = s.d;
  const index_t H = d.H, GH = 3 * H;
  const std::vector<T> xp = cells::project_inputs(
      d, GH, x, w.W_ih, cells::folded_bias(GH, kResetAfter ? H : 0, w));
  const T* b_hn = (kResetAfter && w.b_hh) ? w.b_hh + 2 * H : nullptr;
  std::vector<T> a(static_cast<std::size_t>(d.B * GH));
  std::vector<T> rh(kResetAfter ? 0 : static_cast<std::size_t>(d.B * H), T(0));
  T* h = h_n;
  cells::init_state(d.B, H, h0, h);
  cells::zero_padding(s, H, y);

  const index_t steps = s.steps();
  for (index_t step = 0; step < steps; ++step) {
    gemm::gemm<T>(Trans::N, Trans::T, d.B, kResetAfter ? GH : 2 * H, H, T(1),
                  h, H, w.W_hh, H, T(0), a.data(), GH);
    if constexpr (!kResetAfter) {
      for (index_t b = 0; b < d.B; ++b) {
        if (!s.active(step, b)) continue;
        const T* a_x = xp.data() + s.row(step, b) * GH;
        const T* a_h = a.data() + b * GH;
        for (index_t j = 0; j < H; ++j)
          rh[b * H + j] = sigmoid(a_x[j] + a_h[j]) * h[b * H + j];
      }
      gemm::gemm<T>(Trans::N, Trans::T, d.B, H, H, T(1), rh.data(), H,
                    w.W_hh + 2 * H * H, H, T(0), a.data() + 2 * H, GH);
    }
    for (index_t b = 0; b < d.B; ++b) {
      if (!s.active(step, b)) continue;
      const index_t row = s.row(step, b);
      const T* a_x = xp.data() + row * GH;
      const T* a_h = a.data() + b * GH;
      T* hb = h + b * H;
      if constexpr (kTrain)
        std::copy(hb, hb + H, cache->h_prev.begin() + row * H);
      for (index_t j = 0; j < H; ++j) {
        const T r = sigmoid(a_x[j] + a_h[j]);
        const T z = sigmoid(a_x[H + j] + a_h[H + j]);
        // reset_after: hn = W_hn h + b_hn; reset before: hn = r*h.
        const T hn = kResetAfter ? a_h[2 * H + j] + (b_hn ? b_hn[j] : T(0))
                                 : rh[b * H + j];
        const T n = std::tanh(a_x[2 * H + j] +
                              (kResetAfter ? r * hn : a_h[2 * H + j]));
        const T hnew = (T(1) - z) * n + z * hb[j];
        hb[j] = hnew;
        y[row * H + j] = hnew;
        if constexpr (kTrain) {
          T* gates = cache->gates.data() + row * GH;
          gates[j] = r;
          gates[H + j] = z;
          gates[2 * H + j] = n;
          cache->hn[row * H + j] = hn;
        }
      }
    }
  }
}

template <typename T, bool kTrain>
void dispatch_forward(const Schedule& s, bool reset_after, const T* x,
                      const T* h0, const CellWeights<T>& w, T* y, T* h_n,
                      Cache<T>* cache) {
  if (reset_after)
    run_forward<T, kTrain, true>(s, x, h0, w, y, h_n, cache);
  else
    run_forward<T, kTrain, false>(s, x, h0, w, y, h_n, cache);
}

// One step of BPTT for the active rows of `step`.  Writes the input-side
// pre-activation gradients into dGx (at the rows of the time steps) and the
// recurrent-side ones into dGs [B,3H]; leaves in dh the gradient reaching
// h_prev directly (z*dh') and, for reset before, through r*h.
template <typename T, bool kResetAfter>
void backward_step(const Cache<T>& cache, const Schedule& s, index_t step,
                   const T* dy, T* dh, T* dGx, T* dGs, T* drh) {
  const Dims& d = s.d;
  const index_t H = d.H, GH = 3 * H;
  for (index_t b = 0; b < d.B; ++b) {
    T* ds = dGs + b * GH;
    if (!s.active(step, b)) {
      std::fill(ds, ds + GH, T(0));
      continue;
    }
    const index_t row = s.row(step, b);
    const T* gates = cache.gates.data() + row * GH;
    const T* hn = cache.hn.data() + row * H;
    const T* h_prev = cache.h_prev.data() + row * H;
    T* dgx = dGx + row * GH;
    T* dhb = dh + b * H;
    for (index_t j = 0; j < H; ++j) {
      const T r = gates[j], z = gates[H + j], n = gates[2 * H + j];
      const T dhj = dhb[j] + (dy ? dy[row * H + j] : T(0));
      const T dn = dhj * (T(1) - z) * (T(1) - n * n);
      const T dz = dhj * (h_prev[j] - n) * z * (T(1) - z);
      dgx[H + j] = ds[H + j] = dz;
      dgx[2 * H + j] = dn;
      dhb[j] = dhj * z;
      if constexpr (kResetAfter) {
        const T dr = dn * hn[j] * r * (T(1) - r);
        dgx[j] = ds[j] = dr;
        ds[2 * H + j] = dn * r;
      } else {
        ds[2 * H + j] = dn;
      }
    }
  }
  if constexpr (!kResetAfter) {
    // d(r*h) = dn W_hn, then r's gradient and the path through r*h.
    gemm::gemm<T>(Trans::N, Trans::N, d.B, H, H, T(1), dGs + 2 * H, GH,
                  cache.W_hh.data() + 2 * H * H, H, T(0), drh, H);
    for (index_t b = 0; b < d.B; ++b) {
      if (!s.active(step, b)) continue;
      const index_t row = s.row(step, b);
      const T* gates = cache.gates.data() + row * GH;
      const T* h_prev = cache.h_prev.data() + row * H;
      for (index_t j = 0; j < H; ++j) {
        const T r = gates[j], g = drh[b * H + j];
        dGx[row * GH + j] = dGs[b * GH + j] = g * h_prev[j] * r * (T(1) - r);
        dh[b * H + j] += g * r;
      }
    }
  }
}

template <typename T, bool kResetAfter>
void run_backward(const Cache<T>& cache, const T* dy, const T* dh_n, T* dx,
                  T* dh0, const CellGrads<T>& g) {
  const Schedule s = cache.schedule();
  const Dims& d = s.d;
  const index_t H = d.H, GH = 3 * H;
  const std::size_t rows = static_cast<std::size_t>(d.T * d.B);
  std::vector<T> dGx(rows * GH, T(0));
  // Recurrent-side gradients differ from dGx only in n (reset_after: dn*r).
  std::vector<T> dGh(kResetAfter ? rows * GH : 0, T(0));
  std::vector<T> dGs(static_cast<std::size_t>(d.B * GH));
  std::vector<T> drh(kResetAfter ? 0 : static_cast<std::size_t>(d.B * H));
  T* dh = dh0;
  cells::init_state(d.B, H, dh_n, dh);

  for (index_t step = s.steps() - 1; step >= 0; --step) {
    backward_step<T, kResetAfter>(cache, s, step, dy, dh, dGx.data(),
                                  dGs.data(), drh.data());
    if constexpr (kResetAfter) {
      for (index_t b = 0; b < d.B; ++b)
        if (s.active(step, b))
          std::copy(dGs.begin() + b * GH, dGs.begin() + (b + 1) * GH,
                    dGh.begin() + s.row(step, b) * GH);
    }
    // dh += dGs[:, gates through h] W_hh[those gates].
    const index_t K = kResetAfter ? GH : 2 * H;
    gemm::gemm<T>(Trans::N, Trans::N, d.B, H, K, T(1), dGs.data(), GH,
                  cache.W_hh.data(), H, T(1), dh, H);
  }

  cells::input_grads(cache, GH, dGx.data(), dx, g.dW_ih, g.db_ih);
  if constexpr (kResetAfter) {
    cells::weight_grads(d, GH, dGh.data(), GH, cache.h_prev.data(), H,
                      g.dW_hh);
    if (g.db_hh) cells::column_sums(d.T * d.B, GH, dGh.data(), g.db_hh);
  } else {
    cells::weight_grads(d, 2 * H, dGx.data(), GH, cache.h_prev.data(), H,
                      g.dW_hh);
    cells::weight_grads(d, H, dGx.data() + 2 * H, GH, cache.hn.data(), H,
                      g.dW_hh + 2 * H * H);
    if (g.db_hh) std::copy(g.db_ih, g.db_ih + GH, g.db_hh);
  }
}

}  // namespace

template <typename T>
void forward(const Schedule& s, bool reset_after, const T* x, const T* h0,
             const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache) {
  if (!cache)
    return dispatch_forward<T, false>(s, reset_after, x, h0, w, y, h_n, cache);
  cells::start_cache(*cache, s, 3, x, w);
  cache->reset_after = reset_after;
  cache->hn.assign(static_cast<std::size_t>(s.d.T * s.d.B * s.d.H), T(0));
  dispatch_forward<T, true>(s, reset_after, x, h0, w, y, h_n, cache);
}

template <typename T>
void backward(const Cache<T>& cache, const T* dy, const T* dh_n, T* dx,
              T* dh0, const CellGrads<T>& g) {
  if (cache.reset_after)
    run_backward<T, true>(cache, dy, dh_n, dx, dh0, g);
  else
    run_backward<T, false>(cache, dy, dh_n, dx, dh0, g);
}

#define RNNCORE_INSTANTIATE(T)                                                \
  template void forward<T>(const Schedule&, bool, const T*, const T*,         \
                           const CellWeights<T>&, T*, T*, Cache<T>*);         \
  template void backward<T>(const Cache<T>&, const T*, const T*, T*, T*,      \
                            const CellGrads<T>&);
RNNCORE_INSTANTIATE(float)
RNNCORE_INSTANTIATE(double)
#undef RNNCORE_INSTANTIATE

}  // namespace rnncore::gru

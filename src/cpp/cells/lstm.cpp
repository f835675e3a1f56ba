// LSTM sequence loops: per step, the recurrent product of each thread's
// units and the fused point-wise gate pass; everything time-independent is
// hoisted out (sequence.h).  A projected LSTM adds one product per step,
// h = (o*tanh(c)) W_hr^T, after a barrier (it needs every unit's output).
#include "rnncore/lstm.h"

#include "cells/sequence.h"
#include "dispatch/dispatch.h"

namespace rnncore::lstm {
namespace {

using cells::Slice;

template <typename T, bool kTrain, bool kProj>
void run_forward(const Schedule& s, const T* x, const T* h0, const T* c0,
                 const CellWeights<T>& w, T* y, T* h_n, T* c_n,
                 Cache<T>* cache) {
  const Dims& d = s.d;
  const index_t H = d.H, P = d.P, GH = 4 * H;
  const std::vector<T> bias = cells::folded_bias(GH, 0, w);
  cells::init_state(d.B, P, h0, h_n);
  cells::init_state(d.B, H, c0, c_n);
  cells::zero_padding(s, P, y);
  T* c = c_n;  // each thread updates its own units in place
  const kernels::GateKernels<T>& K = dispatch::active().gates<T>();
  std::vector<T> hc(kProj ? d.B * H : 0);  // o*tanh(c) before the projection

  cells::forward_loop<T>(s, 4, h_n, [&](const Slice& sl) {
    const index_t n = sl.units();
    cells::InputChunks<T> xp(s, 4, sl, x, w.W_ih, bias, w.packs);
    const bool direct = cells::direct_rows(s), once = s.steps() == 1;
    cells::GateRows<T> W(w.W_hh, H, P, 0, 4, sl, direct, d.B, once, w.packs);  // [P, 4n]
    cells::GateRows<T> Wr;  // rows [p0, p1) of W_hr [P, H]
    if (kProj)
      Wr = cells::GateRows<T>(w.W_hr, H, 0, 0, 1, sl.p0, sl.cols(), direct, d.B,
                              once, w.packs);
    std::vector<T> a(d.B * 4 * n), hp(kProj ? d.B * sl.cols() : 0);
    return [&, sl, n, xp = std::move(xp), W = std::move(W), Wr = std::move(Wr),
            a = std::move(a), hp = std::move(hp)](index_t step, const T* h, T* h_next,
                                threads::Barrier& barrier) mutable {
      xp.mul_step(W, step, h, P, a.data(), 4 * n, cells::odd(step));
      for (index_t b = 0; b < d.B; ++b) {
        if (!s.active(step, b)) continue;
        const index_t row = s.row(step, b);
        const index_t at = row * H + sl.j0;  // unit j0 of this row, [T,B,H]
        kernels::LstmForward<T> args{
            n, H, xp.row(step, b), a.data() + b * 4 * n,
            c + b * H + sl.j0,
            kProj ? hc.data() + b * H + sl.j0 : h_next + b * P + sl.j0,
            kProj ? nullptr : y + row * P + sl.j0, nullptr, nullptr};
        if constexpr (kTrain) {
          args.gates = cache->gates.data() + row * GH + sl.j0;
          args.c_new = cache->c.data() + at;
          if constexpr (kProj) args.out2 = cache->hc.data() + at;
        }
        K.lstm_forward(args);
      }
      if constexpr (kProj) {
        barrier.wait();  // every unit's o*tanh(c) is in hc
        Wr.mul(d.B, hc.data(), H, hp.data(), sl.cols(), cells::odd(step));
        for (index_t b = 0; b < d.B; ++b) {
          if (!s.active(step, b)) continue;
          const T* src = hp.data() + b * sl.cols();
          std::copy(src, src + sl.cols(), h_next + b * P + sl.p0);
          std::copy(src, src + sl.cols(), y + s.row(step, b) * P + sl.p0);
        }
      }
    };
  });
}

template <typename T, bool kProj>
void run_backward(const Cache<T>& cache, const T* dy, const T* dh_n,
                  const T* dc_n, T* dx, T* dh0, T* dc0, const CellGrads<T>& g) {
  const Schedule s = cache.schedule();
  const Dims& d = s.d;
  const index_t H = d.H, P = d.P, GH = 4 * H;
  Buffer<T> dG;  // [T*B,4H] gate gradients
  cells::allocate_rows(dG, s, GH);
  cells::StepGrads<T> steps(s, dG.data(), GH);
  T* dh = dh0;  // the running gradients live in the outputs
  T* dc = dc0;
  cells::init_state(d.B, P, dh_n, dh);
  cells::init_state(d.B, H, dc_n, dc);
  // Projected: the gradient reaching h at every row [T*B,P] (for dW_hr) and
  // at this step [B,P].
  Buffer<T> dh_rows;
  if (kProj) cells::allocate_rows(dh_rows, s, P);
  std::vector<T> dh_step(kProj ? d.B * P : 0);
  const kernels::GateKernels<T>& K = dispatch::active().gates<T>();

  // The cell state entering `step` for sequence b: the previous step's.
  auto c_prev = [&](index_t step, index_t b) {
    return step == 0 ? cache.c0.data() + b * H
                     : cache.c.data() + s.row(step - 1, b) * H;
  };
  cells::bptt_loop(cache, 4, [&](const Slice& sl) {
    const index_t n = sl.units();
    std::vector<T> dhc(kProj ? d.B * n : 0);  // reaching o*tanh(c), own units
    std::vector<T> keep = cells::state_keep<T>(s, sl.cols());
    // W_hh[:, p0:p1] [4H, cols] and W_hr[:, j0:j1] [P, n].
    const bool direct =
        cells::direct_cols(s, std::size_t(GH * P) * sizeof(T));
    cells::ColBlock<T> W(cache.W_hh.data(), P, GH, sl.p0, sl.cols(), direct, d.B);
    cells::ColBlock<T> Wr;
    if (kProj) Wr = cells::ColBlock<T>(cache.W_hr.data(), H, P, sl.j0, n, direct, d.B);
    return [&, sl, n, dhc = std::move(dhc), keep = std::move(keep),
            W = std::move(W), Wr = std::move(Wr)](index_t step, int /*parity*/,
                                threads::Barrier& barrier) mutable {
      if constexpr (kProj) {
        for (index_t b = 0; b < d.B; ++b) {
          if (!s.active(step, b)) continue;
          const index_t row = s.row(step, b);
          for (index_t p = sl.p0; p < sl.p1; ++p) {
            const T v = dh[b * P + p] + (dy ? dy[row * P + p] : T(0));
            dh_step[b * P + p] = dh_rows[row * P + p] = v;
            dh[b * P + p] = T(0);
          }
        }
        barrier.wait();  // dh_step complete
        Wr.mul(d.B, dh_step.data(), P, T(0), dhc.data(), n, cells::odd(step));
      }
      T* ds_all = steps.rows(step);
      cells::backward_rows(s, step, sl, 4, ds_all, [&](index_t b, index_t row, T* ds) {
        const index_t at = row * H + sl.j0;
        const T* dy_row = dy ? dy + row * P + sl.j0 : nullptr;
        K.lstm_backward({n, H, cache.gates.data() + row * GH + sl.j0,
                         c_prev(step, b) + sl.j0, cache.c.data() + at,
                         kProj ? dhc.data() + b * n : dh + b * P + sl.j0,
                         kProj ? nullptr : dy_row, dc + b * H + sl.j0, ds,
                         steps.copy_to(row, sl.j0)});
        if constexpr (!kProj) std::fill(dh + b * P + sl.j0, dh + b * P + sl.j1, T(0));
      });
      barrier.wait();  // every unit's gate gradients are in ds_all
      cells::add_state_grads(s, step, ds_all, GH, W, dh + sl.p0, P, keep.data());
    };
  });

  cells::input_grads(cache, GH, dG.data(), dx, g.db_ih);
  cells::input_weight_grads(cache, GH, dG.data(), GH, g.dW_ih);
  cells::state_weight_grads(cache, GH, dG.data(), GH, g.dW_hh);
  if (g.db_hh) std::copy(g.db_ih, g.db_ih + GH, g.db_hh);
  if constexpr (kProj)
    cells::weight_grads(d, P, dh_rows.data(), P, cache.hc.data(), H, H, g.dW_hr);
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
  cells::start_cache(*cache, s, 4, x, h0, y, w);
  const std::size_t n = static_cast<std::size_t>(d.T * d.B * d.H);
  cache->c0.assign(static_cast<std::size_t>(d.B * d.H), T(0));
  if (c0) std::copy(c0, c0 + d.B * d.H, cache->c0.begin());
  cache->c.resize(n);
  cache->W_hr.clear();
  cache->hc.clear();
  if (proj) {
    cache->W_hr.assign(w.W_hr, w.W_hr + d.P * d.H);
    cells::allocate_rows(cache->hc, s, d.H);
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

// Dense (Elman) cell sequence loops: per step, the recurrent product of each
// thread's units and the activation.
#include "rnncore/dense.h"

#include "cells/sequence.h"
#include "dispatch/dispatch.h"

namespace rnncore::dense {
namespace {

using cells::Slice;

template <typename T, Activation kAct>
void run_forward(const Schedule& s, const T* x, const T* h0,
                 const CellWeights<T>& w, T* y, T* h_n) {
  const Dims& d = s.d;
  const index_t H = d.H;
  const std::vector<T> bias = cells::folded_bias(H, 0, w);
  cells::init_state(d.B, H, h0, h_n);
  cells::zero_padding(s, H, y);
  const kernels::GateKernels<T>& K = dispatch::active().gates<T>();

  cells::forward_loop<T>(s, 1, h_n, [&](const Slice& sl) {
    const index_t n = sl.units();
    cells::InputChunks<T> xp(s, 1, sl, x, w.W_ih, bias, w.packs);
    cells::GateRows<T> W(w.W_hh, H, H, 0, 1, sl, cells::direct_rows(s), d.B,
                         s.steps() == 1, w.packs);
    std::vector<T> a(d.B * n);
    return [&, sl, n, xp = std::move(xp), W = std::move(W), a = std::move(a)](
               index_t step, const T* h, T* h_next, threads::Barrier&) mutable {
      xp.mul_step(W, step, h, H, a.data(), n, cells::odd(step));
      if (n == H && !s.lengths) {
        // One thread, every sequence active: the B rows of each operand lie
        // one after another, so one call covers them all (B=16 H=128: 0.96-
        // 1.00x the time, bench/ab.py --lockstep).  Each value is computed
        // exactly as by the per-row calls.
        K.dense_forward({d.B * n, kAct == Activation::Relu, xp.row(step, 0),
                         a.data(), h_next, y + s.row(step, 0) * H});
        return;
      }
      for (index_t b = 0; b < d.B; ++b) {
        if (!s.active(step, b)) continue;
        const index_t at = s.row(step, b) * H + sl.j0;
        K.dense_forward({n, kAct == Activation::Relu, xp.row(step, b),
                         a.data() + b * n, h_next + b * H + sl.j0, y + at});
      }
    };
  });
}

template <typename T, Activation kAct>
void run_backward(const Cache<T>& cache, const T* dy, const T* dh_n, T* dx,
                  T* dh0, const CellGrads<T>& g) {
  const Schedule s = cache.schedule();
  const Dims& d = s.d;
  const index_t H = d.H;
  Buffer<T> dG;
  cells::allocate_rows(dG, s, H);
  cells::StepGrads<T> steps(s, dG.data(), H);
  T* dh = dh0;
  cells::init_state(d.B, H, dh_n, dh);
  const kernels::GateKernels<T>& K = dispatch::active().gates<T>();

  cells::bptt_loop(cache, 1, [&](const Slice& sl) {
    cells::ColBlock<T> W(cache.W_hh.data(), H, H, sl.p0, sl.cols(),
                         cells::direct_cols(s, std::size_t(H * H) * sizeof(T)),
                         d.B);
    std::vector<T> keep = cells::state_keep<T>(s, sl.cols());
    return [&, sl, W = std::move(W), keep = std::move(keep)](
               index_t step, int /*parity*/, threads::Barrier& barrier) mutable {
      T* ds_all = steps.rows(step);
      cells::backward_rows(s, step, sl, 1, ds_all, [&](index_t b, index_t row, T* ds) {
        const index_t at = row * H + sl.j0;
        K.dense_backward({sl.units(), kAct == Activation::Relu, cache.y + at, dh + b * H + sl.j0,
                          dy ? dy + at : nullptr, ds, steps.copy_to(row, sl.j0)});
      });
      barrier.wait();
      cells::add_state_grads(s, step, ds_all, H, W, dh + sl.p0, H, keep.data());
    };
  });

  cells::input_grads(cache, H, dG.data(), dx, g.db_ih);
  cells::input_weight_grads(cache, H, dG.data(), H, g.dW_ih);
  cells::state_weight_grads(cache, H, dG.data(), H, g.dW_hh);
  if (g.db_hh) std::copy(g.db_ih, g.db_ih + H, g.db_hh);
}

}  // namespace

template <typename T>
void forward(const Schedule& s, Activation act, const T* x, const T* h0,
             const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache) {
  // Training keeps nothing per step: backward reads h from y.
  if (cache) {
    cells::start_cache(*cache, s, 1, x, h0, y, w, false);
    cache->act = act;
  }
  if (act == Activation::Tanh)
    run_forward<T, Activation::Tanh>(s, x, h0, w, y, h_n);
  else
    run_forward<T, Activation::Relu>(s, x, h0, w, y, h_n);
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

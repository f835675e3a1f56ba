// GRU sequence loops, both variants of the candidate gate n.
//
// reset_after: one recurrent product per step, a = h W_hh^T (each thread:
// its units' 3 gate rows); b_hn is added inside r*(.), the rest of b_hh is
// folded into the input projection.
// reset before: the product is split: h W_hr,hz^T gives r and z, then after a
// barrier (r*h) W_hn^T gives n; all of b_hh is folded into the projection.
#include "rnncore/gru.h"

#include "cells/sequence.h"
#include "dispatch/dispatch.h"

namespace rnncore::gru {
namespace {

using cells::Slice;

template <typename T, bool kTrain, bool kResetAfter>
void run_forward(const Schedule& s, const T* x, const T* h0,
                 const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache) {
  const Dims& d = s.d;
  const index_t H = d.H, GH = 3 * H;
  const std::vector<T> bias = cells::folded_bias(GH, kResetAfter ? H : 0, w);
  const T* b_hn = (kResetAfter && w.b_hh) ? w.b_hh + 2 * H : nullptr;
  cells::init_state(d.B, H, h0, h_n);
  cells::zero_padding(s, H, y);
  std::vector<T> rh(kResetAfter ? 0 : d.B * H);  // r*h, input of W_hn
  const kernels::GateKernels<T>& K = dispatch::active().gates<T>();

  cells::forward_loop<T>(s, 3, h_n, [&](const Slice& sl) {
    const index_t n = sl.units();
    const index_t G1 = kResetAfter ? 3 : 2;  // gates of the first product
    cells::InputChunks<T> xp(s, 3, sl, x, w.W_ih, bias, w.packs);
    const bool direct = cells::direct_rows(s), once = s.steps() == 1;
    cells::GateRows<T> W1(w.W_hh, H, H, 0, G1, sl, direct, d.B, once, w.packs), Wn;
    if (!kResetAfter)
      Wn = cells::GateRows<T>(w.W_hh, H, H, 2, 3, sl, direct, d.B, once, w.packs);
    std::vector<T> a(d.B * 3 * n);  // recurrent products, gate-major per row
    return [&, sl, n, xp = std::move(xp), W1 = std::move(W1), Wn = std::move(Wn),
            a = std::move(a)](
               index_t step, const T* h, T* h_next, threads::Barrier& barrier) mutable {
      xp.mul_step(W1, step, h, H, a.data(), 3 * n, cells::odd(step));
      if constexpr (!kResetAfter) {
        for (index_t b = 0; b < d.B; ++b) {
          if (!s.active(step, b)) continue;
          K.sigmoid_mul(n, xp.row(step, b),
                        a.data() + b * 3 * n, h + b * H + sl.j0,
                        rh.data() + b * H + sl.j0);
        }
        barrier.wait();  // every unit's r*h is in rh
        Wn.mul(d.B, rh.data(), H, a.data() + 2 * n, 3 * n, cells::odd(step));
      }
      for (index_t b = 0; b < d.B; ++b) {
        if (!s.active(step, b)) continue;
        const index_t row = s.row(step, b);
        kernels::GruForward<T> args{
            n, H, kResetAfter, xp.row(step, b),
            a.data() + b * 3 * n, b_hn ? b_hn + sl.j0 : nullptr,
            kResetAfter ? nullptr : rh.data() + b * H + sl.j0,
            h + b * H + sl.j0, h_next + b * H + sl.j0, y + row * H + sl.j0,
            nullptr, nullptr};
        if constexpr (kTrain) {
          args.gates = cache->gates.data() + row * GH + sl.j0;
          args.hn = cache->hn.data() + row * H + sl.j0;
        }
        K.gru_forward(args);
      }
    };
  });
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

// BPTT.  dGx [T*B,3H]: gradients of the input-side pre-activations.  The
// recurrent side differs only in n for reset_after (dn*r, kept in dGhn
// [T*B,H]); for reset before it equals dGx.  Per step, ds [B,3H] holds the recurrent
// side for the product dh += ds W_hh.
template <typename T, bool kResetAfter>
void run_backward(const Cache<T>& cache, const T* dy, const T* dh_n, T* dx,
                  T* dh0, const CellGrads<T>& g) {
  const Schedule s = cache.schedule();
  const Dims& d = s.d;
  const index_t H = d.H, GH = 3 * H;
  Buffer<T> dGx, dGhn;  // input side, and (reset_after) recurrent side of n
  cells::allocate_rows(dGx, s, GH);
  if (kResetAfter) cells::allocate_rows(dGhn, s, H);
  std::vector<T> dGs(2 * d.B * GH);
  T* dh = dh0;
  cells::init_state(d.B, H, dh_n, dh);
  const kernels::GateKernels<T>& K = dispatch::active().gates<T>();

  cells::bptt_loop(cache, 3, [&](const Slice& sl) {
    const index_t n = sl.units();
    std::vector<T> drh(kResetAfter ? 0 : d.B * n);  // d(r*h), own units
    std::vector<T> keep = cells::state_keep<T>(s, n);
    // W_hh[gates through h, j0:j1]; reset before also W_hn[:, j0:j1].
    const bool direct =
        cells::direct_cols(s, std::size_t(3 * H * H) * sizeof(T));
    cells::ColBlock<T> W(cache.W_hh.data(), H, kResetAfter ? GH : 2 * H, sl.j0,
                         n, direct, d.B);
    cells::ColBlock<T> Wn;
    if (!kResetAfter)
      Wn = cells::ColBlock<T>(cache.W_hh.data() + 2 * H * H, H, H, sl.j0, n, direct, d.B);
    return [&, sl, n, drh = std::move(drh), keep = std::move(keep),
            W = std::move(W), Wn = std::move(Wn)](index_t step, int parity,
                                threads::Barrier& barrier) mutable {
      T* ds_all = dGs.data() + parity * d.B * GH;
      cells::backward_rows(s, step, sl, 3, ds_all, [&](index_t b, index_t row, T* ds) {
        const index_t at = row * H + sl.j0;
        K.gru_backward({n, H, kResetAfter,
                        cache.gates.data() + row * GH + sl.j0,
                        cache.hn.data() + at,
                        cache.h_prev(step, b) + sl.j0,
                        dh + b * H + sl.j0, dy ? dy + at : nullptr, ds,
                        dGx.data() + row * GH + sl.j0});
        if constexpr (kResetAfter)
          std::copy(ds + 2 * H, ds + 2 * H + n, dGhn.begin() + at);
      });
      barrier.wait();  // every unit's gradients are in ds_all
      if constexpr (!kResetAfter) {
        // d(r*h) = dn W_hn, then r's gradient and the path through r*h.
        Wn.mul(d.B, ds_all + 2 * H, GH, T(0), drh.data(), n, cells::odd(step));
        for (index_t b = 0; b < d.B; ++b) {
          if (!s.active(step, b)) continue;
          const index_t row = s.row(step, b);
          const T* gates = cache.gates.data() + row * GH;
          const T* h_prev = cache.h_prev(step, b);
          for (index_t j = sl.j0, k = 0; j < sl.j1; ++j, ++k) {
            const T r = gates[j], gr = drh[b * n + k];
            dGx[row * GH + j] = ds_all[b * GH + j] =
                gr * h_prev[j] * r * (T(1) - r);
            dh[b * H + j] += gr * r;
          }
        }
        barrier.wait();  // every unit's r gradient is in ds_all
      }
      // dh += ds[:, gates through h] W_hh[those gates, own units].
      cells::add_state_grads(s, step, ds_all, GH, W, dh + sl.j0, H, keep.data());
    };
  });

  cells::input_grads(cache, GH, dGx.data(), dx, g.db_ih);
  cells::input_weight_grads(cache, GH, dGx.data(), GH, g.dW_ih);
  // r and z: the recurrent side is the input side, acting on h_prev.
  cells::state_weight_grads(cache, 2 * H, dGx.data(), GH, g.dW_hh);
  if (g.db_hh) std::copy(g.db_ih, g.db_ih + 2 * H, g.db_hh);
  if constexpr (kResetAfter) {
    // n: r*(W_hn h_prev + b_hn).
    cells::state_weight_grads(cache, H, dGhn.data(), H, g.dW_hh + 2 * H * H);
    if (g.db_hh) cells::column_sums(d.T * d.B, H, dGhn.data(), g.db_hh + 2 * H);
  } else {
    // n: W_hn (r*h) + b_hn.
    cells::weight_grads(d, H, dGx.data() + 2 * H, GH, cache.hn.data(), H, H,
                        g.dW_hh + 2 * H * H);
    if (g.db_hh) std::copy(g.db_ih + 2 * H, g.db_ih + GH, g.db_hh + 2 * H);
  }
}

}  // namespace

template <typename T>
void forward(const Schedule& s, bool reset_after, const T* x, const T* h0,
             const CellWeights<T>& w, T* y, T* h_n, Cache<T>* cache) {
  if (!cache)
    return dispatch_forward<T, false>(s, reset_after, x, h0, w, y, h_n, cache);
  cells::start_cache(*cache, s, 3, x, h0, y, w);
  cache->reset_after = reset_after;
  cells::allocate_rows(cache->hn, s, s.d.H);
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

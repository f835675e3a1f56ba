// Pieces every cell's sequence loop shares: state set-up, the hoisted input
// projection, the cache's common part, the time loops of forward and BPTT,
// and the products after BPTT's loop.  Internal to src/cpp/cells.
//
// Widths: the recurrent state h and the output y are P wide (P = H but for a
// projected LSTM); gates are G*H wide.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "rnncore/cache.h"
#include "rnncore/gemm.h"

namespace rnncore::cells {

using gemm::Trans;

template <typename T>
inline T sigmoid(T a) {
  return T(1) / (T(1) + std::exp(-a));
}

// s [B,width] <- s0, or zeros when s0 is null.
template <typename T>
void init_state(index_t B, index_t width, const T* s0, T* s) {
  const std::size_t n = static_cast<std::size_t>(B * width);
  if (s0)
    std::memcpy(s, s0, n * sizeof(T));
  else
    std::fill(s, s + n, T(0));
}

// Bias added to every row of the input projection: b_ih plus the parts of
// b_hh that are added outside the recurrent product (all of b_hh except the
// last `inner` rows, which the caller adds inside it).  Empty without bias.
template <typename T>
std::vector<T> folded_bias(index_t GH, index_t inner, const CellWeights<T>& w) {
  std::vector<T> b;
  if (!w.b_ih) return b;
  b.assign(w.b_ih, w.b_ih + GH);
  for (index_t j = 0; j < GH - inner; ++j) b[j] += w.b_hh[j];
  return b;
}

// Xp [T*B, G*H] = x [T*B, I] W_ih^T + bias: every step's input product as one
// GEMM before the loop.
template <typename T>
std::vector<T> project_inputs(const Dims& d, index_t GH, const T* x,
                              const T* W_ih, const std::vector<T>& bias) {
  const index_t rows = d.T * d.B;
  std::vector<T> xp(static_cast<std::size_t>(rows * GH));
  gemm::gemm<T>(Trans::N, Trans::T, rows, GH, d.I, T(1), x, d.I, W_ih, d.I,
                T(0), xp.data(), GH);
  if (!bias.empty())
    for (index_t r = 0; r < rows; ++r)
      for (index_t j = 0; j < GH; ++j) xp[r * GH + j] += bias[j];
  return xp;
}

// Rows of a [T,B,width] array past each sequence's length are exactly zero.
template <typename T>
void zero_padding(const Schedule& s, index_t width, T* a) {
  if (!s.lengths) return;
  const Dims& d = s.d;
  for (index_t b = 0; b < d.B; ++b)
    for (index_t t = s.length(b); t < d.T; ++t)
      std::fill(a + (t * d.B + b) * width, a + (t * d.B + b + 1) * width, T(0));
}

// The part of the cache every cell keeps: schedule, a copy of x with padded
// rows zeroed, the weights, and zeroed per-step buffers.
template <typename T>
void start_cache(SeqCache<T>& c, const Schedule& s, index_t G, const T* x,
                 const CellWeights<T>& w) {
  const Dims& d = s.d;
  const index_t GH = G * d.H;
  const std::size_t TB = static_cast<std::size_t>(d.T * d.B);
  c.d = d;
  c.reverse = s.reverse;
  c.lengths.clear();
  if (s.lengths) c.lengths.assign(s.lengths, s.lengths + d.B);
  c.has_bias = w.b_ih != nullptr;
  c.x.assign(x, x + TB * d.I);
  zero_padding(s, d.I, c.x.data());
  c.W_ih.assign(w.W_ih, w.W_ih + GH * d.I);
  c.W_hh.assign(w.W_hh, w.W_hh + GH * d.P);
  c.h_prev.assign(TB * d.P, T(0));
  c.gates.assign(TB * GH, T(0));
}

struct NoHook {
  void operator()(index_t) const {}
};

// The time loop of a forward pass whose step needs one recurrent product:
// a = h W_hh^T [B,G*H], then pointwise(row, b, a_h) for every active
// sequence b (row: its [T,B,*] row at this step; a_h: its G*H products),
// then after_step(step).  Training records in cache->h_prev the state each
// row started from.
template <typename T, bool kTrain, typename Pointwise, typename AfterStep = NoHook>
void forward_loop(const Schedule& s, index_t GH, const T* W_hh, T* h,
                  SeqCache<T>* cache, Pointwise&& pointwise,
                  AfterStep&& after_step = {}) {
  const Dims& d = s.d;
  std::vector<T> a(static_cast<std::size_t>(d.B * GH));
  const index_t steps = s.steps();
  for (index_t step = 0; step < steps; ++step) {
    gemm::gemm<T>(Trans::N, Trans::T, d.B, GH, d.P, T(1), h, d.P, W_hh, d.P,
                  T(0), a.data(), GH);
    for (index_t b = 0; b < d.B; ++b) {
      if (!s.active(step, b)) continue;
      const index_t row = s.row(step, b);
      if constexpr (kTrain)
        std::copy(h + b * d.P, h + (b + 1) * d.P,
                  cache->h_prev.begin() + row * d.P);
      pointwise(row, b, a.data() + b * GH);
    }
    after_step(step);
  }
}

// The time loop of BPTT for cells whose state gradient is
//   dh_prev = (direct part) + dGs W_hh,
// dGs [B,G*H] being the recurrent-side pre-activation gradients of one step.
// before_step(step) runs first; pointwise(row, b, ds) fills ds for an active
// sequence and replaces dh[b] by the direct part; ds is then stored in
// dG [T*B,G*H] at that row.  Rows of padded steps stay zero in dG and add
// nothing to dh.
template <typename T, typename Pointwise, typename BeforeStep = NoHook>
void bptt_loop(const SeqCache<T>& c, index_t GH, T* dh, T* dG,
               Pointwise&& pointwise, BeforeStep&& before_step = {}) {
  const Schedule s = c.schedule();
  const Dims& d = s.d;
  std::vector<T> dGs(static_cast<std::size_t>(d.B * GH));
  for (index_t step = s.steps() - 1; step >= 0; --step) {
    before_step(step);
    for (index_t b = 0; b < d.B; ++b) {
      T* ds = dGs.data() + b * GH;
      if (!s.active(step, b)) {
        std::fill(ds, ds + GH, T(0));
        continue;
      }
      const index_t row = s.row(step, b);
      pointwise(row, b, ds);
      std::copy(ds, ds + GH, dG + row * GH);
    }
    gemm::gemm<T>(Trans::N, Trans::N, d.B, d.P, GH, T(1), dGs.data(), GH,
                  c.W_hh.data(), d.P, T(1), dh, d.P);
  }
}

template <typename T>
void column_sums(index_t rows, index_t cols, const T* a, T* out) {
  std::fill(out, out + cols, T(0));
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) out[j] += a[r * cols + j];
}

// After BPTT's loop, from dGx [T*B, G*H] (gradients of the input-side
// pre-activations, zero on padded rows):  dx = dGx W_ih,  dW_ih = dGx^T x,
// db_ih = column sums of dGx.
template <typename T>
void input_grads(const SeqCache<T>& c, index_t GH, const T* dGx, T* dx,
                 T* dW_ih, T* db_ih) {
  const Dims& d = c.d;
  const index_t rows = d.T * d.B;
  gemm::gemm<T>(Trans::N, Trans::N, rows, d.I, GH, T(1), dGx, GH,
                c.W_ih.data(), d.I, T(0), dx, d.I);
  gemm::gemm<T>(Trans::T, Trans::N, GH, d.I, rows, T(1), dGx, GH, c.x.data(),
                d.I, T(0), dW_ih, d.I);
  if (db_ih) column_sums(rows, GH, dGx, db_ih);
}

// dW[n rows, width] = dG[:, n cols]^T src over all T*B rows, for one block
// of n gate rows: dG [T*B, ldg] (column offset applied by the caller),
// src [T*B, width].
template <typename T>
void weight_grads(const Dims& d, index_t n, const T* dG, index_t ldg,
                  const T* src, index_t width, T* dW) {
  gemm::gemm<T>(Trans::T, Trans::N, n, width, d.T * d.B, T(1), dG, ldg, src,
                width, T(0), dW, width);
}

}  // namespace rnncore::cells

// float gate kernels written with vector intrinsics over V (simd_avx512.h,
// simd_avx2.h), for the forward passes of the LSTM, GRU and tanh RNN.  The
// plain loops of gates_impl.h serve double, the backward passes and the
// reference ISA; these replace the float forward ones on AVX2 and AVX-512.
//
// Why: vectorised by the compiler, each vector of units ran exp, divide,
// exp, divide in one long chain (the divider takes 10-16 cycles per zmm on
// Intel cores), with the masks of the tanh branches juggled through general
// registers; about 13 cycles per LSTM unit, 15-18% of a batch-16 step.
// Here 1/d is rcp (2^-14 on AVX-512, 2^-12 on AVX2) and one Newton step,
// and 2^k is scalef (AVX-512) or an exponent built in integer lanes.
//
// The functions are the same as gates_impl.h's act:: (same polynomials,
// P(r) evaluated in another order, same ranges: NaN stays NaN, exp clamps to
// [-87, 88]); they differ from it by a few ulp, well inside the 1e-6 of its
// header.  Include ONLY from a
// file in src/cpp/kernels/ after the header of its V (anonymous namespace,
// no calls into std but std::size, as ukernel_simd.h).
#pragma once

#include <cstddef>
#include <iterator>
#include <type_traits>

#include "kernels/gates.h"

namespace rnncore::kernels {
namespace {

// Each function works on U vectors at once, one stage at a time for all U
// (sigmoid(r) turns every r[u] into sigmoid(r[u])).  Why: one vector's exp
// is a chain of ~15 dependent operations (~60 cycles), and the out-of-order
// core, whose scheduler holds only a few such chains, ran vectors written
// one after another at about half the rate of the vector units.  The chain
// is also shorter than a plain reading of the formulas: k by adding and
// subtracting 1.5 * 2^23 (round to nearest, as the scalar code; 8 cycles
// instead of 12), P(r) by Estrin's scheme (3 dependent FMAs instead of 5).
// Four AVX-512 vectors in L1, ns a vector before -> after: exp 8.2 -> 5.7,
// sigmoid 12.5 -> 8.5, tanh 15.5 -> 11.0.
template <class V>
struct Act {
  using reg = typename V::reg;

  template <int U, class F>
  static void each(F f) {
#pragma GCC unroll 16
    for (int u = 0; u < U; ++u) f(u);
  }

  template <int U>
  static void exp(reg (&x)[U]) {
    using namespace act_poly;
    constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: t - kShift = round(t)
    reg k[U], r[U], r2[U], q[U], s[U];
    each<U>([&](int u) {  // NaN stays NaN
      x[u] = V::min(V::set1(kExpHi), V::max(V::set1(kExpLo), x[u]));
    });
    each<U>([&](int u) { k[u] = V::fmadd(x[u], V::set1(kLog2e), V::set1(kShift)); });
    each<U>([&](int u) { k[u] = V::sub(k[u], V::set1(kShift)); });
    each<U>([&](int u) { r[u] = V::fnmadd(k[u], V::set1(kLn2Hi), x[u]); });
    each<U>([&](int u) { r[u] = V::fmadd(k[u], V::set1(kLn2Lo), r[u]); });
    // P(r) = (P0 r + P1) r^4 + (P2 r + P3) r^2 + (P4 r + P5).
    each<U>([&](int u) { r2[u] = V::mul(r[u], r[u]); });
    each<U>([&](int u) { q[u] = V::fmadd(V::set1(kExpP[0]), r[u], V::set1(kExpP[1])); });
    each<U>([&](int u) { s[u] = V::fmadd(V::set1(kExpP[2]), r[u], V::set1(kExpP[3])); });
    each<U>([&](int u) { q[u] = V::fmadd(q[u], r2[u], s[u]); });
    each<U>([&](int u) { s[u] = V::fmadd(V::set1(kExpP[4]), r[u], V::set1(kExpP[5])); });
    each<U>([&](int u) { q[u] = V::fmadd(q[u], r2[u], s[u]); });
    // 1 + r + r^2 P(r), times 2^k.
    each<U>([&](int u) { q[u] = V::fmadd(q[u], r2[u], V::add(r[u], V::set1(1.0f))); });
    each<U>([&](int u) { x[u] = V::scale2(q[u], k[u]); });
  }

  // 1/d for d >= 1: the estimate and one Newton step.  d up to 1.7e38
  // (exp's clamp): the reciprocal is then below the normal range and comes
  // out 0 (or tiny), never NaN.
  template <int U>
  static void recip(reg (&d)[U]) {
    each<U>([&](int u) {
      const reg y = V::rcp(d[u]);
      d[u] = V::mul(y, V::fnmadd(d[u], y, V::set1(2.0f)));
    });
  }

  template <int U>
  static void sigmoid(reg (&x)[U]) {
    each<U>([&](int u) { x[u] = V::sub(V::zero(), x[u]); });
    exp(x);
    each<U>([&](int u) { x[u] = V::add(V::set1(1.0f), x[u]); });
    recip(x);
  }

  // An odd polynomial below 0.625 (relative accuracy near 0), else
  // 1 - 2 / (exp(2|x|) + 1) with the sign of x.
  template <int U>
  static void tanh(reg (&x)[U]) {
    using namespace act_poly;
    reg e[U], small[U];
    each<U>([&](int u) {
      const reg ax = V::abs(x[u]);
      e[u] = V::add(ax, ax);
    });
    exp(e);
    each<U>([&](int u) {
      const reg z = V::mul(x[u], x[u]);
      reg p = V::set1(kTanhQ[0]);
      for (int i = 1; i < 5; ++i) p = V::fmadd(p, z, V::set1(kTanhQ[i]));
      small[u] = V::fmadd(V::mul(x[u], z), p, x[u]);
    });
    each<U>([&](int u) { e[u] = V::add(e[u], V::set1(1.0f)); });
    recip(e);
    each<U>([&](int u) {
      const reg big = V::fnmadd(V::set1(2.0f), e[u], V::set1(1.0f));
      x[u] = V::select_lt(V::abs(x[u]), V::set1(kTanhSmall), small[u],
                          V::copysign(big, x[u]));
    });
  }
};

// U vectors of units from unit j (U * width lanes), or, with U = 1, the
// first m lanes of one vector (the partial tail).  The kernels below hand
// all U vectors to each Act function, which runs them stage by stage (see
// Act).  U = 4: tanh 1.4x, sigmoid 1.45x the rate of the same code written
// one vector after another; U = 8 runs out of registers and is slower.
template <class V, int U>
struct Lanes {
  using reg = typename V::reg;
  using Regs = reg[U];
  index_t j, m;  // m: lanes of the last vector (width unless the tail)

  void load(const float* p, Regs& r) const {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u)
      r[u] = u == U - 1 && m != V::width ? V::load_n(p + j + u * V::width, m)
                                         : V::load(p + j + u * V::width);
  }
  void store(float* p, const Regs& r) const {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      if (u == U - 1 && m != V::width)
        V::store_n(p + j + u * V::width, r[u], m);
      else
        V::store(p + j + u * V::width, r[u]);
    }
  }
  // r = a + b of the arrays at p and q.
  void load_sum(const float* p, const float* q, Regs& r) const {
    Regs s;
    load(p, r);
    load(q, s);
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) r[u] = V::add(r[u], s[u]);
  }
};

// fn(lanes) over units [0, n): 4 vectors at a time, then one, then the
// partial tail.
template <class V, class Fn>
inline void over_units(index_t n, Fn&& fn) {
  constexpr index_t W = V::width;
  index_t j = 0;
  for (; j + 4 * W <= n; j += 4 * W) fn(Lanes<V, 4>{j, W});
  for (; j + W <= n; j += W) fn(Lanes<V, 1>{j, W});
  if (j < n) fn(Lanes<V, 1>{j, n - j});
}

// The i-th of regs... stored at p + i*stride (the gate blocks of a cache).
template <class L, class... Regs>
inline void store_gates(const L& l, float* p, index_t stride,
                        const Regs&... regs) {
  index_t i = 0;
  (l.store(p + (i++) * stride, regs), ...);
}

// Contract: gates.h LstmForward (float).
template <class V>
void lstm_forward_simd(const LstmForward<float>& a) {
  using A = Act<V>;
  const index_t n = a.n, gs = a.gs;
  const float *x = a.a_x, *h = a.a_h;
  float* g = a.gates;
  over_units<V>(n, [&](const auto& l) {
    using Regs = typename std::remove_reference_t<decltype(l)>::Regs;
    Regs i, f, gg, o, c, out;
    l.load_sum(x, h, i);
    A::sigmoid(i);
    l.load_sum(x + n, h + n, f);
    A::sigmoid(f);
    l.load_sum(x + 2 * n, h + 2 * n, gg);
    A::tanh(gg);
    l.load_sum(x + 3 * n, h + 3 * n, o);
    A::sigmoid(o);
    l.load(a.c, c);
    for (std::size_t u = 0; u < std::size(c); ++u)
      c[u] = V::fmadd(f[u], c[u], V::mul(i[u], gg[u]));
    for (std::size_t u = 0; u < std::size(c); ++u) out[u] = c[u];
    A::tanh(out);
    for (std::size_t u = 0; u < std::size(c); ++u) out[u] = V::mul(o[u], out[u]);
    l.store(a.c, c);
    l.store(a.out, out);
    if (a.c_new) l.store(a.c_new, c);
    if (a.out2) l.store(a.out2, out);
    if (g) store_gates(l, g, gs, i, f, gg, o);
  });
}

// Contract: gates.h GruForward (float).  n = tanh(a_x_n + r * (a_h_n +
// b_hn)) (reset_after; b_hn may be null) or tanh(a_x_n + a_h_n) (reset
// before, hn = r*h given); h' = (1 - z) n + z h.
template <class V>
void gru_forward_simd(const GruForward<float>& a) {
  using A = Act<V>;
  const index_t n = a.n, gs = a.gs;
  const float *x = a.a_x, *h = a.a_h;
  float* g = a.gates;
  const float* bn = a.reset_after ? a.b_hn : a.rh;
  over_units<V>(n, [&](const auto& l) {
    using Regs = typename std::remove_reference_t<decltype(l)>::Regs;
    Regs r, z, hn, nn, hp, out;
    l.load_sum(x, h, r);
    A::sigmoid(r);
    l.load_sum(x + n, h + n, z);
    A::sigmoid(z);
    if (bn)
      l.load(bn, hn);
    else
      for (auto& v : hn) v = V::zero();
    if (a.reset_after) {
      Regs hh, xn;
      l.load(h + 2 * n, hh);
      l.load(x + 2 * n, xn);
      for (std::size_t u = 0; u < std::size(r); ++u) {
        hn[u] = V::add(hh[u], hn[u]);
        nn[u] = V::fmadd(r[u], hn[u], xn[u]);
      }
    } else {
      l.load_sum(x + 2 * n, h + 2 * n, nn);
    }
    A::tanh(nn);
    l.load(a.h, hp);
    for (std::size_t u = 0; u < std::size(r); ++u)
      out[u] = V::fmadd(V::sub(V::set1(1.0f), z[u]), nn[u], V::mul(z[u], hp[u]));
    l.store(a.h_new, out);
    if (a.out2) l.store(a.out2, out);
    if (g) store_gates(l, g, gs, r, z, nn);
    if (a.hn) l.store(a.hn, hn);
  });
}

// Contract: gates.h DenseForward (float), tanh only (relu stays in the
// plain loops).
template <class V>
void dense_forward_simd(const DenseForward<float>& a) {
  using A = Act<V>;
  over_units<V>(a.n, [&](const auto& l) {
    using Regs = typename std::remove_reference_t<decltype(l)>::Regs;
    Regs v;
    l.load_sum(a.a_x, a.a_h, v);
    A::tanh(v);
    l.store(a.h_new, v);
    if (a.out2) l.store(a.out2, v);
  });
}

}  // namespace
}  // namespace rnncore::kernels

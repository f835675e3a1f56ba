// The point-wise gate kernels, written once as plain loops and compiled once
// per instruction set (gates_<isa>.cpp include this file inside an anonymous
// namespace, with their own -m flags), so the compiler vectorises each for
// its ISA.  On AVX2 and AVX-512 the float forward kernels are replaced by
// the intrinsics of activations_simd.h (same functions, a few ulp apart).  The loops are branch-free and call only the inline activations
// below, which are arithmetic and bit operations the vectoriser handles.
//
// float: exp is a degree-6 polynomial on [-ln2/2, ln2/2] times 2^k (about
// 2 ulp); sigmoid = 1/(1+exp(-x)); tanh is an odd polynomial for |x| < 0.625
// and 1 - 2/(exp(2|x|)+1) beyond, so small arguments keep their relative
// accuracy.  Errors stay below 1e-6 absolute, well inside the 1e-5 parity
// with PyTorch.  double: the C library's exp and tanh (full precision).
//
// Requires, before the including namespace opens: gates.h, <cmath>,
// <cstdint>, <cstring>, and RNNCORE_RESTRICT defined.

namespace act {

using namespace act_poly;

inline float exp(float x) {
  x = x < kExpLo ? kExpLo : (x > kExpHi ? kExpHi : x);  // NaN stays NaN
  // The exponent comes from a copy in which NaN is kExpLo too, so the
  // integer conversion and shift below are always defined; r and p still
  // carry the NaN to the result.
  const float xk = x > kExpLo ? x : kExpLo;
  const float k = std::nearbyint(xk * kLog2e);
  const float r = (x - k * kLn2Hi) + k * kLn2Lo;
  float p = kExpP[0];
  for (int i = 1; i < 6; ++i) p = p * r + kExpP[i];
  p = p * r * r + r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

inline float tanh(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float p = kTanhQ[0];
  for (int i = 1; i < 5; ++i) p = p * z + kTanhQ[i];
  const float small = x + x * z * p;
  const float big = std::copysign(1.0f - 2.0f / (exp(2.0f * ax) + 1.0f), x);
  return ax < kTanhSmall ? small : big;
}

inline double exp(double x) { return std::exp(x); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh(double x) { return std::tanh(x); }

}  // namespace act

// Each loop is a function whose every array is its own restrict parameter:
// GCC vectorises that form, not loops over one pointer with gate offsets or
// over restrict locals.
#define R RNNCORE_RESTRICT

// c' = f*c + i*g, out = o*tanh(c'); the gates are stored when kTrain.
template <typename T, bool kTrain>
void lstm_forward_loop(index_t n, const T* R xi, const T* R xf, const T* R xg,
                       const T* R xo, const T* R hi, const T* R hf,
                       const T* R hg, const T* R ho, T* R c, T* R out,
                       T* R gi, T* R gf, T* R gg, T* R go) {
  for (index_t j = 0; j < n; ++j) {
    const T i = act::sigmoid(xi[j] + hi[j]);
    const T f = act::sigmoid(xf[j] + hf[j]);
    const T g = act::tanh(xg[j] + hg[j]);
    const T o = act::sigmoid(xo[j] + ho[j]);
    const T cn = f * c[j] + i * g;
    c[j] = cn;
    out[j] = o * act::tanh(cn);
    if constexpr (kTrain) {
      gi[j] = i;
      gf[j] = f;
      gg[j] = g;
      go[j] = o;
    }
  }
}

template <typename T>
void lstm_forward(const LstmForward<T>& a) {
  const index_t n = a.n, gs = a.gs;
  const T *x = a.a_x, *h = a.a_h;
  T* g = a.gates;
  if (g)
    lstm_forward_loop<T, true>(n, x, x + n, x + 2 * n, x + 3 * n, h,
                               h + n, h + 2 * n, h + 3 * n, a.c, a.out, g,
                               g + gs, g + 2 * gs, g + 3 * gs);
  else
    lstm_forward_loop<T, false>(n, x, x + n, x + 2 * n, x + 3 * n, h,
                                h + n, h + 2 * n, h + 3 * n, a.c, a.out,
                                nullptr, nullptr, nullptr, nullptr);
  if (a.c_new) std::memcpy(a.c_new, a.c, sizeof(T) * n);
  if (a.out2) std::memcpy(a.out2, a.out, sizeof(T) * n);
}

// dh' (+ dy) -> pre-activation gradients d* of i, f, g, o; dc' -> dc.
template <typename T, bool kDy>
void lstm_backward_loop(index_t n, const T* R gi, const T* R gf,
                        const T* R gg, const T* R go, const T* R cp,
                        const T* R cn, const T* R dh, const T* R dy, T* R dc,
                        T* R di, T* R df, T* R dg, T* R dout) {
  for (index_t j = 0; j < n; ++j) {
    const T i = gi[j], f = gf[j], g = gg[j], o = go[j];
    const T dhj = kDy ? dh[j] + dy[j] : dh[j];
    const T tc = act::tanh(cn[j]);
    const T dcj = dc[j] + dhj * o * (T(1) - tc * tc);
    di[j] = dcj * g * i * (T(1) - i);
    df[j] = dcj * cp[j] * f * (T(1) - f);
    dg[j] = dcj * i * (T(1) - g * g);
    dout[j] = dhj * tc * o * (T(1) - o);
    dc[j] = dcj * f;
  }
}

template <typename T>
void lstm_backward(const LstmBackward<T>& a) {
  const index_t n = a.n, gs = a.gs;
  const T* g = a.gates;
  T* ds = a.ds;
  if (a.dy)
    lstm_backward_loop<T, true>(n, g, g + gs, g + 2 * gs, g + 3 * gs,
                                a.c_prev, a.c_new, a.dh, a.dy, a.dc, ds,
                                ds + gs, ds + 2 * gs, ds + 3 * gs);
  else
    lstm_backward_loop<T, false>(n, g, g + gs, g + 2 * gs, g + 3 * gs,
                                 a.c_prev, a.c_new, a.dh, nullptr, a.dc, ds,
                                 ds + gs, ds + 2 * gs, ds + 3 * gs);
  for (index_t k = 0; a.dg && k < 4; ++k)
    std::memcpy(a.dg + k * gs, ds + k * gs, sizeof(T) * n);
}

// reset_after: hn = W_hn h + b_hn (hh + bn), n = tanh(xn + r*hn);
// reset before: hn = r*h (given in bn's place), n = tanh(xn + hh).
template <typename T, bool kTrain, bool kResetAfter, bool kBn>
void gru_forward_loop(index_t n, const T* R xr, const T* R xz, const T* R xn,
                      const T* R hr, const T* R hz, const T* R hh,
                      const T* R bn, const T* R h, T* R h_new, T* R gr,
                      T* R gz, T* R gn, T* R hn_out) {
  for (index_t j = 0; j < n; ++j) {
    const T r = act::sigmoid(xr[j] + hr[j]);
    const T z = act::sigmoid(xz[j] + hz[j]);
    const T b = kBn ? bn[j] : T(0);
    const T hn = kResetAfter ? hh[j] + b : b;
    const T nn = act::tanh(xn[j] + (kResetAfter ? r * hn : hh[j]));
    h_new[j] = (T(1) - z) * nn + z * h[j];
    if constexpr (kTrain) {
      gr[j] = r;
      gz[j] = z;
      gn[j] = nn;
      hn_out[j] = hn;
    }
  }
}

template <typename T, bool kTrain, bool kBn>
void gru_forward_variant(const GruForward<T>& a, const T* bn) {
  const index_t n = a.n, gs = a.gs;
  const T *x = a.a_x, *h = a.a_h;
  T* g = a.gates;
  T *g0 = nullptr, *g1 = nullptr, *g2 = nullptr;
  if (kTrain) g0 = g, g1 = g + gs, g2 = g + 2 * gs;
  if (a.reset_after)
    gru_forward_loop<T, kTrain, true, kBn>(n, x, x + n, x + 2 * n, h, h + n,
                                           h + 2 * n, bn, a.h, a.h_new, g0,
                                           g1, g2, a.hn);
  else
    gru_forward_loop<T, kTrain, false, kBn>(n, x, x + n, x + 2 * n, h, h + n,
                                            h + 2 * n, bn, a.h, a.h_new, g0,
                                            g1, g2, a.hn);
}

// bn: b_hn, or r*h (reset before); absent (reset_after without bias) it is
// read as zeros without being stored anywhere: nothing is allocated inside
// a time loop.
template <typename T>
void gru_forward(const GruForward<T>& a) {
  const T* bn = a.reset_after ? a.b_hn : a.rh;
  if (a.gates)
    bn ? gru_forward_variant<T, true, true>(a, bn)
       : gru_forward_variant<T, true, false>(a, a.a_h);
  else
    bn ? gru_forward_variant<T, false, true>(a, bn)
       : gru_forward_variant<T, false, false>(a, a.a_h);
  if (a.out2) std::memcpy(a.out2, a.h_new, sizeof(T) * a.n);
}

// dh' (+ dy) -> gradients of the input side (x*) and recurrent side (s*);
// dh <- z*dh'.  Reset before leaves r's gradients to the caller.
template <typename T, bool kResetAfter, bool kDy>
void gru_backward_loop(index_t n, const T* R gr, const T* R gz,
                       const T* R gn, const T* R hn, const T* R hp,
                       const T* R dy, T* R dh, T* R sr, T* R sz, T* R sn,
                       T* R xr, T* R xz, T* R xn) {
  for (index_t j = 0; j < n; ++j) {
    const T r = gr[j], z = gz[j], nn = gn[j];
    const T dhj = kDy ? dh[j] + dy[j] : dh[j];
    const T dn = dhj * (T(1) - z) * (T(1) - nn * nn);
    const T dz = dhj * (hp[j] - nn) * z * (T(1) - z);
    xz[j] = dz;
    sz[j] = dz;
    xn[j] = dn;
    dh[j] = dhj * z;
    if constexpr (kResetAfter) {
      const T dr = dn * hn[j] * r * (T(1) - r);
      xr[j] = dr;
      sr[j] = dr;
      sn[j] = dn * r;
    } else {
      sn[j] = dn;
    }
  }
}

template <typename T, bool kResetAfter>
void gru_backward_variant(const GruBackward<T>& a) {
  const index_t n = a.n, gs = a.gs;
  const T* g = a.gates;
  T *s = a.ds, *x = a.dgx;
  if (a.dy)
    gru_backward_loop<T, kResetAfter, true>(
        n, g, g + gs, g + 2 * gs, a.hn, a.h_prev, a.dy, a.dh, s, s + gs,
        s + 2 * gs, x, x + gs, x + 2 * gs);
  else
    gru_backward_loop<T, kResetAfter, false>(
        n, g, g + gs, g + 2 * gs, a.hn, a.h_prev, nullptr, a.dh, s, s + gs,
        s + 2 * gs, x, x + gs, x + 2 * gs);
}

template <typename T>
void gru_backward(const GruBackward<T>& a) {
  if (a.reset_after)
    gru_backward_variant<T, true>(a);
  else
    gru_backward_variant<T, false>(a);
}

template <typename T, bool kRelu>
void dense_forward_loop(index_t n, const T* R ax, const T* R ah, T* R h) {
  for (index_t j = 0; j < n; ++j) {
    const T v = ax[j] + ah[j];
    h[j] = kRelu ? (v < T(0) ? T(0) : v) : act::tanh(v);  // NaN stays NaN
  }
}

template <typename T>
void dense_forward(const DenseForward<T>& a) {
  if (a.relu)
    dense_forward_loop<T, true>(a.n, a.a_x, a.a_h, a.h_new);
  else
    dense_forward_loop<T, false>(a.n, a.a_x, a.a_h, a.h_new);
  if (a.out2) std::memcpy(a.out2, a.h_new, sizeof(T) * a.n);
}

template <typename T, bool kRelu, bool kDy>
void dense_backward_loop(index_t n, const T* R h, const T* R dy, T* R dh,
                         T* R ds) {
  for (index_t j = 0; j < n; ++j) {
    const T dhj = kDy ? dh[j] + dy[j] : dh[j];
    const T grad = kRelu ? (h[j] > T(0) ? T(1) : T(0)) : T(1) - h[j] * h[j];
    ds[j] = dhj * grad;
    dh[j] = T(0);
  }
}

template <typename T>
void dense_backward(const DenseBackward<T>& a) {
  if (a.relu)
    a.dy ? dense_backward_loop<T, true, true>(a.n, a.h_new, a.dy, a.dh, a.ds)
         : dense_backward_loop<T, true, false>(a.n, a.h_new, a.dy, a.dh, a.ds);
  else
    a.dy ? dense_backward_loop<T, false, true>(a.n, a.h_new, a.dy, a.dh, a.ds)
         : dense_backward_loop<T, false, false>(a.n, a.h_new, a.dy, a.dh, a.ds);
  if (a.dg) std::memcpy(a.dg, a.ds, sizeof(T) * a.n);
}

template <typename T>
void sigmoid_mul_loop(index_t n, const T* R a, const T* R b, const T* R m,
                      T* R out) {
  for (index_t j = 0; j < n; ++j) out[j] = act::sigmoid(a[j] + b[j]) * m[j];
}

template <typename T>
void sigmoid_mul(index_t n, const T* a, const T* b, const T* m, T* out) {
  sigmoid_mul_loop(n, a, b, m, out);
}

#undef R

template <typename T>
GateKernels<T> gate_kernels_of() {
  return {&lstm_forward<T>, &lstm_backward<T>, &gru_forward<T>,
          &gru_backward<T>, &dense_forward<T>, &dense_backward<T>,
          &sigmoid_mul<T>};
}

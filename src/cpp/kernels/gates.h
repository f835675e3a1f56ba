// The point-wise stage of every cell: one sequence's share of hidden units
// at one time step, forward or backward, fused into one pass.
//
// Each function takes an argument struct whose pointers the caller has
// already offset to the first unit of the share; `n` is the number of units.
// Gate blocks inside a [.., G*H] row (the cache's gates, the gradients) are
// `gs` apart (gs = H: gate g of unit j at g*H + j); in the per-thread input
// projections a_x and recurrent products a_h they are `n` apart.
// Optional outputs are null when not wanted (inference keeps no cache).
//
// The functions live in src/cpp/kernels/gates_<isa>.cpp, one translation unit
// per instruction set, all compiled from gates_impl.h, each filling its part
// of the kernel table (kernel_table.h); the cells take them from
// dispatch::active().gates<T>().
#pragma once

#include "rnncore/common.h"

namespace rnncore::kernels {

// The float activations' constants, one copy for both implementations
// (gates_impl.h's act:: and activations_simd.h's Act<V>).  exp(x) for x
// clamped to [kExpLo, kExpHi]: k = round(x log2 e), r = x - k ln2 (ln2 in
// two parts), exp = (1 + r + r^2 P(r)) 2^k, P of degree 5 (kExpP, highest
// first); tanh(x) = x + x z Q(z), z = x^2, below kTanhSmall (kTanhQ).
namespace act_poly {
inline constexpr float kExpLo = -87.0f, kExpHi = 88.0f;
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f, kLn2Lo = 2.12194440e-4f;
inline constexpr float kExpP[6] = {1.9875691500e-4f, 1.3981999507e-3f,
                                   8.3334519073e-3f, 4.1665795894e-2f,
                                   1.6666665459e-1f, 5.0000001201e-1f};
inline constexpr float kTanhQ[5] = {-5.70498872745e-3f, 2.06390887954e-2f,
                                    -5.37397155531e-2f, 1.33314422036e-1f,
                                    -3.33332819422e-1f};
inline constexpr float kTanhSmall = 0.625f;
}  // namespace act_poly

template <typename T>
struct LstmForward {
  index_t n, gs;
  const T* a_x;   // [4, n] input-side pre-activations (biases included)
  const T* a_h;   // [4, n] recurrent products
  T* c;           // [n] cell state, updated in place
  T* out;         // [n] o*tanh(c')
  T* out2;        // [n] a second copy of out, or null
  T* gates;       // [4, gs] i, f, g, o, or null
  T* c_new;       // [n] c after the step, or null
};

template <typename T>
struct LstmBackward {
  index_t n, gs;
  const T* gates;   // [4, gs] i, f, g, o
  const T* c_prev;  // [n]
  const T* c_new;   // [n]
  const T* dh;      // [n] gradient reaching o*tanh(c')
  const T* dy;      // [n] added to dh, or null
  T* dc;            // [n] in: reaching c', out: reaching c
  T* ds;            // [4, gs] pre-activation gradients
  T* dg;            // [4, gs] a second copy of ds, or null
};

// reset_after: n = tanh(a_x_n + r*hn), hn = a_h_n + b_hn;
// reset before: n = tanh(a_x_n + a_h_n), a_h_n = W_hn (r*h), hn = r*h given.
template <typename T>
struct GruForward {
  index_t n, gs;
  bool reset_after;
  const T* a_x;   // [3, n]
  const T* a_h;   // [3, n]
  const T* b_hn;  // [n] or null (reset_after only)
  const T* rh;    // [n] r*h (reset before only)
  const T* h;     // [n] state before the step
  T* h_new;       // [n]
  T* out2;        // [n] or null
  T* gates;       // [3, gs] r, z, n, or null
  T* hn;          // [n] the hn above, or null
};

template <typename T>
struct GruBackward {
  index_t n, gs;
  bool reset_after;
  const T* gates;   // [3, gs] r, z, n
  const T* hn;      // [n]
  const T* h_prev;  // [n]
  T* dh;            // [n] in: reaching h', out: the direct part z*dh'
  const T* dy;      // [n] added to dh, or null
  T* ds;            // [3, gs] recurrent-side gradients (r left alone when
                    // reset before: it needs d(r*h) first)
  T* dgx;           // [3, gs] input-side gradients (likewise)
};

template <typename T>
struct DenseForward {
  index_t n;
  bool relu;
  const T* a_x;  // [n]
  const T* a_h;  // [n]
  T* h_new;      // [n]
  T* out2;       // [n] or null
};

template <typename T>
struct DenseBackward {
  index_t n;
  bool relu;
  const T* h_new;  // [n] activation output
  T* dh;           // [n] in: reaching h', out: 0
  const T* dy;     // [n] or null
  T* ds;           // [n]
  T* dg;           // [n] a second copy of ds, or null
};

template <typename T>
struct GateKernels {
  void (*lstm_forward)(const LstmForward<T>&);
  void (*lstm_backward)(const LstmBackward<T>&);
  void (*gru_forward)(const GruForward<T>&);
  void (*gru_backward)(const GruBackward<T>&);
  void (*dense_forward)(const DenseForward<T>&);
  void (*dense_backward)(const DenseBackward<T>&);
  // out[j] = sigmoid(a[j] + b[j]) * m[j]  (GRU reset before: r*h)
  void (*sigmoid_mul)(index_t n, const T* a, const T* b, const T* m, T* out);
};

}  // namespace rnncore::kernels

// Shapes and the time schedule shared by every recurrent cell.
//
// Conventions (binding for every kernel, see DESIGN.md section 2):
//   sizes   T (time steps), B (batch), I (input features), H (hidden units),
//           P (state and output width: H, or an LSTM's projection size),
//           G (gates: LSTM 4 = i,f,g,o; GRU 3 = r,z,n; dense 1)
//   layout  time-major and C-contiguous: x [T,B,I], y [T,B,P], h [B,P];
//           the row of (t, b) in any [T,B,*] array is t*B + b.
//   lengths [B], any order, 1 <= lengths[b] <= T, or nullptr for "all T".
#pragma once

#include <algorithm>
#include <cstdint>

namespace rnncore {

using index_t = std::int64_t;

// P is the width of the recurrent state h and of the output y: H, except for
// an LSTM with a projection (h = W_hr (o * tanh(c)), P = rows of W_hr).
struct Dims {
  index_t T = 0, B = 0, I = 0, H = 0, P = 0;
};

// Which time step each sequence reads at loop step s.  Sequence b is active
// for s < lengths[b]; forward it reads t = s, reverse it reads
// t = lengths[b] - 1 - s, so a reversed sequence starts at its own last step.
struct Schedule {
  Dims d;
  const index_t* lengths = nullptr;  // [B] or nullptr
  bool reverse = false;

  index_t length(index_t b) const { return lengths ? lengths[b] : d.T; }
  index_t steps() const {
    if (!lengths) return d.T;
    return *std::max_element(lengths, lengths + d.B);
  }
  bool active(index_t s, index_t b) const { return s < length(b); }
  index_t time(index_t s, index_t b) const {
    return reverse ? length(b) - 1 - s : s;
  }
  // Row of [T,B,*] arrays that sequence b touches at step s.
  index_t row(index_t s, index_t b) const { return time(s, b) * d.B + b; }
};

template <typename T>
class PackStore;  // rnncore/packed.h

// The parameter arrays of one layer and direction, PyTorch's shapes:
// W_ih [G*H,I], W_hh [G*H,P], b_ih [G*H], b_hh [G*H], W_hr [P,H] (LSTM
// projection only); biases and W_hr may be null.  packs: null, or where a
// forward pass finds these weights already packed (and packs them the
// first time): the arrays must then stay unchanged as long as it lives.
template <typename T>
struct CellWeights {
  const T* W_ih = nullptr;
  const T* W_hh = nullptr;
  const T* b_ih = nullptr;
  const T* b_hh = nullptr;
  const T* W_hr = nullptr;
  const PackStore<T>* packs = nullptr;
};

// Gradients of the same four arrays; db_* are null when the layer has no bias.
// Every non-null array is overwritten (not accumulated into).
template <typename T>
struct CellGrads {
  T* dW_ih = nullptr;
  T* dW_hh = nullptr;
  T* db_ih = nullptr;
  T* db_hh = nullptr;
  T* dW_hr = nullptr;
};

}  // namespace rnncore

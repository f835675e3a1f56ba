// PackedWeights: one layer's (one direction's) weights copied and frozen,
// with the store of their packed panels (rnncore/packed.h), so that
// repeated inference calls pack nothing.  The forward bindings take one
// as `packed` in place of the weight arrays.
#pragma once

#include <memory>
#include <string>

#include "bindings/checks.h"

namespace rnncore::bindings {

struct PackedWeights {
  std::string cell;  // "lstm", "gru" or "rnn"
  Dims d;            // I, H, P (T and B 0)
  py::array W_ih, W_hh;
  py::object b_ih, b_hh, W_hr;  // None or arrays
  std::unique_ptr<PackStore<float>> packs32;
  std::unique_ptr<PackStore<double>> packs64;

  bool float32() const { return is_float32(W_hh); }
  std::size_t packed_bytes() const {
    return packs32 ? packs32->nbytes() : packs64->nbytes();
  }
};

// The weights a forward call runs with: its own arguments, or a
// PackedWeights' frozen copies when `packed` is not None (then the weight
// arguments must be None and keep_cache false).
struct WeightArgs {
  py::handle W_ih, W_hh, b_ih, b_hh, W_hr;
  const PackedWeights* packed = nullptr;

  // in's weights are the packed ones: their store goes with them.
  void attach(SeqInputs& in) const {
    if (!packed) return;
    in.packs32 = packed->packs32.get();
    in.packs64 = packed->packs64.get();
  }
};

inline WeightArgs weight_args(const char* fn, const char* cell,
                              py::handle packed, py::handle W_ih,
                              py::handle W_hh, py::handle b_ih,
                              py::handle b_hh, py::handle W_hr,
                              bool keep_cache) {
  if (packed.is_none()) return {W_ih, W_hh, b_ih, b_hh, W_hr, nullptr};
  if (!py::isinstance<PackedWeights>(packed))
    fail_type(std::string(fn) + ": packed must be a PackedWeights (from "
              "rnncore.functional.PrepackedLSTM/PrepackedGRU/PrepackedRNN) or None, got " +
              py::str(py::type::of(packed)).cast<std::string>());
  const PackedWeights& p = packed.cast<const PackedWeights&>();
  if (p.cell != cell)
    fail_value(std::string(fn) + ": packed holds " + p.cell +
               " weights, not " + cell);
  for (py::handle h : {W_ih, W_hh, b_ih, b_hh, W_hr})
    if (!h.is_none())
      fail_value(std::string(fn) +
                 ": pass the weights or packed, not both (the weight "
                 "arguments must be None with packed)");
  if (keep_cache)
    fail_value(std::string(fn) +
               ": packed weights run inference only (keep_cache must be "
               "False)");
  return {p.W_ih, p.W_hh, p.b_ih, p.b_hh, p.W_hr, &p};
}

}  // namespace rnncore::bindings

// PackedWeights: construction (the checks of a forward pass's weights, then
// frozen copies) and what Python may read of it.
#include "bindings/packed.h"

namespace rnncore::bindings {
namespace {

index_t gates_of(const std::string& cell) {
  if (cell == "lstm") return 4;
  if (cell == "gru") return 3;
  if (cell == "rnn") return 1;
  fail_value("PackedWeights: cell must be 'lstm', 'gru' or 'rnn', got '" +
             cell + "'");
}

// A C-contiguous copy nobody can write to.
py::array frozen(const py::array& a) {
  py::array c = py::module_::import("numpy").attr("array")(a, py::arg("copy") = true);
  c.attr("flags").attr("writeable") = false;
  return c;
}
py::object frozen(const std::optional<py::array>& a) {
  return a ? py::object(frozen(*a)) : py::object(py::none());
}

std::unique_ptr<PackedWeights> make(const std::string& cell, py::handle W_ih,
                                    py::handle W_hh, py::handle b_ih,
                                    py::handle b_hh, py::handle W_hr,
                                    const std::string& fn) {
  auto p = std::make_unique<PackedWeights>();
  p->cell = cell;
  if (cell != "lstm" && !W_hr.is_none())
    fail_value(fn + ": weight_hr (a projection) exists for the LSTM only");
  SeqInputs in;
  in.dtype = require_float(W_hh, {fn.c_str(), "weight_hh"}, std::nullopt,
                           {-1, -1}, "[G*H, H]").dtype();
  in.d.I = -1;
  parse_weights(fn.c_str(), gates_of(cell), in, W_ih, W_hh, b_ih, b_hh, W_hr);
  p->d = in.d;
  p->W_ih = frozen(in.W_ih);
  p->W_hh = frozen(in.W_hh);
  p->b_ih = frozen(in.b_ih);
  p->b_hh = frozen(in.b_hh);
  p->W_hr = frozen(in.W_hr);
  if (p->float32())
    p->packs32 = std::make_unique<PackStore<float>>();
  else
    p->packs64 = std::make_unique<PackStore<double>>();
  return p;
}

}  // namespace

void register_packed(py::module_& m) {
  py::class_<PackedWeights>(m, "PackedWeights")
      .def(py::init(&make), py::arg("cell"), py::arg("weight_ih"),
           py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"),
           py::arg("weight_hr"), py::arg("fn"))
      .def_readonly("cell", &PackedWeights::cell)
      .def_property_readonly("input_size", [](const PackedWeights& p) { return p.d.I; })
      .def_property_readonly("hidden_size", [](const PackedWeights& p) { return p.d.H; })
      .def_property_readonly("proj_size", [](const PackedWeights& p) {
        return p.W_hr.is_none() ? index_t(0) : p.d.P;
      })
      .def_property_readonly("dtype", [](const PackedWeights& p) { return p.W_hh.dtype(); })
      .def_readonly("weight_ih", &PackedWeights::W_ih)
      .def_readonly("weight_hh", &PackedWeights::W_hh)
      .def_readonly("bias_ih", &PackedWeights::b_ih)
      .def_readonly("bias_hh", &PackedWeights::b_hh)
      .def_readonly("weight_hr", &PackedWeights::W_hr)
      .def_property_readonly("packed_bytes", &PackedWeights::packed_bytes)
      .def_property_readonly("packings", [](const PackedWeights& p) {
        return p.packs32 ? p.packs32->size() : p.packs64->size();
      });
}

}  // namespace rnncore::bindings

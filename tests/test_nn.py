"""rnncore.nn: every backward against float64 central finite differences,
initialisation, modes, the Module protocol (dotted names, duck-typed
children, state dicts) and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import nn

ACTIVATIONS = ["relu", "tanh", "sigmoid", "identity", "gelu"]


def numerical_grad(loss, arr, eps=1e-6):
    """Central differences of the scalar ``loss()`` with respect to ``arr`` (perturbed in place)."""
    grad = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        saved = arr[idx]
        arr[idx] = saved + eps
        plus = loss()
        arr[idx] = saved - eps
        minus = loss()
        arr[idx] = saved
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def assert_matches_fd(module, x, *, seed=0):
    """dx and every parameter gradient of ``sum(module(x) * r)`` equal finite differences."""
    r = np.random.default_rng(seed).standard_normal(module(x).shape)

    def loss():
        return float((module(x) * r).sum())

    module.zero_grad()
    module(x)
    dx = module.backward(r)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8, err_msg="dx")
    for name, p in module.params.items():
        np.testing.assert_allclose(module.grads[name], numerical_grad(loss, p), rtol=1e-6, atol=1e-8, err_msg=name)


# --------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(rng, bias):
    layer = nn.Linear(4, 3, bias, dtype="float64", seed=0)
    assert_matches_fd(layer, rng.standard_normal((2, 3, 4)))  # any leading dims


def test_linear_backward_accumulates(rng):
    layer = nn.Linear(3, 2, dtype=np.float64, seed=0)
    x = rng.standard_normal((5, 3))
    layer(x)
    layer.backward(np.ones((5, 2)))
    once = {name: g.copy() for name, g in layer.grads.items()}
    layer.backward(np.ones((5, 2)))
    for name, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[name])
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads.values())


def test_embedding_gradient_and_padding(rng):
    embed = nn.Embedding(6, 3, padding_idx=-1, dtype="float64", seed=0)
    assert embed.padding_idx == 5 and not embed.params["weight"][5].any()
    indices = np.array([[0, 2, 2], [5, 1, 2]])
    r = rng.standard_normal((2, 3, 3))

    def loss():
        return float((embed(indices) * r).sum())

    embed(indices)
    assert embed.backward(r) is None
    expected = numerical_grad(loss, embed.params["weight"])
    expected[5] = 0  # the padding row gets no gradient
    np.testing.assert_allclose(embed.grads["weight"], expected, rtol=1e-6, atol=1e-8)
    assert embed.grads["weight"][2].any() and not embed.grads["weight"][3:].any()


def test_dropout_gradient_with_fixed_mask(rng):
    x = rng.standard_normal((4, 5))
    r = rng.standard_normal((4, 5))

    def loss():  # a fresh generator with the same seed: the same mask at every evaluation
        return float((nn.Dropout(0.4, seed=3)(x) * r).sum())

    drop = nn.Dropout(0.4, seed=3)
    y = drop(x)
    np.testing.assert_allclose(drop.backward(r), numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.6)
    assert 0 < kept.sum() < kept.size


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_gradients_each_activation(rng, activation):
    mlp = nn.MLP([3, 5, 4, 2], activation, output_activation=activation, dtype="float64", seed=0)
    assert_matches_fd(mlp, rng.standard_normal((2, 4, 3)))


def test_gelu_is_torchs_tanh_approximation(torch, rng):
    x = rng.standard_normal(50) * 3
    expected = torch.nn.functional.gelu(torch.from_numpy(x), approximate="tanh").numpy()
    np.testing.assert_allclose(nn.Activation("gelu")(x), expected, rtol=1e-12, atol=1e-14)


def test_mlp_with_dropout_layers_and_eval(rng):
    mlp = nn.MLP([3, 8, 8, 2], "tanh", dropout=0.5, dtype="float64", seed=0)
    kinds = [type(layer).__name__ for layer in mlp.layers]
    assert kinds == ["Linear", "Activation", "Dropout", "Linear", "Activation", "Dropout", "Linear"]
    assert list(mlp.params) == [f"layers.{k}.{p}" for k in (0, 3, 6) for p in ("weight", "bias")]
    x = rng.standard_normal((10, 3))
    assert not np.array_equal(mlp(x), mlp(x))  # fresh masks in training
    mlp.eval()
    assert not any(layer.training for layer in mlp.layers)
    np.testing.assert_array_equal(mlp(x), mlp(x))
    assert_matches_fd(mlp, x)  # no dropout in eval mode


# --------------------------------------------------------------------------
# Initialisation, dtypes, forward semantics
# --------------------------------------------------------------------------


def test_linear_init_like_pytorch_and_reproducible():
    a = nn.Linear(64, 32, seed=7)
    b = nn.Linear(64, 32, dtype="float64", seed=7)
    bound = 1 / np.sqrt(64)
    for name, p in a.params.items():
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.9 * bound  # spread over the whole interval
        np.testing.assert_array_equal(p, b.params[name].astype(np.float32))
    assert a.params["weight"].shape == (32, 64) and a.params["bias"].shape == (32,)
    assert not np.array_equal(a.params["weight"], nn.Linear(64, 32, seed=8).params["weight"])


def test_linear_matches_torch(torch, rng):
    layer = nn.Linear(4, 3, seed=0)
    ref = torch.nn.Linear(4, 3)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(x), ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_init_and_lookup():
    embed = nn.Embedding(1000, 8, seed=0)
    w = embed.params["weight"]
    assert w.dtype == np.float32 and abs(w.std() - 1) < 0.05 and abs(w.mean()) < 0.05
    np.testing.assert_array_equal(embed(np.array([[3, 999]])), w[[[3, 999]]])


def test_dropout_modes_and_p_extremes(rng):
    x = rng.standard_normal((20, 30)).astype(np.float32)
    drop = nn.Dropout(0.3, seed=0)
    y = drop(x)
    assert y.dtype == np.float32 and 0.2 < (y == 0).mean() < 0.4
    np.testing.assert_array_equal(drop.backward(np.ones_like(x)), (y != 0) / np.float32(0.7))
    assert drop.eval()(x) is x
    np.testing.assert_array_equal(drop.backward(x), x)
    assert not nn.Dropout(1.0, seed=0)(x).any()
    assert nn.Dropout(0.0)(x) is x


def test_dropout_seed_reproducible(rng):
    x = rng.standard_normal((8, 8))
    np.testing.assert_array_equal(nn.Dropout(0.5, seed=1)(x), nn.Dropout(0.5, seed=1)(x))


def test_mlp_seed_reproducible_and_float32():
    a, b = nn.MLP([3, 4, 2], seed=5), nn.MLP([3, 4, 2], seed=5)
    for name, p in a.params.items():
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, b.params[name])
    assert a(np.ones((2, 3), np.float32)).dtype == np.float32


# --------------------------------------------------------------------------
# The Module protocol
# --------------------------------------------------------------------------


class FakeRecurrentLayer:
    """What the recurrent layers offer: params/grads dicts and the methods, no Module base."""

    def __init__(self):
        self.params = {"weight_ih_l0": np.ones((4, 2)), "bias_ih_l0": np.zeros(4)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.training = True

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        return {name: p.copy() for name, p in self.params.items()}

    def load_state_dict(self, state):
        for name, p in self.params.items():
            p[...] = state[name]


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = FakeRecurrentLayer()
        self.heads = [nn.Linear(4, 3, dtype="float64", seed=0), nn.MLP([3, 2], dtype="float64", seed=1)]
        self.drop = nn.Dropout(0.1)
        self.alias = self.heads[0]  # the same module again: counted once
        self.config = {"hidden": 4}  # not a module


def test_dotted_names_over_duck_typed_children():
    model = Seq2Seq()
    assert list(model.named_children()) == ["encoder", "heads.0", "heads.1", "drop"]
    assert list(model.params) == [
        "encoder.weight_ih_l0",
        "encoder.bias_ih_l0",
        "heads.0.weight",
        "heads.0.bias",
        "heads.1.layers.0.weight",
        "heads.1.layers.0.bias",
    ]
    assert list(model.grads) == list(model.params)
    assert model.params["encoder.weight_ih_l0"] is model.encoder.params["weight_ih_l0"]  # live arrays
    assert model.grads["heads.0.bias"] is model.heads[0].grads["bias"]


def test_zero_grad_and_modes_reach_every_child():
    model = Seq2Seq()
    for g in model.grads.values():
        g.fill(1)
    model.zero_grad()
    assert not any(g.any() for g in model.grads.values())
    assert model.eval() is model
    assert not model.training and not model.encoder.training and not model.drop.training
    assert not model.heads[1].layers[0].training
    model.train()
    assert model.encoder.training and model.drop.training


def test_state_dict_round_trip_in_place():
    model, other = Seq2Seq(), Seq2Seq()
    for p in other.params.values():
        p += 1.5
    arrays = model.params
    model.load_state_dict(other.state_dict())
    for name, p in model.params.items():
        assert p is arrays[name]  # loaded in place: optimizers keep their references
        np.testing.assert_array_equal(p, other.params[name])
    state = model.state_dict()
    state["heads.0.weight"][...] = 0  # a copy, not the live array
    assert model.params["heads.0.weight"].any()


def test_load_state_dict_reports_every_problem_and_loads_nothing():
    model = Seq2Seq()
    state = model.state_dict()
    before = {name: p.copy() for name, p in model.params.items()}
    del state["heads.0.bias"]
    state["extra.weight"] = np.zeros(2)
    state["heads.0.weight"] = np.zeros((4, 3))
    state["encoder.bias_ih_l0"] = np.zeros(4, np.float32)
    state["heads.1.layers.0.bias"] = [0.0, 0.0]
    state["encoder.weight_ih_l0"] += 5  # valid, but must not be loaded either
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    for part in [
        "missing: heads.0.bias",
        "unexpected: extra.weight",
        "heads.0.weight: expected shape (3, 4)",
        "encoder.bias_ih_l0: expected dtype float64",
        "heads.1.layers.0.bias: expected a numpy.ndarray",
    ]:
        assert part in message
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, before[name])


def test_add_module_and_shared_arrays():
    root = nn.Module()
    shared = nn.Linear(2, 2, seed=0)
    root.add_module("first", shared)
    inner = nn.Module()
    inner.add_module("again", shared)
    root.add_module("inner", inner)
    assert list(root.params) == ["first.weight", "first.bias"]  # each array once
    with pytest.raises(ValueError, match="name"):
        root.add_module("a.b", shared)
    with pytest.raises(TypeError, match="module"):
        root.add_module("c", object())


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_forward_argument_errors():
    layer = nn.Linear(3, 2, seed=0)
    with pytest.raises(TypeError, match="x must have dtype float32, got float64"):
        layer(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        layer([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 3\], got \(2, 4\)"):
        layer(np.zeros((2, 4), np.float32))
    layer(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 2\)"):
        layer.backward(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="dy must have dtype float32"):
        layer.backward(np.zeros((2, 2)))

    embed = nn.Embedding(4, 2, seed=0)
    with pytest.raises(TypeError, match="indices must be a numpy.ndarray of integers, got float64"):
        embed(np.zeros(3))
    with pytest.raises(ValueError, match=r"indices must be in \[0, 4\)"):
        embed(np.array([0, 4]))
    with pytest.raises(ValueError, match=r"indices must be in \[0, 4\)"):
        embed(np.array([-1]))
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        nn.Dropout(0.5)(np.zeros(3, np.int64))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: nn.Linear(0, 2), ValueError, "in_features must be >= 1"),
        (lambda: nn.Linear(2.0, 2), TypeError, "in_features must be an int"),
        (lambda: nn.Linear(2, 2, dtype="float16"), TypeError, "dtype must be float32 or float64"),
        (lambda: nn.Linear(2, 2, dtype="nonsense"), TypeError, "dtype must be float32 or float64"),
        (lambda: nn.Embedding(4, 2, padding_idx=4), ValueError, "padding_idx"),
        (lambda: nn.Embedding(4, 2, padding_idx=-5), ValueError, "padding_idx"),
        (lambda: nn.Dropout(1.5), ValueError, "p must be in"),
        (lambda: nn.Dropout("0.5"), TypeError, "p must be a real number"),
        (lambda: nn.Activation("swish"), ValueError, "name must be one of"),
        (lambda: nn.MLP([3]), ValueError, "sizes"),
        (lambda: nn.MLP([3, 0]), ValueError, r"sizes\[1\] must be >= 1"),
        (lambda: nn.MLP([3, 2], activation="soft"), ValueError, "activation must be one of"),
        (lambda: nn.MLP([3, 2], dropout=-0.1), ValueError, "dropout must be in"),
    ],
)
def test_constructor_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_backward_before_forward():
    for module in [nn.Linear(2, 2), nn.Embedding(2, 2), nn.Dropout(), nn.Activation("tanh")]:
        with pytest.raises(RuntimeError, match="backward called before forward"):
            module.backward(np.zeros((1, 2), np.float32))


def test_add_param_for_custom_leaf_modules():
    module = nn.Module()
    module.add_param("gain", np.ones(3))
    assert list(module.params) == ["gain"] and not module.grads["gain"].any()
    with pytest.raises(ValueError, match="name"):
        module.add_param("a.b", np.ones(3))
    with pytest.raises(TypeError, match="value must have dtype"):
        module.add_param("steps", np.ones(3, np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_takes_views_and_empty_batches_on_rnncores_gemm(dtype, rng):
    """Linear runs on rnncore's own GEMM: strided views give the results of
    their contiguous copies, an empty batch gives empty results, and the
    product matches NumPy's."""
    layer = nn.Linear(6, 5, dtype=dtype, seed=0)
    wide = rng.standard_normal((4, 3, 12)).astype(dtype)
    view = wide[:, :, ::2]
    y = layer(view)
    np.testing.assert_array_equal(y, layer(np.ascontiguousarray(view)))
    np.testing.assert_allclose(y, view @ layer.params["weight"].T + layer.params["bias"],
                               rtol=1e-5 if dtype == np.float32 else 1e-12)
    dy = rng.standard_normal(y.shape).astype(dtype)[:, ::-1]
    layer.zero_grad()
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, dy @ layer.params["weight"], rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(layer.grads["weight"], dy.reshape(-1, 5).T @ view.reshape(-1, 6),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)
    empty = layer(np.zeros((0, 6), dtype))
    assert empty.shape == (0, 5)
    assert layer.backward(np.zeros((0, 5), dtype)).shape == (0, 6)

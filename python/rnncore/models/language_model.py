"""Next-token prediction over a stream, with truncated BPTT: :class:`LanguageModel`."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .._grad_mode import no_grad
from ..losses import cross_entropy
from ..nn import _check_count, _check_real
from ._base import Data, Model, check_common, check_input, check_optional_count, check_tokens
from ._blocks import Decoder
from ._decoding import sample

__all__ = ["LanguageModel"]

_CHUNK = 512  # steps per kernel call when reading a whole stream at inference


class LanguageModel(Model):
    """Predict the next token of a stream (characters, words) and write new text.

    Training uses truncated backpropagation through time: the stream is
    cut into ``batch_size`` parallel rows, read in chunks of ``bptt``
    steps; each chunk starts from the state the previous one ended with
    (the state is carried), but gradients stop at the chunk's start.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
    hidden_size : int
    num_layers : int
    vocab_size : int
        Token ids are in ``[0, vocab_size)`` (:class:`rnncore.text.Vocab`
        maps text to ids).
    embedding_dim : int, optional
        Default ``hidden_size``.
    dropout : float
        Between stacked layers and before the output layer.
    dtype : {"float32", "float64"}
    seed : int, optional

    Examples
    --------
    >>> from rnncore.models import LanguageModel
    >>> from rnncore.text import Vocab
    >>> text = "abcabd" * 100
    >>> vocab = Vocab.build(text)
    >>> model = LanguageModel(vocab_size=len(vocab), hidden_size=32, seed=0)
    >>> history = model.fit(vocab.encode(text), epochs=20, batch_size=4, bptt=20, lr=0.01, progress=False)
    >>> vocab.decode(model.generate(vocab.encode("abcab"), 7, temperature=0))
    'dabcabd'
    >>> model.perplexity(vocab.encode(text)) < 1.5
    True
    """

    _targets_required = False

    def __init__(self, *, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 vocab_size: Optional[int] = None, embedding_dim: Optional[int] = None, dropout: float = 0.0,
                 dtype: str = "float32", seed: Optional[int] = None) -> None:
        config = check_common(cell, hidden_size, num_layers, dropout, dtype, seed)
        if vocab_size is None:
            raise ValueError("LanguageModel needs vocab_size: it reads and writes token ids")
        config.update({key: value for key, value in check_input(None, vocab_size, embedding_dim,
                                                                  config["hidden_size"]).items()
                       if key != "input_size"})
        self._bptt = 35
        super().__init__(config)

    def _build(self) -> None:
        c = self._config
        self.decoder = Decoder(**self._recurrent_options(), vocab_size=c["vocab_size"],
                               embedding_dim=c["embedding_dim"], symbols=False, seed=self._child_seed())

    # -- data -------------------------------------------------------------------

    def _stream(self, X: Any, arg: str = "X", minimum: int = 2) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 1 or len(X) < minimum or not (np.issubdtype(X.dtype, np.integer) or X.size == 0):
            raise ValueError(f"{arg} must be a stream of token ids, integers of shape [T] with T >= {minimum}, "
                             f"got {X.dtype} of shape {X.shape}")
        check_tokens(arg, X, self._config["vocab_size"])
        return X.astype(np.intp)

    def _data(self, X, y, lengths, fitting):
        if lengths is not None:
            raise ValueError("lengths does not apply: X is one stream")
        stream = self._stream(X)
        return Data([len(stream)], stream=[stream])

    def _validation(self, validation_data):
        return self._data(validation_data, None, None, fitting=False)

    def _rows(self, data: Data, batch_size: int) -> tuple:
        """The stream as ``B`` parallel rows: inputs and next tokens, ``[n, B]`` each."""
        stream = data.fields["stream"][0]
        B = min(batch_size, len(stream) - 1)
        n = (len(stream) - 1) // B
        x = stream[: n * B].reshape(B, n).T
        y = stream[1: n * B + 1].reshape(B, n).T
        return x, y

    def _batches(self, data, batch_size, rng):
        x, y = self._rows(data, batch_size)
        carry: dict = {"states": None}  # the state at the end of the previous chunk
        for start in range(0, len(x), self._bptt):
            yield {"x": np.ascontiguousarray(x[start:start + self._bptt]),
                   "y": np.ascontiguousarray(y[start:start + self._bptt]), "carry": carry}

    def _num_batches(self, data, batch_size):
        return math.ceil(len(self._rows(data, batch_size)[0]) / self._bptt)

    # -- training -----------------------------------------------------------------

    def fit(self, X: Any, y: Any = None, *, bptt: int = 35, **options: Any):
        """Train on the stream ``X`` (token ids ``[T]``).

        Parameters
        ----------
        X : array_like of int [T]
        y : None
            Not used: the targets are ``X`` shifted by one.
        bptt : int
            Steps per chunk: how far back gradients flow.
        **options
            As :meth:`rnncore.models.Model.fit` (``batch_size`` is the
            number of parallel rows; ``validation_data`` a stream).
        """
        if y is not None:
            raise TypeError("LanguageModel.fit takes no y: the targets are X shifted by one token")
        self._bptt = _check_count("bptt", bptt)
        return super().fit(X, **options)

    def _loss(self, batch, train):
        x, y, carry = batch["x"], batch["y"], batch["carry"]
        lengths = np.full(x.shape[1], x.shape[0])
        logits, carry["states"] = self.decoder(x, lengths, carry["states"])
        loss, dlogits = cross_entropy(logits, y)
        if train:
            self.decoder.backward(dlogits)  # no gradient into the carried state: truncated BPTT
        return loss, y.size, int((logits.argmax(axis=-1) == y).sum())

    # -- inference --------------------------------------------------------------

    def _read(self, stream: np.ndarray, states: Optional[tuple] = None) -> tuple:
        """Logits ``[T, V]`` after each token of ``stream`` and the final states, in chunks."""
        self.eval()
        logits = []
        with no_grad():
            for start in range(0, len(stream), _CHUNK):
                chunk = stream[start:start + _CHUNK, None]
                out, states = self.decoder(chunk, np.array([len(chunk)]), states)
                logits.append(out[:, 0])
        return np.concatenate(logits), states

    def predict(self, X: Any) -> np.ndarray:
        """The most probable next token after each token of the stream ``X``, ``[T]``."""
        self._require_built("predict")
        return self._read(self._stream(X, minimum=1))[0].argmax(axis=-1)

    def _next_token_loss(self, X: Any) -> tuple:
        stream = self._stream(X)
        logits, _ = self._read(stream[:-1])
        loss, _ = cross_entropy(logits, stream[1:])
        return loss, (logits.argmax(axis=-1) == stream[1:]).mean()

    def perplexity(self, X: Any) -> float:
        """``exp`` of the mean cross-entropy of each next token of the stream ``X``
        (read in one pass, each prediction seeing everything before it)."""
        self._require_built("perplexity")
        return float(math.exp(self._next_token_loss(X)[0]))

    def score(self, X: Any) -> float:
        """Next-token accuracy over the stream ``X``."""
        self._require_built("score")
        return float(self._next_token_loss(X)[1])

    def generate(self, prompt: Any, n: int, temperature: float = 1.0, *, seed: Optional[int] = None) -> np.ndarray:
        """Continue ``prompt`` (token ids, at least one) with ``n`` new tokens.

        Parameters
        ----------
        prompt : array_like of int [T]
        n : int
            Tokens to write.
        temperature : float
            Tokens are drawn from ``softmax(logits / temperature)``; 0
            picks the most probable token every time.
        seed : int, optional
            Makes the draws reproducible.

        Returns
        -------
        ndarray of int [n]
            The new tokens (without the prompt).
        """
        self._require_built("generate")
        prompt = self._stream(prompt, "prompt", minimum=1)
        n = _check_count("n", n)
        temperature = _check_real("temperature", temperature, 0.0)
        rng = np.random.default_rng(check_optional_count("seed", seed, minimum=0))
        states = self._read(prompt[:-1])[1] if len(prompt) > 1 else self.decoder.zero_states(1)
        with no_grad():
            out = sample(self.decoder.decode_step, self.decoder.reorder, (states, None), prompt[-1:], None, n,
                         temperature, rng)
        return out[0]

"""Models that write token sequences with a :class:`~rnncore.models._blocks.Decoder`.

:class:`Seq2Seq` and :class:`SequenceGenerator` differ in where the
decoder's initial state comes from (an encoded sequence, a conditioning
vector); the targets, teacher forcing, the loss and decoding are the same
and live here.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Optional

import numpy as np

from ..losses import cross_entropy
from ..nn import _check_choice, _check_count, _check_real
from ._base import Model, pad, same_count, sequences, step_mask
from ._decoding import beam_search, sample


class TokenWriter(Model):
    """Teacher-forced training and decoding of target token sequences.

    The decoder reads the start symbol and then the target; it is trained
    to write the target and then the end symbol.  Both symbols have the id
    ``V`` (the target vocabulary size): one in the input vocabulary, one in
    the output vocabulary.
    """

    _metric = "accuracy"  # of the next token, under teacher forcing
    _vocab_key = "vocab_size"  # the configuration entry holding V

    @property
    def _V(self) -> int:
        return self._config[self._vocab_key]

    def _targets(self, y: Any, n: int) -> list:
        tgt = sequences("y", y, None, vocab_size=self._V, input_size=None, allow_empty=True)
        same_count("y", tgt, n)
        return tgt

    def _target_fields(self, tgt: list) -> dict:
        """Per example: the decoder's inputs (start symbol, target) and outputs (target, end symbol)."""
        start, end = np.array([self._V]), np.array([self._V])
        return {"tgt_in": [np.concatenate([start, t]) for t in tgt], "tgt_out": [np.concatenate([t, end]) for t in tgt]}

    @staticmethod
    def _target_batch(items: dict) -> dict:
        tgt_in, tgt_lengths = pad(items["tgt_in"])
        tgt_out, _ = pad(items["tgt_out"])
        return {"tgt_in": tgt_in, "tgt_out": tgt_out, "tgt_lengths": tgt_lengths}

    def _write_loss(self, batch: dict, states: tuple, memory: Optional[tuple], train: bool) -> tuple:
        """Loss, counted tokens and correct tokens of the targets in ``batch``; with
        ``train``, also backpropagate and return the gradients of ``states`` and ``memory``."""
        logits, _ = self.decoder(batch["tgt_in"], batch["tgt_lengths"], states, memory)
        mask = step_mask(batch["tgt_lengths"], logits.shape[0])
        loss, dlogits = cross_entropy(logits, batch["tgt_out"], mask=mask)
        grads = self.decoder.backward(dlogits) if train else (None, None)
        correct = (logits.argmax(axis=-1) == batch["tgt_out"]) & mask
        return (loss, int(mask.sum()), int(correct.sum())), grads

    def _write(self, state: tuple, n: int, max_len: int, method: str, beam_size: int, temperature: float,
               length_penalty: float, rng: Optional[np.random.Generator]) -> list:
        """Decode ``n`` sequences from the decoder ``state`` (``(states, memory)``)."""
        decoder, V = self.decoder, self._V
        bos = np.full(n, V)
        # One hypothesis a step multiplies the weights where they are (nothing
        # to prepack); from two, prepacked steps pay for their copy in a step or two.
        rows = n * (beam_size if method == "beam" else 1)
        with decoder.frozen_steps() if rows >= 2 else nullcontext():
            if method == "beam":
                return beam_search(decoder.decode_step, decoder.reorder, state, bos, V, max_len, beam_size,
                                   length_penalty)
            return sample(decoder.decode_step, decoder.reorder, state, bos, V, max_len,
                          temperature if method == "sample" else 0.0, rng)

    @staticmethod
    def _decoding_options(method: str, methods: tuple, beam_size: Any, max_len: Any, length_penalty: Any) -> tuple:
        return (_check_choice("method", method, methods), _check_count("beam_size", beam_size),
                None if max_len is None else _check_count("max_len", max_len),
                _check_real("length_penalty", length_penalty, 0.0))

    def score(self, X: Any, y: Any, *, lengths: Any = None) -> float:
        """Exact-match accuracy: the fraction of examples whose greedy output equals ``y``."""
        predicted = self.predict(X, lengths=lengths)
        tgt = self._targets(y, len(predicted))
        return float(np.mean([np.array_equal(p, t) for p, t in zip(predicted, tgt)]))

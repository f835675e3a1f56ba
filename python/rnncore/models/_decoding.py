"""Autoregressive decoding: greedy, sampling and length-normalised beam search.

Each function decodes ``n`` sequences at once from a ``step`` function
``step(tokens [N], state) -> (log-probabilities [N, V], state)`` and a
``reorder(state, idx)`` that keeps, repeats or reorders the rows of a
state.  Every sequence starts from ``bos`` and ends at ``eos`` (not
included in the result) or after ``max_len`` tokens.  With ``eos=None``
exactly ``max_len`` tokens are produced.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def choose(logp: np.ndarray, temperature: float, rng: Optional[np.random.Generator]) -> np.ndarray:
    """The most likely token of each row (``temperature == 0``), or one drawn
    from ``softmax(logp / temperature)``."""
    if temperature == 0:
        return logp.argmax(axis=-1)
    z = logp / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(len(logp))[:, None] * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), logp.shape[-1] - 1)


def sample(step: Callable, reorder: Callable, state, tokens: np.ndarray, eos: Optional[int], max_len: int,
           temperature: float = 0.0, rng: Optional[np.random.Generator] = None) -> list:
    """Greedy (``temperature=0``) or sampled decoding from the first input ``tokens`` [n]."""
    n = len(tokens)
    out = np.zeros((n, max_len), np.intp)
    lengths = np.full(n, max_len)
    active = np.arange(n)
    for t in range(max_len):
        logp, state = step(tokens, state)
        tokens = choose(logp, temperature, rng)
        out[active, t] = tokens
        if eos is None:
            continue
        ended = tokens == eos
        lengths[active[ended]] = t
        if ended.all():
            break
        if ended.any():
            keep = np.flatnonzero(~ended)
            active, tokens, state = active[keep], tokens[keep], reorder(state, keep)
    return [out[i, : lengths[i]] for i in range(n)]


def beam_search(step: Callable, reorder: Callable, state, tokens: np.ndarray, eos: int, max_len: int,
                beam_size: int, length_penalty: float = 1.0) -> list:
    """The best sequence of each of the ``n`` rows by length-normalised beam search.

    Hypotheses are ranked by ``sum(log p) / length**length_penalty`` (the
    end symbol counts in the length).  A finished hypothesis keeps its
    place in the beam with its final score and competes with the growing
    ones; the search ends when every beam holds only finished hypotheses,
    or after ``max_len`` steps.
    """
    n, K = len(tokens), beam_size
    rows = np.arange(n)[:, None]
    state = reorder(state, np.repeat(np.arange(n), K))
    tokens = np.repeat(tokens, K)
    sums = np.full((n, K), -np.inf)
    sums[:, 0] = 0.0  # one live hypothesis per row at the start
    lengths = np.zeros((n, K), np.intp)
    done = np.zeros((n, K), bool)
    history = np.zeros((n, K, 0), np.intp)
    for t in range(max_len):
        logp, state = step(tokens, state)
        V = logp.shape[-1]
        cand = np.where(done[..., None], -np.inf, sums[..., None] + logp.reshape(n, K, V))
        cand[..., eos] = np.where(done, sums, cand[..., eos])  # finished: only "end" again, at no cost
        cand_len = np.where(done, lengths, t + 1)
        norm = cand / (cand_len[..., None] ** length_penalty)
        top = np.argsort(-norm.reshape(n, K * V), axis=1, kind="stable")[:, :K]
        beam, token = np.divmod(top, V)
        sums = cand.reshape(n, K * V)[rows, top]
        lengths = cand_len[rows, beam]
        done = done[rows, beam] | (token == eos)
        history = np.concatenate([history[rows, beam], token[..., None]], axis=2)
        if done.all():
            break
        state = reorder(state, (rows * K + beam).reshape(-1))
        tokens = token.reshape(-1)
    best = np.argmax(sums / np.maximum(lengths, 1) ** length_penalty, axis=1)
    result = []
    for i, k in enumerate(best):
        keep = lengths[i, k] - 1 if done[i, k] else lengths[i, k]
        result.append(history[i, k, :keep])
    return result

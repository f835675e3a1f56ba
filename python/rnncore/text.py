"""Text to token ids and back: :class:`Vocab`, for characters or words.

The models of :mod:`rnncore.models` take token ids in ``[0, vocab_size)``;
a :class:`Vocab` turns text into such ids (``encode``) and ids back into
text (``decode``).  Characters split text into its characters and join
them with nothing; words split on white space and join with one space.

Examples
--------
>>> from rnncore.text import Vocab
>>> vocab = Vocab.build("hello world")
>>> len(vocab), vocab.tokens[:3]                            # most frequent first
(8, ['l', 'o', ' '])
>>> ids = vocab.encode("hello")
>>> ids
array([5, 4, 0, 0, 1])
>>> vocab.decode(ids)
'hello'
>>> words = Vocab.build(["the cat sat", "the dog"], level="word", unknown="<unk>")
>>> words.decode(words.encode("the bird sat"))
'the <unk> sat'
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

__all__ = ["Vocab"]

_LEVELS = ("char", "word")


class Vocab:
    """A bijection between tokens (strings) and ids ``0 .. len(vocab) - 1``.

    Parameters
    ----------
    tokens : iterable of str
        The tokens in id order, each once (a string is its characters).
    level : {"char", "word"}
        How :meth:`encode` splits text and :meth:`decode` joins tokens.
    unknown : str, optional
        A token (added at the end if missing) that stands for every token
        not in the vocabulary; without one, encoding an unknown token is a
        ValueError.

    Examples
    --------
    >>> from rnncore.text import Vocab
    >>> digits = Vocab("0123456789+")
    >>> digits.encode("12+7")
    array([ 1,  2, 10,  7])
    >>> digits["+"], "x" in digits
    (10, False)
    """

    def __init__(self, tokens: Iterable[str], *, level: str = "char", unknown: Optional[str] = None) -> None:
        if level not in _LEVELS:
            raise ValueError(f"level must be 'char' or 'word', got {level!r}")
        if isinstance(tokens, str):
            tokens = list(tokens)
        tokens = list(tokens)
        if unknown is not None and unknown not in tokens:
            tokens.append(unknown)
        if not tokens:
            raise ValueError("tokens is empty: a vocabulary needs at least one token")
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise TypeError(f"tokens must be non-empty strings, got {token!r}")
            if level == "word" and token.split() != [token]:
                raise ValueError(f"tokens of a word vocabulary cannot be or contain white space, got {token!r}")
        self._ids = {token: i for i, token in enumerate(tokens)}
        if len(self._ids) != len(tokens):
            duplicates = sorted(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"tokens must be distinct, repeated: {', '.join(map(repr, duplicates))}")
        self.tokens = tokens
        self.level = level
        self.unknown = unknown

    @classmethod
    def build(cls, texts: Any, *, level: str = "char", min_count: int = 1, max_size: Optional[int] = None,
              unknown: Optional[str] = None) -> "Vocab":
        """The tokens of ``texts`` (a string or an iterable of strings).

        Tokens are ordered by decreasing count, ties alphabetically; those
        seen fewer than ``min_count`` times, or beyond the ``max_size``
        most frequent, are left out (map them to ``unknown``).
        """
        if level not in _LEVELS:
            raise ValueError(f"level must be 'char' or 'word', got {level!r}")
        if isinstance(texts, str):
            texts = [texts]
        counts: Counter = Counter()
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts must be a string or an iterable of strings, got an item {type(text).__name__}")
            counts.update(cls._split(text, level))
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        ranked = sorted((t for t, n in counts.items() if n >= min_count and t != unknown),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
                raise ValueError(f"max_size must be an int >= 1, got {max_size!r}")
            ranked = ranked[: max_size - (unknown is not None)]
        return cls(ranked, level=level, unknown=unknown)

    @staticmethod
    def _split(text: str, level: str) -> list:
        return list(text) if level == "char" else text.split()

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __getitem__(self, token: str) -> int:
        return self._ids[token]

    def __repr__(self) -> str:
        extra = f", unknown={self.unknown!r}" if self.unknown is not None else ""
        return f"Vocab({len(self)} tokens, level={self.level!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.tokens, self.level, self.unknown) == \
            (other.tokens, other.level, other.unknown)

    def encode(self, text: str) -> np.ndarray:
        """The ids of the tokens of ``text``, ``[T]`` integers."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        fallback = self._ids.get(self.unknown)
        ids = [self._ids.get(token, fallback) for token in self._split(text, self.level)]
        if fallback is None and None in ids:
            missing = sorted({t for t in self._split(text, self.level) if t not in self._ids})
            raise ValueError(f"text holds tokens not in the vocabulary: {', '.join(map(repr, missing))} "
                             "(build the Vocab with unknown=... to map them to one token)")
        return np.array(ids, dtype=np.intp)

    def decode(self, ids: Any) -> str:
        """The text of the token ids ``ids`` (integers in ``[0, len(vocab))``)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise ValueError(f"ids must be a 1-D sequence of integers, got shape {ids.shape} of {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must be in [0, {len(self)}), got values in [{ids.min()}, {ids.max()}]")
        return ("" if self.level == "char" else " ").join(self.tokens[i] for i in ids)

    def to_dict(self) -> dict:
        """A JSON-able description: ``Vocab.from_dict(v.to_dict()) == v``."""
        return {"tokens": list(self.tokens), "level": self.level, "unknown": self.unknown}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocab":
        if not isinstance(data, dict) or set(data) != {"tokens", "level", "unknown"}:
            raise ValueError("data must be a dict with the keys 'tokens', 'level' and 'unknown' (Vocab.to_dict)")
        return cls(data["tokens"], level=data["level"], unknown=data["unknown"])

    def save(self, path: Any) -> None:
        """Write the vocabulary as JSON (UTF-8)."""
        with open(os.fspath(path), "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)

    @classmethod
    def load(cls, path: Any) -> "Vocab":
        """Read a vocabulary written by :meth:`save`."""
        with open(os.fspath(path), encoding="utf-8") as f:
            try:
                data = json.load(f)
            except ValueError as e:
                raise ValueError(f"Vocab.load: {os.fspath(path)} is not a vocabulary file: {e}") from None
        return cls.from_dict(data)

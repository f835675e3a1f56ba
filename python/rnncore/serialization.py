"""Save and load layers and cells: one ``.npz`` file, never pickle.

A file written by ``module.save(path)`` is an uncompressed NumPy ``.npz``
(zip) archive with one array per parameter, under its PyTorch name, and
an entry ``__rnncore__``: a JSON string with the format version, the class
name and the constructor arguments.  :func:`load` reads it with
``allow_pickle=False`` and rebuilds the module; the archive's CRC-32
checksums catch corrupted bytes.  A loaded module starts in train mode
with zero gradients, like a freshly built one.

Examples
--------
>>> import os, tempfile
>>> import numpy as np, rnncore
>>> gru = rnncore.GRU(3, 4, num_layers=2, seed=0)
>>> path = os.path.join(tempfile.mkdtemp(), "gru.npz")
>>> gru.save(path)
>>> copy = rnncore.load(path)
>>> copy
GRU(3, 4, num_layers=2, seed=0)
>>> x = np.ones((5, 2, 3), np.float32)
>>> bool((copy(x)[0] == gru(x)[0]).all())
True
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from .cells import GRUCell, LSTMCell, RNNCell
from .layers import GRU, LSTM, RNN

__all__ = ["save", "load"]

_CLASSES = {cls.__name__: cls for cls in (LSTM, GRU, RNN, LSTMCell, GRUCell, RNNCell)}
_META = "__rnncore__"
_VERSION = 1


def save(module, path) -> None:
    """Write ``module``'s class, configuration and parameters to ``path``.

    Parameters
    ----------
    module : LSTM, GRU, RNN, LSTMCell, GRUCell or RNNCell
    path : str or os.PathLike
        Written as given (no suffix is added; ``.npz`` is customary).
    """
    if _CLASSES.get(type(module).__name__) is not type(module):
        raise TypeError(f"save: module must be one of rnncore.{', rnncore.'.join(_CLASSES)}, "
                        f"got {type(module).__name__}")
    meta = {"format": "rnncore", "version": _VERSION, "class": type(module).__name__,
            "config": module.config}
    with open(os.fspath(path), "wb") as f:  # np.savez would append ".npz" to a bare name
        np.savez(f, **{_META: np.array(json.dumps(meta))}, **module.params)


def load(path):
    """Rebuild a layer or cell from a file written by its ``save`` method.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    LSTM, GRU, RNN, LSTMCell, GRUCell or RNNCell

    Raises
    ------
    ValueError
        If the file is truncated, corrupted, not written by rnncore, or its
        arrays do not fit its configuration.
    FileNotFoundError
        If there is no such file.

    Examples
    --------
    >>> import os, tempfile, rnncore
    >>> path = os.path.join(tempfile.mkdtemp(), "cell.npz")
    >>> rnncore.LSTMCell(2, 3, seed=1).save(path)
    >>> rnncore.load(path).params["weight_hh"].shape
    (12, 3)
    """
    path = os.fspath(path)
    arrays = _read_arrays(path)
    meta = arrays.pop(_META, None)
    if meta is None:
        raise ValueError(f"rnncore.load: {path} is not an rnncore file (no {_META} entry)")
    cls, config = _parse_meta(path, meta)
    try:
        module = cls(**config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"rnncore.load: {path} holds an invalid configuration: {e}") from None
    wrong = [f"{name}: dtype {a.dtype}" for name, a in arrays.items() if a.dtype != module.dtype]
    if wrong:
        raise ValueError(f"rnncore.load: {path} declares dtype {module.dtype} but holds "
                         + ", ".join(wrong))
    try:
        module.load_state_dict(arrays)
    except ValueError as e:
        raise ValueError(f"rnncore.load: the arrays in {path} do not fit its configuration: {e}") from None
    return module


def _read_arrays(path):
    """Every array in the archive at ``path``, read and checksummed."""
    with open(path, "rb") as f:  # closed here even when np.load fails half-way
        try:
            archive = np.load(f, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            with archive:
                return {name: archive[name] for name in archive.files}
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(f"rnncore.load: cannot read {path} (truncated or corrupted?): {e}") from None


def _parse_meta(path, meta):
    """The class and constructor arguments recorded in the ``__rnncore__`` entry."""
    try:
        if meta.shape != () or meta.dtype.kind != "U":
            raise ValueError(f"expected a JSON string, got a {meta.dtype} array of shape {meta.shape}")
        info = json.loads(meta[()])
        if not isinstance(info, dict) or info.get("format") != "rnncore":
            raise ValueError("no rnncore format marker")
        if info.get("version") != _VERSION:
            raise ValueError(f"format version {info.get('version')!r}; this rnncore reads version {_VERSION}")
        if info.get("class") not in _CLASSES:
            raise ValueError(f"unknown class {info.get('class')!r}")
        if not isinstance(info.get("config"), dict):
            raise ValueError("no configuration")
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"rnncore.load: {path} has an invalid {_META} entry: {e}") from None
    return _CLASSES[info["class"]], info["config"]

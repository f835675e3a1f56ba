"""Save and load layers and cells: one ``.npz`` file, never pickle.

A file written by ``module.save(path)`` is an uncompressed NumPy ``.npz``
(zip) archive with one array per parameter, under its PyTorch name, and
an entry ``__rnncore__``: a JSON string with the format version, the class
name and the constructor arguments.  :func:`load` reads it with
``allow_pickle=False`` and rebuilds the module; the archive's CRC-32
checksums catch corrupted bytes.  A loaded module starts in train mode
with zero gradients, like a freshly built one.

Saving is atomic: the archive is written to a temporary file in the same
directory, flushed to disk, then renamed over ``path``, so a crash or a
full disk mid-save leaves the previous file intact (at worst a stray
``.<name>.<random>.tmp`` file next to it).  Loading never executes code
and reads an array only after checking that its header's shape and dtype
agree with the bytes the archive holds for it.

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
import secrets
import struct
import zipfile
import zlib

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
    target = os.path.realpath(os.fspath(path))  # through a symlink, as open() would
    directory = os.path.dirname(target)
    tmp, fd = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as f:  # np.savez would append ".npz" to a bare name
            np.savez(f, **{_META: np.array(json.dumps(meta))}, **module.params)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(target):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _create_temporary(target):
    """A new file next to ``target`` (same file system, so the rename is atomic),
    created with the mode ``open`` would give (0o666 less the umask)."""
    directory, name = os.path.split(target)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    _check_config_fits(path, config, arrays)
    try:
        module = cls(**config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"rnncore.load: {path} holds an invalid configuration: {e}") from None
    except MemoryError as e:
        raise MemoryError(f"rnncore.load: the module {path} describes does not fit in memory: {e}") from None
    wrong = [f"{name}: dtype {a.dtype}" for name, a in arrays.items() if a.dtype != module.dtype]
    if wrong:
        raise ValueError(f"rnncore.load: {path} declares dtype {module.dtype} but holds "
                         + ", ".join(wrong))
    try:
        module.load_state_dict(arrays)
    except ValueError as e:
        raise ValueError(f"rnncore.load: the arrays in {path} do not fit its configuration: {e}") from None
    return module


# What reading a damaged or foreign archive can raise, besides MemoryError
# (which the header checks below rule out for arrays).
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zipfile.LargeZipFile,
                NotImplementedError, RuntimeError, zlib.error, struct.error)


def _read_arrays(path):
    """Every array in the archive at ``path``, read and checksummed."""
    with open(path, "rb") as f:  # closed here even when reading fails half-way
        try:
            if f.read(6) == b"\x93NUMPY":
                raise ValueError("it holds a single array, not an .npz archive")
            f.seek(0)
            with zipfile.ZipFile(f) as archive:
                return {info.filename.removesuffix(".npy"): _read_entry(archive, info)
                        for info in archive.infolist()}
        except _READ_ERRORS as e:
            raise ValueError(f"rnncore.load: cannot read {path} (truncated or corrupted?): {e}") from None


def _read_entry(archive, info):
    """One ``.npy`` member, refused unless its header fits the bytes it holds."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"entry {info.filename}: unsupported .npy format version {version}")
        if dtype.hasobject:
            raise ValueError(f"entry {info.filename} holds Python objects, which would need pickle")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        held = info.file_size - member.tell()
        if declared != held:
            raise ValueError(f"entry {info.filename} declares shape {shape} of {dtype} "
                             f"({declared} bytes) but holds {held} bytes")
        member.seek(0)
        array = np.lib.format.read_array(member, allow_pickle=False)
        member.read()  # at the end of the entry: zipfile checks its CRC-32
        return array


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
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"rnncore.load: {path} has an invalid {_META} entry: {e}") from None
    return _CLASSES[info["class"]], info["config"]


def _check_config_fits(path, config, arrays):
    """Refuse, before building the module, sizes its arrays cannot hold.

    In a genuine file every layer has a ``weight_hh`` of at least
    ``hidden_size * H_out`` elements and the first a ``weight_ih`` of at least
    ``hidden_size * input_size``, so a configuration asking for more than the
    file's ``n`` elements is forged or damaged -- and building it first could
    allocate far more memory than the file's size.
    """
    def size(key, default):
        value = config.get(key, default)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return value if ok else default  # wrong types are the constructor's to refuse

    n = sum(a.size for a in arrays.values())
    H, I = size("hidden_size", 0), size("input_size", 0)
    layers, H_out = size("num_layers", 1), size("proj_size", 0) or H
    for what, need in (("hidden_size * input_size", H * I), ("num_layers * hidden_size * H_out", layers * H * H_out)):
        if need > n:
            raise ValueError(f"rnncore.load: {path} declares {what} = {need} parameters but holds "
                             f"only {n} values: its configuration does not fit its arrays")

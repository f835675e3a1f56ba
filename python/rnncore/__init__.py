"""rnncore: fast recurrent neural networks on the CPU.

LSTM, GRU and dense (Elman) cells with hand-written C++ kernels for the
forward pass and backpropagation through time, NumPy arrays in and out.

Examples
--------
>>> import numpy as np, rnncore
>>> from rnncore import functional as F
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((5, 2, 3)).astype(np.float32)      # [T, B, I]
>>> w_ih = rng.standard_normal((16, 3)).astype(np.float32)     # [4H, I]
>>> w_hh = rng.standard_normal((16, 4)).astype(np.float32)     # [4H, H]
>>> y, h_n, c_n, cache = F.lstm_forward(x, None, None, w_ih, w_hh)
>>> y.shape, h_n.shape
((5, 2, 4), (2, 4))
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

from . import functional, reference
from ._grad_mode import no_grad
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import GRU, LSTM, RNN
from .serialization import load
from . import losses, nn, optim, training
from . import models, text
from .training import EarlyStopping, GradientMonitor, GradientWarning, History, clip_grad_norm, clip_grad_value
from ._core import cpu_info as _cpu_info
from ._core import get_flush_denormal as _get_flush_denormal
from ._core import get_num_threads as _get_num_threads
from ._core import memory_info as _memory_info
from ._core import release_memory as _release_memory
from ._core import set_flush_denormal as _set_flush_denormal
from ._core import set_num_threads as _set_num_threads

try:
    __version__ = _version("rnncore")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0+unknown"

__all__ = ["__version__", "cpu_info", "get_num_threads", "set_num_threads", "get_flush_denormal",
           "set_flush_denormal", "memory_info", "release_memory", "functional", "reference",
           "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "load", "no_grad",
           "nn", "losses", "optim", "training", "clip_grad_norm", "clip_grad_value",
           "GradientMonitor", "GradientWarning", "EarlyStopping", "History", "models", "text"]


def cpu_info() -> dict:
    """What the processor offers and which kernels rnncore runs on it.

    Returns
    -------
    dict
        ``isa``: the kernel set in use; ``features``: instruction-set
        features detected at run time; ``num_threads``: worker threads used
        by the kernels; ``version``: rnncore's version.

    Examples
    --------
    >>> import rnncore
    >>> sorted(rnncore.cpu_info())
    ['features', 'isa', 'num_threads', 'version']
    """
    info = dict(_cpu_info())
    info["version"] = __version__
    return info


def get_num_threads() -> int:
    """Number of threads rnncore's kernels use (``RNNCORE_NUM_THREADS`` at
    start-up, else the number of hardware threads)."""
    return _get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads rnncore's kernels use.

    Results are the same for every thread count (bitwise in float64).

    Parameters
    ----------
    n : int
        At least 1.

    Examples
    --------
    >>> import rnncore
    >>> rnncore.set_num_threads(1)
    >>> rnncore.get_num_threads()
    1
    """
    if isinstance(n, bool) or not isinstance(n, (int, __import__("numpy").integer)):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _set_num_threads(int(n))


def memory_info() -> dict:
    """Memory rnncore holds for its calls' large buffers (64 KiB and up).

    Training caches, gradient buffers, packed weights and the arrays a call
    returns live in blocks that, once freed, rnncore keeps for the next call
    of the same shapes instead of handing them back to the system (fresh
    pages cost a page fault and zeroing each: an LSTM forward + backward at
    T=20, B=256, H=1024 took 1.18x the time).  Kept and in use together
    stay within the most it has had in use at once (``peak_bytes``) and an
    eighth, or 64 MiB if that is more.

    Returns
    -------
    dict
        ``pooled_bytes``: freed blocks kept for reuse; ``in_use_bytes``:
        blocks in use now (arrays and caches alive included);
        ``peak_bytes``: the most in use at once since start-up or the last
        :func:`release_memory`.

    Examples
    --------
    >>> import rnncore
    >>> sorted(rnncore.memory_info())
    ['in_use_bytes', 'peak_bytes', 'pooled_bytes']
    """
    return dict(_memory_info())


def release_memory() -> None:
    """Give the freed blocks rnncore keeps back to the system, and forget
    the peak (so that after one large call a process does not keep that
    much for good).

    Examples
    --------
    >>> import rnncore
    >>> rnncore.release_memory()
    >>> rnncore.memory_info()["pooled_bytes"]
    0
    """
    _release_memory()


def get_flush_denormal() -> bool:
    """Whether rnncore's kernels flush subnormal floats to zero (the default)."""
    return _get_flush_denormal()


def set_flush_denormal(on: bool) -> None:
    """Flush subnormal floats to zero in rnncore's kernels, or not.

    Subnormals (below about 1.2e-38 in float32, 2.2e-308 in float64) are
    10 to 100 times slower than other floats in the CPU's arithmetic units,
    and gradients that decay over many steps of BPTT reach them: a long
    many-to-one backward pass can slow down five to twenty times.  With
    flushing on (the default), the kernels treat subnormal inputs as zero
    and round subnormal results to zero (x86 FTZ and DAZ, set on the
    kernels' threads only for the duration of each call, so NumPy and the
    rest of the process are unaffected).  Off: IEEE gradual underflow, as
    NumPy and PyTorch do by default (``torch.set_flush_denormal``).

    Parameters
    ----------
    on : bool

    Examples
    --------
    >>> import rnncore
    >>> rnncore.set_flush_denormal(False)
    >>> rnncore.get_flush_denormal()
    False
    >>> rnncore.set_flush_denormal(True)
    """
    if not isinstance(on, (bool, __import__("numpy").bool_)):
        raise TypeError(f"set_flush_denormal: on must be a bool, got {type(on).__name__}")
    _set_flush_denormal(bool(on))

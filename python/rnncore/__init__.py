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
from ._core import cpu_info as _cpu_info

try:
    __version__ = _version("rnncore")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0+unknown"

__all__ = ["__version__", "cpu_info", "functional", "reference"]


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

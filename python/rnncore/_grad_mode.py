"""Switch off the caches kept for backpropagation: ``with rnncore.no_grad():``.

Inside ``no_grad`` the layers of rnncore run their forward pass for
inference only: they keep no cache (memory ``O(B*H)`` per layer instead of
``O(T*B*H)``), and ``backward`` after such a pass is an error.  The switch
is per thread, nests, and also works as a function decorator.

Examples
--------
>>> import numpy as np, rnncore
>>> lstm = rnncore.LSTM(3, 4, seed=0)
>>> with rnncore.no_grad():
...     y, (h_n, c_n) = lstm(np.zeros((5, 2, 3), np.float32))
>>> rnncore._grad_mode.is_grad_enabled()
True
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["no_grad", "is_grad_enabled"]

_local = threading.local()


def is_grad_enabled() -> bool:
    """True unless the calling thread is inside :class:`no_grad`."""
    return getattr(_local, "depth", 0) == 0


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) under which layers keep no cache.

    A layer's ``forward(..., keep_cache=None)`` keeps a cache for
    ``backward`` only when the layer is in train mode and no ``no_grad``
    is active in the calling thread; an explicit ``keep_cache=True`` or
    ``False`` overrides both.

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> gru = rnncore.GRU(2, 3, seed=0)
    >>> @rnncore.no_grad()
    ... def predict(x):
    ...     return gru(x)[0]
    >>> predict(np.ones((4, 1, 2), np.float32)).shape
    (4, 1, 3)
    """

    def __enter__(self) -> "no_grad":
        _local.depth = getattr(_local, "depth", 0) + 1
        return self

    def __exit__(self, *exc) -> None:
        _local.depth -= 1

"""One BLAS thread for a block of numpy work, safe when several threads enter such blocks at once.

``threadpoolctl.threadpool_limits`` sets the BLAS library's thread count for the whole process and restores the
previous count on exit. Entered from concurrent threads (``tf.data``'s parallel map calling the synthesis, the
hybrid fit's worker threads) the exits interleave: one thread restores two BLAS threads while another is still
inside its block (whose matrix products then sum in another order: the same seed gave other bits, so training
runs of one seeded command differed), and the last exit can leave the process at one thread for good.
:func:`one_blas_thread` counts the threads inside: the first sets one BLAS thread, the last restores the count.

Hold it in the thread that starts the workers (``train`` around ``model.fit``, ``hybrid.fit`` around its thread
pool), not only in the workers: measured here, a limit that a worker thread set was not reliably in effect (after
some BLAS work in the process, threadpoolctl reported the old count inside the worker's own block), so each of two
hybrid workers ran its products on two BLAS threads (3-4x slower), and the training stream's bits depended on it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["one_blas_thread"]

_lock = threading.Lock()
_inside = 0
_limiter = None


@contextmanager
def one_blas_thread():
    """Context: BLAS single-threaded while any thread is inside (bit-reproducible sums, no nested oversubscription)."""
    global _inside, _limiter
    from threadpoolctl import threadpool_limits

    with _lock:
        if _inside == 0:
            _limiter = threadpool_limits(1, user_api="blas")
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _limiter.restore_original_limits()
                _limiter = None

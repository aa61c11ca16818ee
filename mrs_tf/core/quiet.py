"""TensorFlow without its start-up noise: ``import_tensorflow()`` imports it with the lines its C++ core writes to
stderr before any logging is set up (oneDNN notices, "Could not find cuda drivers" on a CPU machine, absl's
"All log messages before absl::InitializeLog()", and "failed call to cuInit" when the first model is built) kept off
the terminal. ``TF_CPP_MIN_LOG_LEVEL`` does not reach
those lines in TensorFlow 2.21. Python errors are untouched: an import that fails raises as usual."""
from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["import_tensorflow", "quiet_stderr"]


@contextlib.contextmanager
def quiet_stderr():
    """File descriptor 2 sent to /dev/null inside the block (C and C++ writes; Python exceptions still raise)."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """``import tensorflow`` inside :func:`quiet_stderr`; returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import tensorflow
    return tensorflow

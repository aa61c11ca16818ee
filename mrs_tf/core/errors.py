"""Domain errors of mrs-tf.

Every error that a user can cause with bad input derives from :class:`MRSError` (itself a ``ValueError``),
so that the command line can print its message and exit with status 2 instead of a traceback.
"""
from __future__ import annotations


class MRSError(ValueError):
    """Base class of every input error raised by mrs-tf."""


class MetaboliteError(MRSError):
    """An unknown or ambiguous metabolite name."""


class ProtocolError(MRSError):
    """Sequence timing, field, dwell time or number of points that are invalid or do not match."""


class BasisError(MRSError):
    """A basis set that is inconsistent, incomplete or cannot be resampled as asked."""


class FileFormatError(MRSError):
    """A file that is truncated, corrupt, of an unknown format or lacks required fields."""


class OutputExistsError(MRSError):
    """Refusing to overwrite a file or folder that already exists (pass ``overwrite=True``)."""


class TrainingError(MRSError):
    """A training run that did not produce a usable model (it did not learn, or was interrupted)."""

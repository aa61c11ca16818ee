"""mrs-tf: deep-learning quantification of brain 1H MRS with Keras/TensorFlow.

Public API of the physics core::

    from mrs_tf import simulate_basis, BasisSet, synthesize
    q = mrs_tf.Quantifier.load("saved_models/press3t_te30")     # a trained network
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import BasisError, FileFormatError, MetaboliteError, MRSError, OutputExistsError, ProtocolError  # noqa: E402
from .metabolites import ALL_NAMES, CANONICAL_NAMES, canonical_name  # noqa: E402
from .basis import BasisSet, simulate_basis, DEFAULT_PROTOCOL, ppm_axis  # noqa: E402
from .synth import synthesize, SynthesisConfig  # noqa: E402
from .quantify import Quantifier  # noqa: E402  (imports Keras only when a model is loaded)

__all__ = [
    "__version__", "simulate_basis", "BasisSet", "synthesize", "SynthesisConfig", "DEFAULT_PROTOCOL", "ppm_axis",
    "ALL_NAMES", "CANONICAL_NAMES", "canonical_name", "Quantifier",
    "MRSError", "MetaboliteError", "ProtocolError", "BasisError", "FileFormatError", "OutputExistsError",
]

"""mrs-tf: deep-learning quantification of brain 1H MRS with Keras/TensorFlow.

The package is a pipeline of stages, each a subpackage that imports only from the stages before it
(``tests/test_architecture.py`` holds the order)::

    core → formats → physics → preprocess → io → fitting → nn → quantify → reporting → cli

Public API::

    from mrs_tf import simulate_basis, BasisSet, synthesize
    q = mrs_tf.Quantifier.load("saved_models/press3t_te30")     # a trained network

The modules' paths from before the stages (``mrs_tf.quest``, ``mrs_tf.crlb``, ``mrs_tf.basis``, ...) still import:
see :mod:`mrs_tf._aliases`.
"""
from __future__ import annotations

from mrs_tf import _aliases

_aliases.install()

from mrs_tf.core import __version__  # noqa: E402
from mrs_tf.core.errors import (BasisError, FileFormatError, MetaboliteError, MRSError, OutputExistsError,  # noqa: E402
                                ProtocolError)
from mrs_tf.physics.metabolites import ALL_NAMES, CANONICAL_NAMES, canonical_name  # noqa: E402
from mrs_tf.physics.basis import BasisSet, simulate_basis, DEFAULT_PROTOCOL, ppm_axis  # noqa: E402
from mrs_tf.physics.synth import synthesize, SynthesisConfig  # noqa: E402
from mrs_tf.quantify import Quantifier  # noqa: E402  (imports Keras only when a model is loaded)

__all__ = [
    "__version__", "simulate_basis", "BasisSet", "synthesize", "SynthesisConfig", "DEFAULT_PROTOCOL", "ppm_axis",
    "ALL_NAMES", "CANONICAL_NAMES", "canonical_name", "Quantifier",
    "MRSError", "MetaboliteError", "ProtocolError", "BasisError", "FileFormatError", "OutputExistsError",
]


def __getattr__(name: str):
    return _aliases.attribute(name)

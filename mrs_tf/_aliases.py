"""The module paths of mrs-tf before its stages became subpackages (``mrs_tf.quest``, ``mrs_tf.basis``, ...), kept
importable: each old name is the very module object of its new home (``mrs_tf.quest is mrs_tf.fitting.quest``), so
``from mrs_tf.quest import fit``, ``import mrs_tf.crlb`` and ``mrs_tf.synth.synthesize`` keep working unchanged."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old module path -> the stage module that holds it now
ALIASES = {
    **{f"mrs_tf.{m}": f"mrs_tf.core.{m}" for m in ("errors", "quiet", "table")},
    **{f"mrs_tf.{m}": f"mrs_tf.physics.{m}"
       for m in ("metabolites", "spin_sim", "pulses", "macromolecules", "basis", "synth")},
    "mrs_tf.hlsvd": "mrs_tf.preprocess.hlsvd",
    **{f"mrs_tf.{m}": f"mrs_tf.fitting.{m}"
       for m in ("signal_model", "quest", "crlb", "hybrid", "water", "basis_prep", "lcmodel")},
    **{f"mrs_tf.{m}": f"mrs_tf.nn.{m}" for m in ("layers", "models", "data", "train", "tuning", "export")},
    **{f"mrs_tf.{m}": f"mrs_tf.reporting.{m}" for m in ("evaluate", "plots", "report", "model_card")},
    **{f"mrs_tf.io.{m}": f"mrs_tf.formats.{m}" for m in ("lcmodel", "nifti", "jmrui", "fslmrs", "vendor")},
    "mrs_tf.io._files": "mrs_tf.core.files",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers only the names of :data:`ALIASES`, with the module of the new path."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ALIASES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(ALIASES[spec.name])

    def exec_module(self, module):  # already executed under its new name
        pass


def install() -> None:
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())


def attribute(name: str):
    """``mrs_tf.<name>`` for an old module name (module ``__getattr__`` of the package)."""
    full = f"mrs_tf.{name}"
    if full in ALIASES:
        return importlib.import_module(full)
    raise AttributeError(f"module 'mrs_tf' has no attribute {name!r}")

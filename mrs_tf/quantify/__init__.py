"""Stage 7, one facade over the estimators: :class:`Quantifier` (a trained network, its protocol check, and the
network or the network-initialised fit)."""
from mrs_tf.quantify.quantifier import Quantifier

__all__ = ["Quantifier"]

"""``tf.data`` front end of the synthesis: fresh simulated spectra on the fly, no second copy of the physics.

Each batch is made by :func:`mrs_tf.synth.synthesize` (inside ``tf.numpy_function``) with the seed
``SeedSequence([seed, batch_index])``, so a dataset is reproducible and batches are independent of the order
in which parallel calls finish.
"""
from __future__ import annotations

import numpy as np

from .basis import BasisSet
from .synth import SynthesisConfig, concentration_matrix, synthesize

__all__ = ["synthetic_batch", "synthetic_dataset"]


def synthetic_batch(basis: BasisSet, batch_size: int, seed: int, index: int, snr=(10.0, 100.0),
                    config: SynthesisConfig | None = None, nuisance: tuple[str, ...] = ()):
    """One batch as numpy arrays: (fids complex64 (B, N), concentrations float32 (B, M), nuisance float32 (B, P))."""
    fids, truth = synthesize(basis, n=batch_size, snr=snr, seed=np.random.SeedSequence([int(seed), int(index)]),
                             config=config, n_jobs=1)
    conc = concentration_matrix(truth, basis.names).astype(np.float32)
    extra = np.stack([truth[k] for k in nuisance], axis=1).astype(np.float32) if nuisance else \
        np.zeros((batch_size, 0), np.float32)
    return fids, conc, extra


def synthetic_dataset(basis: BasisSet, batch_size: int = 64, seed: int = 0, snr=(10.0, 100.0),
                      config: SynthesisConfig | None = None, n_batches: int | None = None,
                      nuisance: tuple[str, ...] = (), parallel: int | None = None):
    """A ``tf.data.Dataset`` of batches ``{"fid": complex64 (B, N), "concentrations": float32 (B, M),
    "nuisance": float32 (B, P)}`` synthesised on the fly.

    Args:
        n_batches: finite length; ``None`` repeats forever (batch index keeps increasing, so nothing repeats).
        nuisance: truth keys (e.g. ``("lw_lorentz_hz", "shift_hz")``) to return beside the concentrations.
        parallel: ``num_parallel_calls`` (default ``tf.data.AUTOTUNE``); output order stays deterministic.
    """
    import tensorflow as tf

    n_points, n_metab = basis.n_points, basis.n_metabolites
    indices = tf.data.Dataset.range(n_batches) if n_batches is not None else tf.data.Dataset.range(2 ** 62)

    def make(index):
        fids, conc, extra = tf.numpy_function(
            lambda i: synthetic_batch(basis, batch_size, seed, int(i), snr, config, nuisance),
            [index], [tf.complex64, tf.float32, tf.float32], stateful=False)
        fids.set_shape((batch_size, n_points))
        conc.set_shape((batch_size, n_metab))
        extra.set_shape((batch_size, len(nuisance)))
        return {"fid": fids, "concentrations": conc, "nuisance": extra}

    return indices.map(make, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True).prefetch(2)

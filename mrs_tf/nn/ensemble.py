"""Deep ensembles: K networks of one recipe, trained from K seeds, read as one model.

Why: a network's answer on a real scan, which lies outside the distribution it was trained on, depends on its seed
far more than its answer on its own spectra does. Two seeds of the same ``mrs-tf train --basis`` command on Osprey's
Philips TE 35 basis (test NAA MAPE 5.6 % each) read the Philips volunteers' tCho/tCr 12 and 10 points apart and sub-01's
Ins/tCr 20 points apart (``benchmarks/RESULTS.md``). Averaging K members takes that seed-to-seed spread down by
about sqrt(K), and their disagreement widens sigma where they disagree (Lakshminarayanan et al. 2017).

:func:`combine` joins trained members into one functional Keras model with the members' inputs and outputs
(:class:`~mrs_tf.nn.layers.EnsembleMixture` on each output), so that everything downstream (``Quantifier``, the
model card, the cross-check, LiteRT export) reads it as any other network. :func:`mrs_tf.nn.train.train` trains the members
(``TrainConfig(ensemble=K)``, ``mrs-tf train --ensemble K``) into ``<out>/members/seed_<s>/``, each a complete,
resumable training run of its own, and writes the combined ``model.keras`` with its sigma calibrated afresh.
"""
from __future__ import annotations

import json
from pathlib import Path

from mrs_tf.core.errors import MRSError

__all__ = ["combine", "member_folders", "finished"]


def combine(members, name: str = "ensemble", sd_scales=None):
    """One ``keras.Model`` that feeds its inputs to every member and mixes their outputs
    (:class:`~mrs_tf.nn.layers.EnsembleMixture`: mean of the means; sigma of the equal mixture of their Gaussians).
    ``members``: trained Keras models with the same inputs and outputs (one recipe, other seeds); ``sd_scales``:
    each member's sigma calibration (K lists of one factor per output, their ``quantifier.json`` ``sd_scale``)."""
    import keras

    from mrs_tf.nn.layers import EnsembleMixture

    members = list(members)
    if len(members) < 2:
        raise MRSError(f"an ensemble needs at least 2 members, got {len(members)}")
    first = members[0]
    shapes = [([tuple(t.shape) for t in m.inputs], [tuple(t.shape) for t in keras.tree.flatten(m.outputs)])
              for m in members]
    if any(s != shapes[0] for s in shapes[1:]):
        raise MRSError("ensemble members differ in their inputs or outputs: train them with one recipe "
                       f"({shapes[0]} against {next(s for s in shapes[1:] if s != shapes[0])})")
    inputs = {}
    for t in first.inputs:
        key = t.name.split(":")[0]
        inputs[key] = keras.Input(tuple(t.shape[1:]), name=key, dtype=t.dtype)
    outs = []
    for k, member in enumerate(members):
        member.name = f"member_{k}"  # functional models need unique layer names
        out = member([inputs[key] for key in inputs])  # in the members' own input order
        outs.append(out if isinstance(out, dict) else {"concentrations": out})
    mixed = {key: EnsembleMixture(sd_scales if key == "concentrations" else None, name=key)([o[key] for o in outs])
             for key in outs[0]}
    return keras.Model(inputs, mixed, name=name)


def member_folders(out_dir, cfg) -> list[Path]:
    """Where the members of ``cfg``'s ensemble train: ``<out>/members/seed_<seed + k>``, k = 0 ... K-1."""
    return [Path(out_dir) / "members" / f"seed_{cfg.seed + k}" for k in range(int(cfg.ensemble))]


def finished(folder: Path, cfg) -> bool:
    """A member's run has finished (its model written, its sigma calibrated where it has one) and was asked for at
    least ``cfg.epochs`` (more epochs train it further)."""
    meta = folder / "quantifier.json"
    if not ((folder / "model.keras").exists() and meta.exists()) or (folder / "backup").exists():
        return False
    saved = folder / "train_config.json"
    if saved.exists() and int(json.loads(saved.read_text()).get("epochs", 0)) < int(cfg.epochs):
        return False
    return not cfg.uncertainty or "sd_scale" in json.loads(meta.read_text())

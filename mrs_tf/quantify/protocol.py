"""The protocol check of a trained network: which of the data's field, echo time, bandwidth and points differ from
the model's, all named at once, and what to do about it."""
from __future__ import annotations

import math

from mrs_tf.physics.protocols import SEQUENCE_EFFECT, basis_mismatch  # noqa: F401  (re-exported)

__all__ = ["mismatch", "sequence_mismatch", "model_sequence", "basis_mismatch", "SEQUENCE_EFFECT"]


def model_sequence(model) -> str | None:
    """The sequence family ``model`` was trained for (:func:`~mrs_tf.physics.protocols.sequence_kind`), None when
    its files do not say."""
    from mrs_tf.physics.protocols import sequence_kind

    if getattr(model, "general", False):
        return sequence_kind(model.space().sequence)
    return sequence_kind(model.meta.get("protocol", {}).get("sequence"))


def sequence_mismatch(model, sequence: str | None) -> str:
    """'' or the mismatch between the data's sequence family (``sequence``, where a file's header names it) and
    ``model``'s."""
    from mrs_tf.physics.protocols import SEQUENCE_LABELS

    ours = model_sequence(model)
    if not sequence or not ours or sequence == ours:
        return ""
    return (f"sequence {SEQUENCE_LABELS.get(sequence, sequence)} (the model's: {SEQUENCE_LABELS.get(ours, ours)}; "
            f"{SEQUENCE_EFFECT})")


def mismatch(model, n_points: int, dwell_s: float, field_mhz: float, te_ms: float | None = None,
         resample: bool = False, sequence: str | None = None) -> str:
    """Every mismatch between the data's protocol (``n_points``, dwell ``dwell_s`` in s, field ``field_mhz`` in MHz,
    echo time ``te_ms`` in ms where known, ``sequence`` family where known: ``press``, ``steam``, ``slaser``, ...) and
    ``model``'s (a :class:`~mrs_tf.nn.bundle.ModelBundle`), each with the way out, in one message ('' when they
    match). ``resample``: other points and a wider bandwidth are fine."""
    seq = sequence_mismatch(model, sequence)
    if getattr(model, "general", False):
        bandwidth = 1.0 / dwell_s if dwell_s else None
        out = ([seq] if seq else []) + model.space().outside(field_mhz, te_ms, bandwidth, n_points)
        if not out:
            return ""
        return (f"this model serves {model.protocol_text()}; the data differ: {'; '.join(out)}. Way out: fit with a "
                f"basis for your protocol (mrs-tf fit --basis YOUR_BASIS; mrs-tf basis simulate --sequence ... "
                f"writes one), or train a model for it (mrs-tf train --basis YOUR_BASIS --protocol-from YOUR_DATA)")
    out, retrain = ([seq], True) if seq else ([], False)
    model_te = model.meta.get("protocol", {}).get("te_ms")
    if te_ms is not None and model_te is not None and abs(float(te_ms) - float(model_te)) > 0.5:
        out.append(f"echo time {te_ms:g} ms (the model's: {float(model_te):g} ms; metabolite signals change with "
                   f"TE, J evolution)")
        retrain = True
    if field_mhz is None or dwell_s is None:
        out.append("field and dwell time unknown: give them (--field-mhz, --bandwidth-hz; field_mhz=, dwell_s=)")
    else:
        if not math.isclose(field_mhz, model.field_mhz, rel_tol=5e-3):
            out.append(f"field {field_mhz:g} MHz (the model's: {model.field_mhz:g} MHz)")
            retrain = True
        wider = dwell_s < model.dwell_s * (1 + 1e-3)
        if not math.isclose(dwell_s, model.dwell_s, rel_tol=1e-3) and not (resample and wider):
            out.append(f"bandwidth {1 / dwell_s:g} Hz (the model's: {1 / model.dwell_s:g} Hz" +
                       ("; a narrower bandwidth cannot be resampled up)" if not wider else ")"))
            retrain |= not wider
    if n_points != model.n_points and not resample:
        out.append(f"{n_points} points (the model's: {model.n_points})")
    if not out:
        return ""
    way = ("train a model for your protocol (mrs-tf train --basis YOUR_BASIS --protocol-from YOUR_DATA) or fit "
           "with a matching basis (mrs-tf fit --basis YOUR_BASIS)" if retrain else
           "resample the data (mrs-tf quantify --resample; in Python mrs_tf.preprocess.resample_fids)")
    return (f"this model expects {model.protocol_text()}; the data differ: {'; '.join(out)}. Way out: {way}")

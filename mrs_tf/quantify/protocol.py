"""The protocol check of a trained network: which of the data's field, echo time, bandwidth and points differ from
the model's, all named at once, and what to do about it."""
from __future__ import annotations

import math

__all__ = ["mismatch", "sequence_mismatch", "model_sequence", "basis_mismatch", "SEQUENCE_EFFECT"]


#: why another sequence matters, measured (benchmarks/RESULTS.md)
SEQUENCE_EFFECT = ("coupled signals evolve differently under another sequence: press3t_short_te read sLASER TE 30 "
                   "spectra with Ins/tCr +22 %, STEAM TE 20 ones with tNAA/tCr -11 % and Ins/tCr -17 %, every one "
                   "of them with status ok")


def basis_mismatch(basis_protocol: dict, data: dict, te_tolerance_ms: float = 0.5) -> list[str]:
    """Every way a basis set (its ``protocol`` dict: ``te_ms``, ``sequence`` where its file names them) does not suit a
    scan (``data``: :func:`~mrs_tf.io.read_data`'s dict, ``te_ms``, ``sequence``, ``sequence_name``), each said with
    its way out; [] when both suit (or neither names what would differ). Coupled signals evolve differently at
    another echo time or under another sequence, so a fit or a network with that basis would misread the scan."""
    from mrs_tf.physics.protocols import SEQUENCE_LABELS, sequence_kind

    out = []
    seq_basis, seq_data = sequence_kind(basis_protocol.get("sequence")), data.get("sequence")
    if seq_basis and seq_data and seq_data != seq_basis:
        out.append(f"it is a {SEQUENCE_LABELS.get(seq_basis, seq_basis)} basis, the scan a "
                   f"{SEQUENCE_LABELS.get(seq_data, seq_data)} scan ({data.get('sequence_name')!r} in its header): "
                   f"{SEQUENCE_EFFECT.split(':')[0]}; simulate a basis for the scan's sequence (mrs-tf basis "
                   f"simulate --sequence {seq_data} ...)")
    te_basis, te_data = basis_protocol.get("te_ms"), data.get("te_ms")
    if te_basis and te_data and abs(float(te_basis) - float(te_data)) > te_tolerance_ms:
        out.append(f"it is for TE {float(te_basis):g} ms, the scan has TE {float(te_data):g} ms: coupled "
                   f"signals evolve with the echo time; simulate a basis for the scan's (mrs-tf basis simulate "
                   f"--te-ms {float(te_data):g} ...)")
    return out


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

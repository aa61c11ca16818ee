"""Coil combination and averaging of the higher NIfTI-MRS dimensions, with the transients aligned first."""
from __future__ import annotations

import numpy as np

from mrs_tf.preprocess.spectra import spectral_registration

__all__ = ["AVERAGED_TAGS", "combine_dimensions"]


#: NIfTI-MRS higher dimensions that ``combine=True`` reduces: coils combined, repetitions averaged
AVERAGED_TAGS = ("DIM_DYN", "DIM_MEAS", "DIM_PHASE_CYCLE")


def combine_dimensions(data: np.ndarray, dim_tags, align: bool = False, info: dict | None = None,
                       dwell_s: float | None = None) -> tuple[np.ndarray, list[str]]:
    """Reduce the higher dimensions (5-7) of NIfTI-MRS ``data`` (x, y, z, points, ...): ``DIM_COIL`` by a
    signal-weighted combination (each coil multiplied by the conjugate of its mean first 4 points: phase-aligned and
    weighted by its signal; divided by the root-sum-of-squares of those, so coils of gains g_c give the signal times
    sqrt(sum |g_c|^2), phased at t = 0), and the repetition dimensions of :data:`AVERAGED_TAGS` averaged, after
    frequency and phase alignment of the transients when ``align`` (:func:`~mrs_tf.preprocess.spectral_registration`,
    which needs ``dwell_s``); other dimensions stay. Returns the array and the remaining tags; ``info`` (a dict)
    receives ``coils``, ``transients`` and, when aligned, ``align_max_hz``/``align_max_deg`` (the largest corrections)."""
    tags = [t for t in list(dim_tags)[: data.ndim - 4]]
    axis = 4
    out = data
    kept = []
    info = {} if info is None else info
    for tag in tags:
        if tag == "DIM_COIL":
            info["coils"] = info.get("coils", 1) * out.shape[axis]
            ref = np.mean(np.take(out, range(4), axis=3), axis=3, keepdims=True)
            w = np.conj(ref)  # phase alignment and |signal| weighting in one
            norm = np.sqrt(np.sum(np.abs(ref) ** 2, axis=axis, keepdims=True)) + 1e-30
            out = np.sum(out * w, axis=axis) / np.squeeze(norm, axis=axis)
        elif tag in AVERAGED_TAGS:
            info["transients"] = info.get("transients", 1) * out.shape[axis]
            if align and out.shape[axis] > 1:
                if dwell_s is None:
                    raise ValueError("aligning transients needs dwell_s")
                out = _align_along(out, axis, dwell_s, info)
            out = np.mean(out, axis=axis)
        else:
            kept.append(tag)
            axis += 1
    return out, kept


def _align_along(data: np.ndarray, axis: int, dwell_s: float, info: dict) -> np.ndarray:
    """Spectral registration of the transients along ``axis`` of (x, y, z, points, ...), voxel by voxel."""
    moved = np.moveaxis(data, (axis, 3), (-2, -1))
    shape = moved.shape
    flat = moved.reshape(-1, shape[-2], shape[-1]).copy()
    for i in range(len(flat)):
        if np.any(flat[i]):
            flat[i], f, p = spectral_registration(flat[i], dwell_s)
            info["align_max_hz"] = max(info.get("align_max_hz", 0.0), float(np.abs(f).max()))
            info["align_max_deg"] = max(info.get("align_max_deg", 0.0), float(np.abs(p).max()))
    return np.moveaxis(flat.reshape(shape), (-2, -1), (axis, 3))

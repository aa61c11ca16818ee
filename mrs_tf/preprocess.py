"""Spectral preprocessing shared by the data sets and the networks: spectra and the metabolite-range crop."""
from __future__ import annotations

import numpy as np

from .basis import ppm_axis

__all__ = ["DEFAULT_PPM_RANGE", "as_fid_matrix", "crop_slice", "cropped_spectrum"]

#: Metabolite range that the networks see (ppm), high to low as the spectrum array runs.
DEFAULT_PPM_RANGE = (0.2, 4.2)


def as_fid_matrix(fids) -> np.ndarray:
    """``fids`` as a complex (n_spectra, n_points) array (one FID may be 1-D); MRSError for another shape or a
    real-valued array (a spectrum magnitude or a real part is not a FID)."""
    from .errors import MRSError

    arr = np.asarray(fids)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise MRSError(f"fids must be complex (n_spectra, n_points), got shape {np.shape(fids)}")
    if not np.iscomplexobj(arr):
        raise MRSError("fids must be complex FIDs (time domain); got a real array")
    return arr


def crop_slice(n_points: int, dwell_s: float, field_mhz: float, ppm_range=DEFAULT_PPM_RANGE,
               ref_ppm: float = 4.65) -> slice:
    """Bins of ``np.fft.fftshift(np.fft.fft(fid))`` whose ppm lies within ``ppm_range`` (a contiguous slice)."""
    ppm = ppm_axis(n_points, dwell_s, field_mhz, ref_ppm)
    idx = np.flatnonzero((ppm <= max(ppm_range)) & (ppm >= min(ppm_range)))
    return slice(int(idx[0]), int(idx[-1]) + 1)


def cropped_spectrum(fids: np.ndarray, dwell_s: float, field_mhz: float, ppm_range=DEFAULT_PPM_RANGE,
                     ref_ppm: float = 4.65) -> np.ndarray:
    """float32 (n, K, 2): real and imaginary parts of the spectrum within ``ppm_range`` (ppm decreasing along K).

    The FFT runs in the input's precision (complex64 in: single precision, about twice as fast) on all cores."""
    import scipy.fft

    fids = np.atleast_2d(fids)
    sl = crop_slice(fids.shape[-1], dwell_s, field_mhz, ppm_range, ref_ppm)
    spec = scipy.fft.fftshift(scipy.fft.fft(fids, axis=-1, workers=-1), axes=-1)[..., sl]
    return np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)

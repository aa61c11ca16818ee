"""Spectra on one fixed ppm grid, whatever the protocol: the input of protocol-general networks.

A spectrum's sampling depends on the acquisition (points, dwell time, field); a network that reads any 3 T scan needs
the same input for the same chemistry. :func:`grid_spectrum` evaluates every FID's spectrum at :data:`GRID_POINTS`
chemical shifts evenly spaced over :data:`GRID_PPM` (0.2-4.2 ppm, high to low as the array runs, like
``fftshift(fft(fid))`` and :func:`~mrs_tf.preprocess.cropped_spectrum`), by a chirp-z (zoom) DFT:

* frequency of a chemical shift: ``f = (ref_ppm - ppm) * field_mhz`` (Hz; mrs-tf's NIfTI-MRS sign convention);
* the FID is used for at most ``1 / (grid spacing in Hz)`` seconds, so that the spectrum's resolution is the grid's
  (a longer acquisition would put narrow lines between grid points, a shorter one is zero-filled);
* the sum is multiplied by the dwell time (``dt * sum x_n e^{-2 pi i f n dt}``, the continuous Fourier transform), so
  one signal gives one spectrum at any dwell time and number of points;
* grid points beyond the acquired bandwidth (``|f| > 1 / (2 dwell)``: 1,000 Hz at 3 T does not reach 0.2 ppm) are
  zero; :func:`grid_coverage` says which.
"""
from __future__ import annotations

import numpy as np

from mrs_tf.preprocess.spectra import as_fid_matrix

__all__ = ["GRID_PPM", "GRID_POINTS", "grid_ppm", "grid_spectrum", "grid_coverage", "bins_above"]

#: chemical-shift range of the grid (ppm), low and high
GRID_PPM = (0.2, 4.2)
#: points of the grid: 0.0157 ppm apart, the resolution of 2,048 points at 4 kHz and 123.2 MHz
GRID_POINTS = 256


def grid_ppm(ppm_range=GRID_PPM, n: int = GRID_POINTS) -> np.ndarray:
    """The grid's chemical shifts (ppm), high to low as the spectrum array runs."""
    return np.linspace(max(ppm_range), min(ppm_range), n)


def bins_above(ppm: float, ppm_range=GRID_PPM, n: int = GRID_POINTS) -> tuple[int, int]:
    """``(0, k)``: the grid's first k points, those above ``ppm`` (the array runs from high to low ppm)."""
    k = int(np.sum(grid_ppm(ppm_range, n) > ppm))
    if k == 0:
        raise ValueError(f"no grid point lies above {ppm} ppm (grid {min(ppm_range)}-{max(ppm_range)} ppm)")
    return 0, k


def grid_coverage(dwell_s: float, field_mhz: float, ref_ppm: float = 4.65, ppm_range=GRID_PPM,
                  n: int = GRID_POINTS) -> np.ndarray:
    """Boolean (n,): the grid points inside the acquired bandwidth (+-1 / (2 dwell) around ``ref_ppm``)."""
    freq = (ref_ppm - grid_ppm(ppm_range, n)) * field_mhz
    return np.abs(freq) < 0.5 / dwell_s


def grid_spectrum(fids, dwell_s: float, field_mhz: float, ref_ppm: float = 4.65, ppm_range=GRID_PPM,
                  n: int = GRID_POINTS, workers: int = -1) -> np.ndarray:
    """float32 (m, n, 2): real and imaginary parts of every FID's spectrum on the ppm grid (see the module
    docstring), in FID units x seconds. ``workers``: threads of the FFTs (-1: every core; 1 where batches are made
    in parallel already, as the training stream does)."""
    import scipy.fft
    from scipy.signal import ZoomFFT

    arr = as_fid_matrix(fids)
    ppm = grid_ppm(ppm_range, n)
    freq = (ref_ppm - ppm) * field_mhz  # Hz, increasing along the array
    spacing_hz = abs(freq[1] - freq[0])
    n_use = min(arr.shape[1], max(8, int(round(1.0 / (spacing_hz * dwell_s)))))
    zoom = ZoomFFT(n_use, [float(freq[0]), float(freq[-1])], m=n, fs=1.0 / dwell_s, endpoint=True)
    with scipy.fft.set_workers(workers):  # the chirp-z's FFTs on every core: 31 -> 23 us per 2,048-point FID here
        spec = zoom(arr[:, :n_use], axis=-1) * dwell_s
    spec[:, ~grid_coverage(dwell_s, field_mhz, ref_ppm, ppm_range, n)] = 0.0
    return np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)

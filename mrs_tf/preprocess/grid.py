"""Spectra on one fixed ppm grid, whatever the protocol: the input of protocol-general networks.

A spectrum's sampling depends on the acquisition (points, dwell time, field); a network that reads any 3 T scan needs
the same input for the same chemistry. :func:`grid_spectrum` evaluates every FID's spectrum at :data:`GRID_POINTS`
chemical shifts evenly spaced over :data:`GRID_PPM` (0.2-4.2 ppm, high to low as the array runs, like
``fftshift(fft(fid))`` and :func:`~mrs_tf.preprocess.cropped_spectrum`), by a chirp-z (zoom) DFT in single
precision (Bluestein's convolution with cached chirps and scipy.fft: 2.6x faster here than scipy's ``ZoomFFT``, which
works in complex128, and equal to it within 6e-7 of the spectrum's peak; FFTs per row, so the bits do not depend on
threads or processes):

* frequency of a chemical shift: ``f = (ref_ppm - ppm) * field_mhz`` (Hz; mrs-tf's NIfTI-MRS sign convention);
* the FID is used for at most ``1 / (grid spacing in Hz)`` seconds, so that the spectrum's resolution is the grid's
  (a longer acquisition would put narrow lines between grid points, a shorter one is zero-filled);
* the sum is multiplied by the dwell time (``dt * sum x_n e^{-2 pi i f n dt}``, the continuous Fourier transform), so
  one signal gives one spectrum at any dwell time and number of points, but for one term: this plain (rectangle-rule)
  sum adds ``dt / 2 * x_0`` to every grid point, a constant set by the dwell time (0.25 ms x the first point at 2 kHz,
  0.125 ms at 4 kHz; 8 % of a brain spectrum's norm between the two). ``first_point_offset_s=h`` takes the
  trapezoid rule instead (the first point weighted by half) plus ``h * x_0``: the same at any dwell time. A network
  trained on FIDs of one dwell time reads other dwell times as it learnt with ``h`` = half that dwell time;
* grid points beyond the acquired bandwidth (``|f| > 1 / (2 dwell)``: 1,000 Hz at 3 T does not reach 0.2 ppm) are
  zero; :func:`grid_coverage` says which.
"""
from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=16)
def _chirps(n_use: int, m: int, dwell_s: float, f0_hz: float, df_hz: float):
    """Bluestein's factors for ``y_k = dt sum_n x_n exp(-2 pi i (f0 + k df) n dt)``, k < m, n < n_use: with
    ``nk = (n^2 + k^2 - (k - n)^2) / 2`` the sum is ``post_k (conv(x pre, chirp))_k``. Returns the convolution length,
    ``pre`` (n_use,), the chirp's FFT (L,) and ``post`` (m,), complex64."""
    import scipy.fft

    c = df_hz * dwell_s
    n = np.arange(n_use)
    size = scipy.fft.next_fast_len(n_use + m - 1)
    pre = np.exp(-2j * np.pi * f0_hz * n * dwell_s - 1j * np.pi * c * n.astype(float) ** 2)
    lags = np.r_[np.arange(m), np.arange(-(n_use - 1), 0)]  # the chirp at lags 0..m-1, then -(n_use-1)..-1
    chirp = np.zeros(size, complex)
    chirp[np.r_[np.arange(m), np.arange(size - (n_use - 1), size)]] = np.exp(1j * np.pi * c * lags.astype(float) ** 2)
    post = dwell_s * np.exp(-1j * np.pi * c * np.arange(m, dtype=float) ** 2)
    return size, pre.astype(np.complex64), scipy.fft.fft(chirp).astype(np.complex64), post.astype(np.complex64)


def grid_spectrum(fids, dwell_s: float, field_mhz: float, ref_ppm: float = 4.65, ppm_range=GRID_PPM,
                  n: int = GRID_POINTS, workers: int = -1, first_point_offset_s: float | None = None) -> np.ndarray:
    """float32 (m, n, 2): real and imaginary parts of every FID's spectrum on the ppm grid (see the module
    docstring), in FID units x seconds. ``workers``: threads of the FFTs (-1: every core; 1 where batches are made
    in parallel already, as the training stream does). ``first_point_offset_s``: None, the plain sum; a number h
    (seconds), the trapezoid rule plus ``h * x_0`` at every grid point (the first point weighted ``dt / 2 + h``), a
    spectrum that does not depend on the dwell time."""
    import scipy.fft

    arr = as_fid_matrix(fids)
    ppm = grid_ppm(ppm_range, n)
    freq = (ref_ppm - ppm) * field_mhz  # Hz, increasing along the array
    spacing_hz = abs(freq[1] - freq[0])
    n_use = min(arr.shape[1], max(8, int(round(1.0 / (spacing_hz * dwell_s)))))
    size, pre, chirp_f, post = _chirps(n_use, n, float(dwell_s), float(freq[0]), float(freq[1] - freq[0]))
    x = np.asarray(arr[:, :n_use], np.complex64) * pre  # a new array: the caller's FIDs are not touched
    if first_point_offset_s is not None:
        weight = 0.5 + float(first_point_offset_s) / float(dwell_s)
        if abs(weight - 1.0) > 1e-9:  # at h = dt / 2 the plain sum itself, bit for bit
            x[:, 0] *= np.float32(weight)
    with scipy.fft.set_workers(workers):
        spec = scipy.fft.fft(x, size, axis=-1)
        spec *= chirp_f
        spec = scipy.fft.ifft(spec, axis=-1, overwrite_x=True)[:, :n] * post
    spec[:, ~grid_coverage(dwell_s, field_mhz, ref_ppm, ppm_range, n)] = 0.0
    return np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)

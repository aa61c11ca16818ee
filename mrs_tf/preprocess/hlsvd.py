"""HLSVD: a FID as a sum of damped complex exponentials, from the SVD of its Hankel matrix (Barkhuijsen et al. 1987;
the state-space / shift-invariance form of HLSVD-PRO, with scipy's dense LAPACK SVD instead of Lanczos).

Model (the convention of the rest of mrs-tf: ``t = k * dwell_s``, frequency in Hz, ``ppm = ref_ppm - f / field``)::

    x(t) = sum_k amplitude_k * exp((-damping_k + 2 pi i frequency_k) t)      damping_k in 1/s, FWHM_k = damping_k / pi

Used by :mod:`mrs_tf.quest` for the semi-parametric background (broad components of the residual of the truncated
fit) and for the removal of residual water (components inside a ppm band).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from mrs_tf.core.errors import MRSError

__all__ = ["Components", "hlsvd", "remove_band"]


@dataclass
class Components:
    """Damped exponentials: complex ``amplitude``, ``frequency_hz``, ``damping`` (1/s), all shape (K,)."""

    amplitude: np.ndarray
    frequency_hz: np.ndarray
    damping: np.ndarray

    @property
    def fwhm_hz(self) -> np.ndarray:
        return self.damping / np.pi

    def __len__(self) -> int:
        return len(self.amplitude)

    def select(self, mask) -> "Components":
        mask = np.asarray(mask, bool)
        return Components(self.amplitude[mask], self.frequency_hz[mask], self.damping[mask])

    def basis(self, time_s: np.ndarray) -> np.ndarray:
        """(K, len(time_s)) unit-amplitude signals ``exp((-d + 2 pi i f) t)``."""
        return np.exp(np.outer(-self.damping + 2j * np.pi * self.frequency_hz, time_s))

    def signal(self, time_s: np.ndarray) -> np.ndarray:
        """Their sum at ``time_s`` (s)."""
        if len(self) == 0:
            return np.zeros(len(time_s), complex)
        return self.amplitude @ self.basis(time_s)

    def ppm(self, field_mhz: float, ref_ppm: float = 4.65) -> np.ndarray:
        return ref_ppm - self.frequency_hz / field_mhz


def hlsvd(fid: np.ndarray, dwell_s: float, n_components: int, n_points: int | None = None) -> Components:
    """Decompose the first ``n_points`` of ``fid`` into ``n_components`` damped exponentials.

    The Hankel matrix (rows ``L ~ n/2``) is decomposed by SVD; the signal subspace of the ``n_components`` largest
    singular values gives the poles ``z_k = exp((-d_k + 2 pi i f_k) dwell)`` by shift invariance (total least
    squares), and the complex amplitudes follow by linear least squares on the Vandermonde matrix.
    """
    x = np.asarray(fid, complex)
    if x.ndim != 1:
        raise MRSError(f"hlsvd takes one FID (1-D), got shape {x.shape}")
    n = len(x) if n_points is None else min(int(n_points), len(x))
    x = x[:n]
    if not np.all(np.isfinite(x)):
        raise MRSError("hlsvd: the FID contains NaN or Inf")
    rows = n // 2
    k = int(n_components)
    if not 1 <= k < min(rows, n - rows + 1):
        raise MRSError(f"hlsvd: n_components must be between 1 and {min(rows, n - rows + 1) - 1} for {n} points")
    hankel = scipy.linalg.hankel(x[:rows], x[rows - 1:])
    u, _, _ = scipy.linalg.svd(hankel, full_matrices=False, lapack_driver="gesdd", check_finite=False)
    uk = u[:, :k]
    # shift invariance: uk[:-1] Z = uk[1:]  (least squares), poles = eig(Z)
    z_mat = scipy.linalg.lstsq(uk[:-1], uk[1:], check_finite=False)[0]
    poles = scipy.linalg.eigvals(z_mat, check_finite=False)
    poles = np.where(np.abs(poles) < 1e-12, 1e-12, poles)
    log = np.log(poles) / dwell_s
    damping = -log.real
    freq = log.imag / (2 * np.pi)
    t = np.arange(n) * dwell_s
    vander = np.exp(np.outer(t, -damping + 2j * np.pi * freq))
    amp = scipy.linalg.lstsq(vander, x, check_finite=False)[0]
    return Components(amp, freq, damping)


def remove_band(fid: np.ndarray, dwell_s: float, field_mhz: float, ppm_range: tuple[float, float],
                n_components: int = 25, n_points: int = 512, ref_ppm: float = 4.65) -> tuple[np.ndarray, Components]:
    """Remove the components of ``fid`` whose frequency lies inside ``ppm_range`` (e.g. residual water,
    ``(4.2, 5.2)``). Returns ``(cleaned_fid, removed_components)``; the removed model is extrapolated to every point."""
    comps = hlsvd(fid, dwell_s, n_components, n_points)
    ppm = comps.ppm(field_mhz, ref_ppm)
    lo, hi = sorted(ppm_range)
    # growing components (damping < 0) are numerical artefacts of the noise subspace; keep them out
    inside = comps.select((ppm >= lo) & (ppm <= hi) & (comps.damping > 0))
    t = np.arange(len(fid)) * dwell_s
    return np.asarray(fid, complex) - inside.signal(t), inside

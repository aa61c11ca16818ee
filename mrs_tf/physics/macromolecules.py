"""The macromolecule (MM) background: a parametric model and loading a measured MM spectrum.

The parametric model is a sum of Gaussian lines at the published macromolecule positions (LCModel's
simulated MM09..MM20 set, Provencher's LCModel manual, section 11.7; the 3.0, 3.2 and 3.8 ppm components after
measured metabolite-nulled spectra, e.g. Behar et al. MRM 1994 and Cudalbu et al. NMR Biomed 2021). Each component
is ``(position ppm, FWHM ppm, relative amplitude in proton equivalents)``; one unit of MM amplitude is this whole set.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MM_COMPONENTS", "mm_fid"]

#: (ppm, FWHM ppm, relative amplitude)
MM_COMPONENTS: tuple[tuple[float, float, float], ...] = (
    (0.91, 0.14, 3.00),   # MM09
    (1.21, 0.15, 2.00),   # MM12
    (1.43, 0.17, 2.00),   # MM14
    (1.67, 0.15, 2.00),   # MM17
    (2.08, 0.15, 1.33),   # MM20 (main)
    (2.25, 0.20, 0.33),   # MM20 (shoulder)
    (1.95, 0.15, 0.33),   # MM20 (shoulder)
    (3.00, 0.20, 0.40),   # MM30
    (3.20, 0.15, 0.40),   # MM32
    (3.80, 0.20, 0.80),   # MM38
)


def mm_fid(n_points: int, dwell_s: float, field_mhz: float, ref_ppm: float = 4.65,
           components=MM_COMPONENTS) -> np.ndarray:
    """Time-domain MM signal (complex128, length ``n_points``) at unit amplitude, mrs-tf sign convention.

    A Gaussian line of FWHM ``w`` Hz has the envelope ``exp(-(pi w t)^2 / (4 ln 2))``.
    """
    t = np.arange(n_points) * dwell_s
    fid = np.zeros(n_points, complex)
    for ppm, fwhm_ppm, amp in components:
        nu = (ref_ppm - ppm) * field_mhz
        w = fwhm_ppm * field_mhz
        fid += amp * np.exp(2j * np.pi * nu * t - (np.pi * w * t) ** 2 / (4 * np.log(2)))
    return fid

"""The prior knowledge and settings of a QUEST fit (:class:`QuestOptions`) and the damping/shift groups they name:
shared by the fit (:mod:`mrs_tf.fitting.quest`), its Cramér-Rao bound at the truth (:func:`mrs_tf.crlb.from_truth`)
and the network-initialised fit (:mod:`mrs_tf.fitting.hybrid`)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mrs_tf.core.errors import MRSError

__all__ = ["QuestOptions", "group_indices"]


@dataclass(frozen=True)
class QuestOptions:
    """Prior knowledge and settings of a QUEST fit (units in the names)."""

    background: str = "auto"              # 'auto' | 'subtract' | 'include' | 'truncate' | 'none' | 'spline'
    truncate_ms: float = 10.0             # FID start left out of stages 1-2 (background)
    background_window_ms: float = 60.0    # residual span decomposed by HLSVD for the background
    background_components: int = 12       # HLSVD model order for the background
    background_min_fwhm_hz: float = 25.0  # components at least this broad are background
    damping: str | dict = "common"        # 'common', 'per_metabolite' or {name: group}
    shift: str | dict = "per_metabolite"  # 'common', 'per_metabolite' or {name: group}
    shift_bound_hz: float = 5.0           # hard bound of each group's deviation from the common shift
    shift_sd_hz: float = 1.0              # soft constraint (Gaussian prior) on each deviation
    gaussian: bool = True                 # common Gaussian damping
    phase1: bool = True                   # fit the first-order phase (deg/ppm, pivot ref_ppm)
    lorentz_max_hz: float = 40.0
    gauss_max_hz: float = 60.0
    phase1_max_deg_per_ppm: float = 45.0
    search_ppm: float = 0.25              # initial global-shift search range (+-ppm)
    ppm_range: tuple | None = None        # final fit restricted to this band of the spectrum (ppm)
    water_ppm: tuple | None = None        # HLSVD removal of residual water in this band, e.g. (4.2, 5.2)
    nonnegative: bool = False             # metabolite amplitudes >= 0 (QUEST: free; unbiased at low SNR)
    noise_sd: float | None = None         # noise sigma per real/imag part; None: from the residual's last quarter
    max_nfev: int = 200                   # evaluations per stage
    baseline_knot_ppm: float = 0.1        # 'spline': spacing of the cubic B-spline baseline's knots (ppm)
    baseline_stiffness: float = 1.0       # 'spline': weight of the baseline's second differences (per noise sigma)
    auto_background_chi2: float = 25.0    # 'auto': keep the broad background when dropping it raises chi2 by more
    # 'auto': components at least this broad are background (25-60 Hz ones, 0.2-0.5 ppm at 3 T, as wide as an MM peak
    # or a broadened multiplet, were found in the noise of baseline-free spectra and kept by the chi2 test)
    auto_background_min_fwhm_hz: float = 60.0

    def __post_init__(self):
        if self.background not in ("subtract", "include", "truncate", "none", "spline", "auto"):
            raise MRSError(f"background must be subtract, include, truncate, none, spline or auto, got "
                           f"{self.background!r}")
        if self.background == "spline" and not self.baseline_knot_ppm > 0:
            raise MRSError(f"baseline_knot_ppm must be > 0, got {self.baseline_knot_ppm}")
        if self.truncate_ms < 0 or self.background_window_ms <= self.truncate_ms and self.background in (
                "subtract", "include", "auto"):
            raise MRSError("need 0 <= truncate_ms < background_window_ms")

    @classmethod
    def in_vivo(cls, **changes) -> "QuestOptions":
        """Settings for in vivo scans (``mrs-tf fit``'s default): residual water removed by HLSVD (4.2-5.2 ppm), the
        final fit over 0.2-4.0 ppm of the spectrum with a smooth spline baseline (LCModel's habit), amplitudes
        >= 0. Measured against LCModel on two Philips PRESS scans: ``benchmarks/invivo_vs_lcmodel.py``."""
        preset = dict(water_ppm=(4.2, 5.2), background="spline", ppm_range=(0.2, 4.0), nonnegative=True,
                      baseline_knot_ppm=0.1, baseline_stiffness=2.0)
        return cls(**{**preset, **changes})

    def with_(self, **changes) -> "QuestOptions":
        return replace(self, **changes)

    @staticmethod
    def global_shift_bound_hz(field_mhz: float) -> float:
        """Half-width (Hz) of the bound on the global shift about its start in each refinement: 0.05 ppm, at least
        5 Hz."""
        return max(0.05 * field_mhz, 5.0)

    def shift_reach_ppm(self, field_mhz: float, refinements: int = 2) -> float:
        """How far (+-ppm) from the basis's positions a fit's global shift can go: the starting search
        (``search_ppm``) and ``refinements`` bounded refinements, each about the last result (QUEST: 2, the
        network-initialised fit: 1). Spectra further out are fitted to other peaks (mrs-tf's spectra moved 0.25-0.5
        ppm: QUEST's tNAA/tCr within 12 % up to 0.38 ppm, 9-360 % off and ``poor_fit`` beyond; the hybrid's within
        15 % to 0.33 ppm, then off by up to 97 % with some ``ok``)."""
        return self.search_ppm + refinements * self.global_shift_bound_hz(field_mhz) / field_mhz

    def first_point(self, dwell_s: float, n_points: int) -> int:
        """Points at the FID start left to the background in stages 1-2 (0 with ``background="none"``)."""
        if self.background == "none":
            return 0
        return min(int(round(self.truncate_ms * 1e-3 / dwell_s)), n_points // 4)

    def bound_first_point(self, dwell_s: float, n_points: int) -> int:
        """First point of the FID whose information enters the CRLB: after the truncation when the final fit is the
        truncated one (``truncate``) or the truncated points were spent on a free-form background (``subtract``,
        whole-FID fit); 0 otherwise (``ppm_range`` fits a band of the whole FID instead)."""
        if self.background == "truncate" or (self.background == "subtract" and self.ppm_range is None):
            return self.first_point(dwell_s, n_points)
        return 0


def group_indices(names, spec) -> np.ndarray:
    """Group index per basis signal from 'common', 'per_metabolite' or a {name: group} mapping (others: own)."""
    n = len(names)
    if spec == "common":
        return np.zeros(n, int)
    if spec == "per_metabolite":
        return np.arange(n)
    if isinstance(spec, dict):
        labels, out = {}, []
        for nm in names:
            key = spec.get(nm, f"__{nm}")
            out.append(labels.setdefault(key, len(labels)))
        return np.array(out)
    raise MRSError(f"groups must be 'common', 'per_metabolite' or a dict, got {spec!r}")

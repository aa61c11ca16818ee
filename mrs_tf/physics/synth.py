"""In vivo-like synthesis of spectra with ground truth: the one implementation used by numpy users, QUEST tests and
the ``tf.data`` pipeline (:mod:`mrs_tf.data` calls :func:`synthesize` per batch).

Signal model (time domain, ``t = k * dwell``)::

    fid(t) = exp(i phi0 + 2 pi i df t) * exp(-pi L t - (pi G t)^2 / (4 ln 2))
             * sum_m c_m * basis_m(t) * exp(2 pi i dm_m t)                       metabolites + MM
           + sum_j b_j * exp(2 pi i nu_j t - (pi W_j t)^2 / (4 ln 2))             smooth baseline (broad lines)
           + water + lipids (optional)                                            nuisance signals
    then a first-order phase phi1 (deg/ppm, pivot at ref_ppm) in the frequency domain, and complex white noise.

SNR (the definition LCModel and FSL-MRS report): the height of the NAA 2.01 ppm singlet in the noise-free, phased
spectrum ``np.fft.fft(fid)`` divided by the standard deviation of the real part of the noise in that same spectrum.
The singlet's height is ``c_NAA * a_NAA * sum_t env(t)`` (its DFT at its own frequency), where ``a_NAA`` is the
singlet's FID amplitude per mM read off the basis (3 for mrs-tf's basis: three protons); the time-domain noise has
standard deviation ``height / (SNR * sqrt(n_points))`` per real and imaginary part.

Per-metabolite shifts are applied exactly through the Jacobi-Anger expansion
``exp(i x s) = sum_k eps_k i^k J_k(x) T_k(s)`` (|s| <= 1), which turns the (spectra x metabolites x points) product
into a few matrix products with the basis; terms are kept until the Bessel functions fall below 1e-7.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.special

from mrs_tf.core.threads import one_blas_thread
from mrs_tf.physics.basis import BasisSet
from mrs_tf.core.errors import MRSError
from mrs_tf.physics.metabolites import MM_NAME, METABOLITES, prior_ranges

__all__ = ["SynthesisConfig", "synthesize", "concentration_matrix", "concentration_ranges", "snr_reference_amplitude",
           "measure_snr", "cr_ch2_part", "cho_multiplet_part"]

_LN2x4 = 4 * np.log(2)


@dataclass(frozen=True)
class SynthesisConfig:
    """Ranges of every randomised parameter (uniform draws unless noted). Units in the names.

    A range ``(a, a)`` fixes the parameter; ``lipid_amp=(0, 0)`` etc. switch a nuisance signal off.
    Amplitudes of baseline, water and lipids are relative to the NAA singlet height (1 = as tall as NAA).
    """

    lorentz_hz: tuple[float, float] = (1.0, 8.0)
    gauss_hz: tuple[float, float] = (2.0, 10.0)
    shift_ppm: tuple[float, float] = (-0.1, 0.1)
    metab_shift_hz: float = 1.0          # each metabolite: uniform in +-this (Hz), on top of the global shift
    phase0_deg: tuple[float, float] = (-45.0, 45.0)
    phase1_deg_per_ppm: tuple[float, float] = (-5.0, 5.0)
    baseline_components: int = 4
    baseline_amp: tuple[float, float] = (-0.1, 0.1)
    baseline_ppm: tuple[float, float] = (0.0, 4.5)
    baseline_fwhm_ppm: tuple[float, float] = (0.6, 2.0)
    water_amp: tuple[float, float] = (0.0, 0.0)
    water_shift_hz: tuple[float, float] = (-10.0, 10.0)
    water_lw_hz: tuple[float, float] = (3.0, 10.0)
    lipid_amp: tuple[float, float] = (0.0, 0.0)
    # shape of mrs-tf's parametric MM (mrs_tf.macromolecules), varied per spectrum; all 0 = the fixed shape
    mm_amp_spread: float = 0.0           # each component's amplitude x U(1 - s, 1 + s), total kept
    mm_ppm_spread: float = 0.0           # each component's position + U(-s, s) ppm
    mm_width_spread: float = 0.0         # each component's FWHM x U(1 - s, 1 + s)
    mm_lorentz_fraction: tuple[float, float] = (0.0, 0.0)  # lineshape: Gaussian (0) to Lorentzian (1)
    # Cr's and PCr's 3.9 ppm CH2 singlet x U(low, high) per spectrum, the 3.0 ppm CH3 kept: in vivo the CH2 line is
    # often lower than a basis simulates it (a shorter T2, exchange with water, the water suppression's bands);
    # LCModel fits a "-CrCH2" term for it. (1, 1): off
    cr_ch2_scale: tuple[float, float] = (1.0, 1.0)
    # GPC's and PCh's lines other than the 3.21 ppm N(CH3)3 singlet (their CH2 and glycerol multiplets at 3.5-4.4 ppm)
    # x U(low, high) per spectrum and metabolite, the singlet kept: a network then reads total choline from the
    # singlet. Trained without it, a network also counts the multiplets as choline, and reads an all-GPC spectrum
    # (GPC has 5 glycerol protons more than PCh) several per cent high. (1, 1): off
    cho_multiplet_scale: tuple[float, float] = (1.0, 1.0)
    # each of the FID's first FIRST_POINTS points + a complex offset of U(low, high) NAA heights at a random phase
    # (an offset added to point k is a flat line of that height under the whole spectrum, turning k times across the
    # spectral width): scanners' receivers distort the first points (on Philips SDAT files point 1 sits 5-11 %
    # above the smooth FID's back-prediction, 0.04 NAA heights; benchmarks/RESULTS.md). (0, 0): off
    first_points_amp: tuple[float, float] = (0.0, 0.0)
    # how lorentz_hz and gauss_hz are drawn: "uniform" in each range, or "log" (log-uniform: as many spectra from
    # 1-2 Hz as from 6-12 Hz; a well-shimmed 3 T scan's lines sit in the low few Hz, which a uniform 1-12 Hz draw
    # reaches in a few per cent of the spectra)
    linewidth_draw: str = "uniform"
    priors: dict = field(default_factory=dict)  # name -> (low, high) overrides of the default mM priors

    def __post_init__(self) -> None:
        """Refuse values that would give NaN, mirrored or negative signals silently, naming every field at once."""
        problems = [p for p in (_range_problem(self, name, *rule) for name, rule in _RANGE_RULES.items()) if p]
        for name, (lo, hi) in _SCALAR_RULES.items():
            v = getattr(self, name)
            if not (isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) and lo <= v <= hi):
                problems.append(f"{name}={v!r} (a number in [{lo:g}, {hi:g}])")
        k = self.baseline_components
        if not (isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 0):
            problems.append(f"baseline_components={k!r} (a whole number >= 0)")
        if self.linewidth_draw not in ("uniform", "log"):
            problems.append(f"linewidth_draw={self.linewidth_draw!r} ('uniform' or 'log')")
        elif self.linewidth_draw == "log" and min(min(self.lorentz_hz), min(self.gauss_hz)) <= 0:
            problems.append(f"linewidth_draw='log' with lorentz_hz={tuple(self.lorentz_hz)}, gauss_hz="
                            f"{tuple(self.gauss_hz)} (a log-uniform draw needs both lows > 0 Hz)")
        if not isinstance(self.priors, dict):
            problems.append(f"priors={self.priors!r} (a dict of name -> (low, high) mM)")
        else:
            for name, bounds in self.priors.items():
                if not _is_range(bounds) or min(bounds) < 0:
                    problems.append(f"priors[{name!r}]={bounds!r} (0 <= low <= high, mM)")
        if problems:
            raise MRSError("SynthesisConfig out of range: " + "; ".join(problems))

    def with_(self, **changes) -> "SynthesisConfig":
        return replace(self, **changes)

    @property
    def varies_mm(self) -> bool:
        return bool(self.mm_amp_spread or self.mm_ppm_spread or self.mm_width_spread
                    or max(self.mm_lorentz_fraction) > 0)


#: (low, high) fields of SynthesisConfig and the interval both ends must lie in
_RANGE_RULES = {
    "lorentz_hz": (0.0, np.inf), "gauss_hz": (0.0, np.inf), "shift_ppm": (-np.inf, np.inf),
    "phase0_deg": (-np.inf, np.inf), "phase1_deg_per_ppm": (-np.inf, np.inf), "baseline_amp": (-np.inf, np.inf),
    "baseline_ppm": (-np.inf, np.inf), "baseline_fwhm_ppm": (0.0, np.inf), "water_amp": (0.0, np.inf),
    "water_shift_hz": (-np.inf, np.inf), "water_lw_hz": (0.0, np.inf), "lipid_amp": (0.0, np.inf),
    "mm_lorentz_fraction": (0.0, 1.0), "cr_ch2_scale": (0.0, np.inf), "cho_multiplet_scale": (0.0, np.inf),
    "first_points_amp": (0.0, np.inf)}
#: number fields and their interval (an amplitude spread of 1 or more would draw negative MM lines, a width spread
#: of 1 zero-width ones)
_SCALAR_RULES = {"metab_shift_hz": (0.0, np.inf), "mm_amp_spread": (0.0, 1.0), "mm_ppm_spread": (0.0, np.inf),
                 "mm_width_spread": (0.0, 0.99)}


def _is_range(bounds) -> bool:
    """A (low, high) pair of finite numbers with low <= high."""
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= hi)


def _range_problem(config, name: str, lo: float, hi: float) -> str | None:
    bounds = getattr(config, name)
    if _is_range(bounds) and lo <= min(bounds) and max(bounds) <= hi:
        return None
    where = "" if (lo, hi) == (-np.inf, np.inf) else (f" within [{lo:g}, {hi:g}]" if np.isfinite(hi)
                                                        else f", both >= {lo:g}")
    return f"{name}={tuple(bounds) if isinstance(bounds, (list, tuple)) else bounds!r} (finite (low, high), " \
           f"low <= high{where})"


def concentration_ranges(names, config: SynthesisConfig | None = None) -> dict[str, tuple[float, float]]:
    """``{name: (low, high)}`` (mM; MM in MM-model units): the uniform range :func:`synthesize` draws each of
    ``names`` from under ``config`` (mrs-tf's priors, overridden by ``config.priors``); names with neither are left
    out."""
    config = config or SynthesisConfig()
    known = [nm for nm in names if nm in METABOLITES or nm == MM_NAME]
    ranges = {nm: (float(r[0]), float(r[1])) for nm, r in zip(known, prior_ranges(known))}
    ranges.update({k: (float(v[0]), float(v[1])) for k, v in config.priors.items()})
    return {nm: ranges[nm] for nm in names if nm in ranges}


def concentration_matrix(truth: dict, names) -> np.ndarray:
    """(n_spectra, n_names) array of ground-truth concentrations from a truth table."""
    return np.stack([np.asarray(truth[n]) for n in names], axis=1)


def snr_reference_amplitude(basis: BasisSet) -> tuple[str, float, float]:
    """(metabolite, ppm, FID amplitude per mM) of the singlet that defines SNR: NAA's 2.008 ppm singlet.

    The amplitude is measured from the basis (so foreign basis sets with other scalings work): the DFT of the basis
    signal, broadened by 4 Hz and zero-filled 16-fold (so the maximum falls on the peak, not beside it), at its
    maximum within 1.95-2.07 ppm, divided by the DFT of the broadening alone.
    """
    if "NAA" in basis.names:
        name, lo, hi = "NAA", 1.95, 2.07
    else:  # fall back to the tallest singlet-like peak among the basis signals
        name, lo, hi = None, 0.0, 4.3
    t = basis.time
    env = np.exp(-np.pi * 4.0 * t)
    fill = 16
    ppm = basis.ref_ppm - np.fft.fftshift(np.fft.fftfreq(fill * basis.n_points, basis.dwell_s)) / basis.field_mhz
    window = (ppm > lo) & (ppm < hi)
    rows = [basis.index(name)] if name else range(basis.n_metabolites)
    best = (None, 0.0, 0.0)
    for row in rows:
        spec = np.abs(np.fft.fftshift(np.fft.fft(basis.fids[row] * env, fill * basis.n_points)))
        k = np.argmax(np.where(window, spec, 0))
        if spec[k] > best[2]:
            best = (basis.names[row], float(ppm[k]), float(spec[k] / env.sum()))
    if best[0] is None or best[2] <= 0:
        raise MRSError("cannot find a reference peak for the SNR in this basis")
    return best


@lru_cache(maxsize=8)
def _jacobi_anger(max_shift_hz: float, n_points: int, dwell_s: float, tol: float = 1e-7) -> np.ndarray:
    """(K, n_points) complex64 ``eps_k i^k J_k(2 pi max_shift t)``; K chosen so the tail is below ``tol``."""
    x = 2 * np.pi * max_shift_hz * np.arange(n_points) * dwell_s
    terms = []
    for k in range(200):
        jk = scipy.special.jv(k, x)
        terms.append((1.0 if k == 0 else 2.0) * (1j ** k) * jk)
        if k > x.max() and np.abs(jk).max() < tol:
            break
    return np.array(terms, dtype=np.complex64)


def _uniform(rng, bounds, n):
    lo, hi = float(bounds[0]), float(bounds[1])
    return rng.uniform(lo, hi, n) if hi > lo else np.full(n, lo)


def _log_uniform(rng, bounds, n):
    """``exp(U(log low, log high))``: the same draws from ``rng`` as :func:`_uniform` (the stream after them is
    unchanged)."""
    lo, hi = float(bounds[0]), float(bounds[1])
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if hi > lo else np.full(n, lo)


def _draw_parameters(basis: BasisSet, n: int, snr, config: SynthesisConfig, rng, concentrations,
                     vary_mm: bool = False) -> dict:
    names = basis.names
    truth: dict[str, np.ndarray] = {}
    if concentrations is not None:
        conc = np.asarray(concentrations, float)
        if conc.shape != (n, len(names)):
            raise MRSError(f"concentrations must have shape ({n}, {len(names)}), got {conc.shape}")
    else:
        ranges = concentration_ranges(names, config)
        missing = [nm for nm in names if nm not in ranges]
        if missing:
            raise MRSError(f"no concentration prior for {', '.join(missing)}; give SynthesisConfig(priors=...)")
        bounds = np.array([ranges[nm] for nm in names], float)
        conc = rng.uniform(bounds[:, 0], bounds[:, 1], (n, len(names)))
    for j, nm in enumerate(names):
        truth[nm] = conc[:, j]
    draw = _log_uniform if config.linewidth_draw == "log" else _uniform
    truth["lw_lorentz_hz"] = draw(rng, config.lorentz_hz, n)
    truth["lw_gauss_hz"] = draw(rng, config.gauss_hz, n)
    truth["shift_hz"] = _uniform(rng, config.shift_ppm, n) * basis.field_mhz
    metab_shift = rng.uniform(-1, 1, (n, len(names))) * config.metab_shift_hz
    for j, nm in enumerate(names):
        truth[f"{nm}_shift_hz"] = metab_shift[:, j]
    truth["phase0_deg"] = _uniform(rng, config.phase0_deg, n)
    truth["phase1_deg_per_ppm"] = _uniform(rng, config.phase1_deg_per_ppm, n)
    for k in range(config.baseline_components):
        truth[f"baseline_amp_{k}"] = _uniform(rng, config.baseline_amp, n)
        truth[f"baseline_ppm_{k}"] = _uniform(rng, config.baseline_ppm, n)
        truth[f"baseline_fwhm_ppm_{k}"] = _uniform(rng, config.baseline_fwhm_ppm, n)
    truth["water_amp"] = _uniform(rng, config.water_amp, n)
    truth["water_shift_hz"] = _uniform(rng, config.water_shift_hz, n)
    truth["water_lw_hz"] = _uniform(rng, config.water_lw_hz, n)
    truth["water_phase_deg"] = rng.uniform(-180, 180, n)
    truth["lipid_amp"] = _uniform(rng, config.lipid_amp, n)
    if snr is None:
        truth["snr"] = np.full(n, np.inf)
    elif np.ndim(snr) == 0:
        truth["snr"] = np.full(n, float(snr))
    else:
        lo, hi = snr
        if not 0 < lo <= hi:
            raise MRSError(f"snr range must satisfy 0 < low <= high, got {snr}")
        truth["snr"] = rng.uniform(lo, hi, n)
    if np.any(truth["snr"] <= 0):
        raise MRSError("snr must be positive")
    if vary_mm:  # drawn last: every other draw is the same whether the MM shape varies or not
        from mrs_tf.physics.macromolecules import MM_COMPONENTS

        comps = np.array(MM_COMPONENTS)
        amp = comps[:, 2] * rng.uniform(1 - config.mm_amp_spread, 1 + config.mm_amp_spread, (n, len(comps)))
        amp *= comps[:, 2].sum() / amp.sum(1, keepdims=True)  # the same total: "1 MM" stays the same signal
        ppm = comps[:, 0] + rng.uniform(-1, 1, (n, len(comps))) * config.mm_ppm_spread
        fwhm = comps[:, 1] * rng.uniform(1 - config.mm_width_spread, 1 + config.mm_width_spread, (n, len(comps)))
        for k in range(len(comps)):
            truth[f"mm_amp_{k}"], truth[f"mm_ppm_{k}"], truth[f"mm_fwhm_ppm_{k}"] = amp[:, k], ppm[:, k], fwhm[:, k]
        truth["mm_lorentz_fraction"] = _uniform(rng, config.mm_lorentz_fraction, n)
    return truth


def _polar(magnitude, angle) -> np.ndarray:
    """complex64 ``magnitude * exp(i angle)`` computed with float32 cos/sin (SIMD in numpy)."""
    magnitude = np.asarray(magnitude, np.float32)
    angle = np.asarray(angle, np.float32)
    out = np.empty(np.broadcast_shapes(magnitude.shape, angle.shape), np.complex64)
    out.real = magnitude * np.cos(angle)
    out.imag = magnitude * np.sin(angle)
    return out


def _lines(t, amp, nu_hz, fwhm_hz, gaussian: bool) -> np.ndarray:
    """sum_j amp_j exp(2 pi i nu_j t) * lineshape_j(t); ``amp`` real or complex, arrays (n, J); returns (n, T)."""
    t = np.asarray(t, np.float32)
    fw = fwhm_hz[..., None].astype(np.float32)
    decay = (np.float32(np.pi) * fw * t) ** 2 / np.float32(_LN2x4) if gaussian else np.float32(np.pi) * fw * t
    out = _polar(np.exp(-decay), np.float32(2 * np.pi) * nu_hz[..., None].astype(np.float32) * t)
    out *= np.asarray(amp)[..., None].astype(np.complex64)
    return out.sum(axis=1)


def _complex_gaussian(rng: np.random.Generator, shape) -> np.ndarray:
    """Complex64 samples whose real and imaginary parts are independent N(0, 1): the Box-Muller transform of
    float32 uniforms (exact, 3x faster than ``standard_normal`` here; tails are cut at 5.8 sigma, p ~ 1e-8)."""
    u = rng.random((2,) + tuple(shape), dtype=np.float32)
    radius = np.sqrt(np.float32(-2.0) * np.log(np.float32(1.0) - u[0]))
    angle = np.float32(2 * np.pi) * u[1]
    out = np.empty(shape, np.complex64)
    out.real = radius * np.cos(angle)
    out.imag = radius * np.sin(angle)
    return out


def _shifted_basis(basis_fids: np.ndarray, ja: np.ndarray) -> np.ndarray:
    """(K * M, 2 T) float32: ``ja_k(t) * basis_m(t)`` with real and imaginary parts interleaved, so that one real
    matrix product with the (real) weights ``c_nm T_k(s_nm)`` gives the complex64 FIDs directly."""
    prod = (ja[:, None, :] * basis_fids[None, :, :]).astype(np.complex64)
    return np.ascontiguousarray(prod.reshape(-1, basis_fids.shape[1])).view(np.float32)


def _mm_lines(t, truth, rows, field_mhz, ref_ppm) -> np.ndarray:
    """(n, T) complex64: mrs-tf's parametric MM at unit amplitude with each spectrum's drawn component amplitudes,
    positions, widths and Gaussian/Lorentzian mix, shifted by its ``MM_shift_hz``."""
    k_max = sum(1 for key in truth if key.startswith("mm_amp_"))
    amp = np.stack([truth[f"mm_amp_{k}"][rows] for k in range(k_max)], 1)
    nu = (ref_ppm - np.stack([truth[f"mm_ppm_{k}"][rows] for k in range(k_max)], 1)) * field_mhz
    nu = nu + truth[f"{MM_NAME}_shift_hz"][rows, None]
    fw = np.stack([truth[f"mm_fwhm_ppm_{k}"][rows] for k in range(k_max)], 1) * field_mhz
    frac = truth["mm_lorentz_fraction"][rows, None, None].astype(np.float32)
    # the lines are broad: stop where the slowest (Lorentzian) envelope is below 1e-6 of its start
    slowest = np.pi * fw.min() if np.any(frac > 0) else np.pi * fw.min() / np.sqrt(_LN2x4) * np.sqrt(np.log(1e6))
    support = int(min(len(t), np.ceil(np.log(1e6) / slowest / (t[1] - t[0])) + 1))
    ts = np.asarray(t[:support], np.float32)
    x = np.float32(np.pi) * fw[..., None].astype(np.float32) * ts
    env = (1 - frac) * np.exp(-x * x / np.float32(_LN2x4)) + frac * np.exp(-x)  # one mixed envelope per line
    lines = _polar(env * amp[..., None].astype(np.float32), np.float32(2 * np.pi) * nu[..., None].astype(np.float32)
                   * ts)
    out = np.zeros((len(rows), len(t)), np.complex64)
    out[:, :support] = lines.sum(axis=1)
    return out


def _chunk(shifted, t, ppm_rel, truth, rows, names, n_terms, max_shift, ref_amp, naa_row, field_mhz, ref_ppm, rng,
           n_baseline, mm_row=None, mm_scale=1.0):
    n = len(rows)
    conc = np.stack([truth[nm][rows] for nm in names], axis=1)
    if mm_row is not None:  # the MM with its own shape per spectrum, added below; not the basis row
        mm_conc = conc[:, mm_row].copy()
        conc = conc.copy()
        conc[:, mm_row] = 0.0
    # metabolites (+MM) with per-metabolite shifts: one real GEMM, (n, K*M) @ (K*M, 2T)
    if n_terms > 1:
        s = np.stack([truth[f"{nm}_shift_hz"][rows] for nm in names], axis=1) / max_shift
        theta = np.arccos(np.clip(s, -1, 1)).astype(np.float32)
        cheb = np.cos(np.arange(n_terms, dtype=np.float32)[None, :, None] * theta[:, None, :])  # T_k(s)
        weights = (conc[:, None, :] * cheb).reshape(n, -1).astype(np.float32)
    else:
        weights = conc.astype(np.float32)
    fid = (weights @ shifted).view(np.complex64)
    if mm_row is not None:
        fid += _mm_lines(t, truth, rows, field_mhz, ref_ppm) * (mm_scale * mm_conc[:, None]).astype(np.float32)
        conc[:, mm_row] = mm_conc
    # common lineshape, global shift and zero-order phase (float32 exp/cos/sin)
    lor = truth["lw_lorentz_hz"][rows, None].astype(np.float32)
    gau = truth["lw_gauss_hz"][rows, None].astype(np.float32)
    log_env = -(np.float32(np.pi) * lor * t + (np.float32(np.pi) * gau * t) ** 2 / np.float32(_LN2x4))
    angle = (np.deg2rad(truth["phase0_deg"][rows, None]).astype(np.float32)
             + np.float32(2 * np.pi) * truth["shift_hz"][rows, None].astype(np.float32) * t)
    env = np.exp(log_env)
    fid *= _polar(env, angle)
    # NAA singlet height (DFT at its own frequency) = c * a_ref * sum(env)
    height = ref_amp * env.sum(axis=1, dtype=np.float64) * conc[:, naa_row]
    # smooth baseline: broad Gaussian lines (relative amplitude -> FID amplitude via their own DFT peak)
    if n_baseline:
        amp = np.stack([truth[f"baseline_amp_{k}"][rows] for k in range(n_baseline)], 1)
        pos = np.stack([truth[f"baseline_ppm_{k}"][rows] for k in range(n_baseline)], 1)
        fw = np.stack([truth[f"baseline_fwhm_ppm_{k}"][rows] for k in range(n_baseline)], 1) * field_mhz
        support = int(min(len(t), np.ceil(4.0 / (np.pi * fw.min() / np.sqrt(_LN2x4)) / (t[1] - t[0])) + 1))
        tb = t[:support]
        peak = np.exp(-(np.pi * fw[..., None] * tb) ** 2 / _LN2x4).sum(-1)
        fid[:, :support] += _lines(tb, amp * height[:, None] / peak, (ref_ppm - pos) * field_mhz, fw, True)
    wamp = truth["water_amp"][rows]
    if np.any(wamp):
        lw = truth["water_lw_hz"][rows]
        a = wamp * height / np.exp(-np.pi * lw[:, None] * t).sum(1) * np.exp(1j * np.deg2rad(
            truth["water_phase_deg"][rows]))
        fid += _lines(t, a[:, None], truth["water_shift_hz"][rows, None], lw[:, None], False)
    lamp = truth["lipid_amp"][rows]
    if np.any(lamp):
        pos = np.array([[0.90, 1.30, 2.02]])
        fw = np.array([[0.15, 0.15, 0.20]]) * field_mhz * np.ones((n, 1))
        rel = np.array([[0.35, 1.0, 0.2]]) * (lamp * height)[:, None]
        peak = np.exp(-(np.pi * fw[..., None] * t) ** 2 / _LN2x4).sum(-1)
        fid += _lines(t, rel / peak, (ref_ppm - pos) * field_mhz * np.ones((n, 1)), fw, True)
    phi1 = truth["phase1_deg_per_ppm"][rows]
    if np.any(phi1):
        spec = scipy.fft.fft(fid, axis=1)
        spec *= _polar(np.float32(1), np.deg2rad(phi1[:, None]).astype(np.float32) * ppm_rel.astype(np.float32))
        fid = scipy.fft.ifft(spec, axis=1, overwrite_x=True).astype(np.complex64, copy=False)
    if "first_point_amp_0" in truth:  # the receiver's distortion of the first points (NAA heights per DFT bin)
        for k in range(FIRST_POINTS):
            amp = truth[f"first_point_amp_{k}"][rows] * height
            fid[:, k] += (amp * np.exp(1j * np.deg2rad(truth[f"first_point_phase_deg_{k}"][rows]))).astype(np.complex64)
    snr = truth["snr"][rows]
    sd = np.where(np.isfinite(snr), height / (snr * np.sqrt(len(t))), 0.0)
    if np.any(sd > 0):
        fid += _complex_gaussian(rng, (n, len(t))) * sd[:, None].astype(np.float32)
    return fid.astype(np.complex64, copy=False), sd, height


#: how many of the FID's first points ``SynthesisConfig.first_points_amp`` offsets
FIRST_POINTS = 3


#: the creatine CH2 singlets (Cr 3.913, PCr 3.930 ppm; Govindaraju et al. 2000) and the window (ppm) that cuts
#: them out of a basis signal for ``SynthesisConfig.cr_ch2_scale``
CR_CH2_PPM, CR_CH2_HALF_WIDTH_PPM = 3.92, 0.1
#: the choline N(CH3)3 singlets (GPC 3.212, PCh 3.208 ppm) and the window (ppm) where
#: ``SynthesisConfig.cho_multiplet_scale`` looks for them: the rest of the signal is the multiplets
CHO_SINGLET_PPM, CHO_SINGLET_HALF_WIDTH_PPM = 3.21, 0.1


def cr_ch2_part(basis: BasisSet, name: str) -> np.ndarray:
    """The 3.9 ppm CH2 singlet of basis signal ``name`` (Cr or PCr) as a FID: its spectrum within
    +-:data:`CR_CH2_HALF_WIDTH_PPM` of :data:`CR_CH2_PPM`, transformed back (the CH3 line at 3.03 ppm is 0.9 ppm
    away; the part of a basis line's tails beyond the window stays with the CH3 signal)."""
    spec = np.fft.fft(basis.fids[basis.index(name)])
    spec[np.abs(basis.fft_ppm - CR_CH2_PPM) > CR_CH2_HALF_WIDTH_PPM] = 0.0
    return np.fft.ifft(spec)


def _singlet_fid(basis: BasisSet, name: str, centre_ppm: float, half_width_ppm: float) -> np.ndarray:
    """The singlet of basis signal ``name`` within +-``half_width_ppm`` of ``centre_ppm``, as a FID: one exponentially
    damped complex sinusoid ``a exp((2 pi i nu - d) t)`` (nu in Hz and d in 1/s maximise its projection onto the
    signal, VARPRO; a is the projection) plus what the signal less it holds within the window. Unlike a cut in the
    spectrum, the sinusoid keeps the whole line, also the leakage of an undamped basis line far beyond any window;
    the cut then only moves a small remainder (a vendor basis's singlet is not exactly one damped sinusoid)."""
    from scipy.optimize import minimize

    fid = basis.fids[basis.index(name)].astype(np.complex128)
    t = basis.time.astype(np.float64)
    window = np.abs(basis.fft_ppm - centre_ppm) <= half_width_ppm
    spec = np.abs(np.fft.fft(fid)) * window
    if not spec.any():
        return np.zeros_like(fid)

    def model(p):
        return np.exp((2j * np.pi * p[0] - p[1]) * t)

    def minus_projection(p):
        m = model(p)
        return -np.abs(np.vdot(m, fid)) ** 2 / np.vdot(m, m).real

    start_hz = np.fft.fftfreq(basis.n_points, basis.dwell_s)[int(np.argmax(spec))]
    best = minimize(minus_projection, [start_hz, 0.5], method="Nelder-Mead",
                    options={"xatol": 1e-6, "fatol": 1e-12, "maxiter": 2000}).x
    m = model(best)
    line = np.vdot(m, fid) / np.vdot(m, m).real * m
    return line + np.fft.ifft(np.fft.fft(fid - line) * window)


def cho_multiplet_part(basis: BasisSet, name: str) -> np.ndarray:
    """Everything of basis signal ``name`` (GPC or PCh) but its N(CH3)3 singlet, as a FID: the signal less the
    singlet near :data:`CHO_SINGLET_PPM` (:func:`_singlet_fid`); what is left is the CH2 multiplets at 3.6 and
    4.3 ppm and GPC's glycerol lines at 3.6-3.9 ppm."""
    return basis.fids[basis.index(name)] - _singlet_fid(basis, name, CHO_SINGLET_PPM, CHO_SINGLET_HALF_WIDTH_PPM)


#: part FIDs already cut out of a basis signal: a training stream draws every batch from the same basis, and the
#: choline singlet's fit took 47 ms a batch (as long as synthesising 128 spectra)
_PARTS: dict = {}


def _part(make, basis: BasisSet, name: str) -> np.ndarray:
    """``make(basis, name)`` (:func:`cr_ch2_part`, :func:`cho_multiplet_part`), computed once per signal and
    sampling (keyed by a digest of the signal's FID)."""
    fid = np.ascontiguousarray(basis.fids[basis.index(name)])
    key = (make.__name__, basis.dwell_s, basis.field_mhz, basis.ref_ppm,
           hashlib.blake2b(fid.tobytes(), digest_size=16).digest())
    part = _PARTS.get(key)
    if part is None:
        if len(_PARTS) >= 64:
            _PARTS.clear()
        part = make(basis, name)
        part.setflags(write=False)
        _PARTS[key] = part
    return part


def _with_part_rows(basis: BasisSet, truth: dict, rng, config: SynthesisConfig) -> tuple[np.ndarray, list]:
    """The basis's FIDs and names with a row per scaled part of a signal: the creatine CH2 singlets
    (``<name>_CH2``, one g per spectrum for Cr and PCr, ``truth["cr_ch2_scale"]``) and the choline multiplets
    (``<name>_multiplets``, a g per spectrum and metabolite, ``truth["<name>_multiplet_scale"]``). A row's amplitude
    is minus (1 - g) times its metabolite's and its shift the metabolite's (both taken out of ``truth`` again after
    synthesis)."""
    n = len(truth[basis.names[0]])
    fids, rows = [basis.fids], []

    def add(name: str, row: str, part: np.ndarray, g: np.ndarray) -> None:
        fids.append(part[None, :])
        rows.append(row)
        truth[row] = -(1.0 - g) * truth[name]
        truth[f"{row}_shift_hz"] = truth[f"{name}_shift_hz"]

    creatines = [nm for nm in ("Cr", "PCr") if nm in basis.names]
    if tuple(config.cr_ch2_scale) != (1.0, 1.0) and creatines:
        g = _uniform(rng, config.cr_ch2_scale, n)
        truth["cr_ch2_scale"] = g
        for nm in creatines:
            add(nm, f"{nm}_CH2", _part(cr_ch2_part, basis, nm), g)
    if tuple(config.cho_multiplet_scale) != (1.0, 1.0):
        for nm in (nm for nm in ("GPC", "PCh") if nm in basis.names):
            g = _uniform(rng, config.cho_multiplet_scale, n)
            truth[f"{nm}_multiplet_scale"] = g
            add(nm, f"{nm}_multiplets", _part(cho_multiplet_part, basis, nm), g)
    return np.concatenate(fids).astype(basis.fids.dtype), list(basis.names) + rows


def _parametric_mm_row(basis: BasisSet, tolerance: float = 1e-4) -> tuple[int, float] | None:
    """(row, scale) of the basis's MM signal when it is mrs-tf's parametric one times ``scale`` (whose shape can be
    varied), within ``tolerance`` of its peak, else None: a measured or foreign MM keeps its shape."""
    if MM_NAME not in basis.names:
        return None
    from mrs_tf.physics.macromolecules import mm_fid

    row = basis.index(MM_NAME)
    ours = mm_fid(basis.n_points, basis.dwell_s, basis.field_mhz, basis.ref_ppm)
    # ours in any units: a foreign basis gets it scaled to its own (mrs_tf.basis_prep.parametric_mm)
    scale = float(np.real(np.vdot(ours, basis.fids[row])) / np.vdot(ours, ours).real)
    if scale > 0 and np.allclose(basis.fids[row], scale * ours, rtol=0,
                                 atol=tolerance * scale * np.abs(ours).max()):
        return row, scale
    return None


def synthesize(basis: BasisSet, n: int = 1000, snr=(10.0, 100.0), seed: int | np.random.SeedSequence = 0,
               config: SynthesisConfig | None = None, concentrations=None, chunk_size: int = 64,
               n_jobs: int | None = None) -> tuple[np.ndarray, dict]:
    """Draw ``n`` in vivo-like spectra with their ground truth.

    Args:
        basis: a :class:`BasisSet` (e.g. ``simulate_basis()``): 20 metabolites + MM, or any subset.
        n: number of spectra.
        snr: ``(low, high)`` uniform range, a number, or ``None`` (no noise). See the module docstring.
        seed: an integer or ``SeedSequence``; the same seed gives bit-identical output whatever ``n_jobs``.
        config: ranges of the nuisance parameters (:class:`SynthesisConfig`).
        concentrations: optional (n, n_metabolites) array (mM, basis order) instead of prior draws.
        chunk_size, n_jobs: spectra per block and worker threads (default: all cores, at most 2 here).

    Returns:
        ``(fids, truth)``: complex64 array (n, n_points) in mrs-tf's sign convention, and a dict of 1-D arrays:
        ``<metabolite>`` (mM; MM in MM-model units), ``<metabolite>_shift_hz``, ``lw_lorentz_hz``, ``lw_gauss_hz``
        (FWHM, Hz), ``shift_hz``, ``phase0_deg``, ``phase1_deg_per_ppm``, ``baseline_{amp,ppm,fwhm_ppm}_k``,
        ``water_*``, ``lipid_amp``, ``snr``, ``noise_sd`` (per real/imaginary part, time domain) and
        ``naa_height`` (noise-free NAA singlet height in ``np.fft.fft`` units); with a varied MM shape (the
        ``mm_*`` settings, applied when the basis's MM is mrs-tf's parametric one) ``mm_amp_k``, ``mm_ppm_k``,
        ``mm_fwhm_ppm_k`` per component and ``mm_lorentz_fraction``; with ``first_points_amp``
        ``first_point_amp_k`` (NAA heights) and ``first_point_phase_deg_k`` for k < :data:`FIRST_POINTS`.
    """
    if not isinstance(basis, BasisSet):
        raise MRSError(f"basis must be a BasisSet, got {type(basis).__name__}")
    n = int(n)
    if n < 1:
        raise MRSError(f"n must be at least 1, got {n}")
    config = config or SynthesisConfig()
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    param_seq, noise_seq = seq.spawn(2)
    mm = _parametric_mm_row(basis) if config.varies_mm else None
    mm_row, mm_scale = mm if mm is not None else (None, 1.0)
    truth = _draw_parameters(basis, n, snr, config, np.random.default_rng(param_seq), concentrations,
                             vary_mm=mm_row is not None)
    names = basis.names
    ref_name, _, ref_amp = snr_reference_amplitude(basis)
    naa_row = names.index(ref_name)
    basis_fids, extra = basis.fids, []
    if tuple(config.cr_ch2_scale) != (1.0, 1.0) or tuple(config.cho_multiplet_scale) != (1.0, 1.0):
        # drawn after every other parameter, from their generator: the rest is the same with and without them
        basis_fids, names = _with_part_rows(basis, truth, np.random.default_rng(param_seq.spawn(1)[0]), config)
        extra = names[len(basis.names):]
    if max(config.first_points_amp) > 0:  # from a generator of their own: every other draw stays the same
        fp_rng = np.random.default_rng(param_seq.spawn(1)[0])
        for k in range(FIRST_POINTS):
            truth[f"first_point_amp_{k}"] = _uniform(fp_rng, config.first_points_amp, n)
            truth[f"first_point_phase_deg_{k}"] = fp_rng.uniform(-180.0, 180.0, n)
    t = basis.time.astype(np.float64)
    ppm_rel = -np.fft.fftfreq(basis.n_points, basis.dwell_s) / basis.field_mhz  # ppm - ref_ppm, unshifted fft order
    max_shift = float(config.metab_shift_hz)
    ja = _jacobi_anger(max_shift, basis.n_points, basis.dwell_s) if max_shift > 0 else np.ones((1, basis.n_points),
                                                                                             np.complex64)
    with one_blas_thread():
        shifted = _shifted_basis(basis_fids, ja)
    t32 = t.astype(np.float32)
    starts = list(range(0, n, chunk_size))
    rngs = [np.random.default_rng(s) for s in noise_seq.spawn(len(starts))]
    fids = np.empty((n, basis.n_points), np.complex64)
    sd = np.empty(n)
    height = np.empty(n)

    def work(i):
        rows = np.arange(starts[i], min(starts[i] + chunk_size, n))
        fids[rows], sd[rows], height[rows] = _chunk(shifted, t32, ppm_rel, truth, rows, names, len(ja),
                                                    max_shift or 1.0,
                                                    ref_amp, naa_row, basis.field_mhz, basis.ref_ppm, rngs[i],
                                                    config.baseline_components, mm_row, mm_scale)

    n_jobs = n_jobs or min(2, os.cpu_count() or 1)
    # one BLAS thread, always: nested BLAS threads would fight over the cores, and a threaded BLAS sums in another
    # order, so the same seed would not give the same bits with and without workers (or on another machine)
    with one_blas_thread():
        if n_jobs > 1 and len(starts) > 1:
            with ThreadPoolExecutor(n_jobs) as pool:
                list(pool.map(work, range(len(starts))))
        else:
            for i in range(len(starts)):
                work(i)
    for row in extra:  # the part rows are a lineshape of their metabolites, not signals of their own
        truth.pop(row)
        truth.pop(f"{row}_shift_hz")
    truth["noise_sd"] = sd
    truth["naa_height"] = height
    return fids, truth


def measure_snr(fid: np.ndarray, noise_free: np.ndarray, ppm: np.ndarray, peak_ppm: tuple[float, float] = (1.95, 2.07),
                noise_ppm: tuple[float, float] = (-4.0, -1.0)) -> float:
    """Empirical SNR of one spectrum: max |noise-free spectrum| in ``peak_ppm`` over the std of the real part of
    (fid - noise_free) spectrum in a signal-free ``noise_ppm`` window (both in ``np.fft.fft`` units)."""
    spec_clean = np.abs(np.fft.fftshift(np.fft.fft(noise_free)))
    noise = np.fft.fftshift(np.fft.fft(np.asarray(fid) - noise_free)).real
    peak = spec_clean[(ppm > peak_ppm[0]) & (ppm < peak_ppm[1])].max()
    sel = (ppm > noise_ppm[0]) & (ppm < noise_ppm[1])
    return float(peak / noise[sel].std())

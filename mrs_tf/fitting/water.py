"""Absolute concentrations (mM) from an unsuppressed water reference.

mrs-tf's basis is normalised so that 1 mM of a metabolite gives its protons' worth of FID amplitude at t = 0 (NAA's
singlet: 3 per mM; see :mod:`mrs_tf.synth`); water has 2 protons. With ``A_W`` the water reference's amplitude at
t = 0 (same receiver scale as the metabolite data, from an HLSVD fit of the water line) and ``a_m`` an amplitude in
basis units (network or QUEST)::

    [m] (mM) = a_m / A_W * 2 * W_eff * R_m

``W_eff`` (mM) is the MR-visible water concentration of the voxel corrected for tissue content and water relaxation,
``R_m`` the metabolite relaxation correction (>= 1). Either give both directly (``water_conc_mm``,
``metab_relax_factor``; e.g. the ISMRM 2016 fitting challenge's 29,697 mM and 1.206) or let them follow from
tissue fractions and relaxation times (Gasparovic et al. 2006)::

    W_eff = 55,510 mM * sum_t f_t * wc_t * exp(-TE / T2_t) * (1 - exp(-TR / T1_t)) / (1 - f_CSF)
    R_m   = 1 / (exp(-TE / T2_m) * (1 - exp(-TR / T1_m)))

with volume fractions ``f_t`` of GM, WM and CSF, their water contents ``wc_t`` (GM 0.78, WM 0.65, CSF 0.97) and
3 T relaxation times (water T1 GM 1.82 s, WM 1.08 s, CSF 4.16 s; T2 GM 99 ms, WM 69 ms, CSF 503 ms; metabolites
T1 1.35 s, T2 160 ms); the division by ``1 - f_CSF`` assumes metabolites only in tissue.

Basis normalisation. ``a_m`` is in the basis's units, so the formula needs to know how much FID amplitude the basis
gives per proton per unit concentration (``basis_protons`` of :func:`scale_table`): 1 for mrs-tf's basis, anything
for a foreign one (LCModel basis sets are often scaled to a reference peak, jMRUI ones arbitrarily, FSL-MRS
normalises internally). :func:`basis_amplitude_per_proton` measures it from the basis itself, as FSL-MRS does
with a reference metabolite: the t = 0 amplitude of the uncoupled CH3 singlets of Cr (3.03 ppm), PCr (3.03 ppm) and
NAA (2.01 ppm), 3 protons each, from an HLSVD of each signal (independent of linewidth, phase and the other lines
of the molecule). The command line applies it to every water-scaled table (``--basis-amplitude-per-proton``
overrides); a basis whose reference signals disagree (metabolites normalised one by one) is reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mrs_tf.core.errors import BasisError, MRSError, ProtocolError

__all__ = ["PURE_WATER_MM", "REFERENCE_SINGLETS", "WaterScaling", "basis_amplitude_per_proton", "water_amplitude",
           "scale_table"]

PURE_WATER_MM = 55_510.0

#: Uncoupled CH3 singlets that fix a basis set's normalisation: (metabolite, ppm, protons) (Govindaraju et al. 2000)
REFERENCE_SINGLETS = (("Cr", 3.027, 3), ("PCr", 3.029, 3), ("NAA", 2.008, 3))


@dataclass(frozen=True)
class WaterScaling:
    """Settings of water scaling (times in seconds, fractions 0-1). ``water_conc_mm`` / ``metab_relax_factor``
    override what the tissue model gives."""

    te_s: float = 0.030
    tr_s: float = 2.0
    f_gm: float = 0.6
    f_wm: float = 0.4
    f_csf: float = 0.0
    water_content: tuple = (0.78, 0.65, 0.97)           # GM, WM, CSF
    t1_water_s: tuple = (1.82, 1.08, 4.16)
    t2_water_s: tuple = (0.099, 0.069, 0.503)
    t1_metab_s: float = 1.35
    t2_metab_s: float = 0.160
    water_conc_mm: float | None = None
    metab_relax_factor: float | None = None

    def effective_water_mm(self) -> float:
        """``W_eff`` (mM): the override, or the tissue/relaxation model of the module docstring."""
        if self.water_conc_mm is not None:
            if not self.water_conc_mm > 0:
                raise MRSError(f"water concentration must be > 0 mM, got {self.water_conc_mm}")
            return float(self.water_conc_mm)
        fractions = (self.f_gm, self.f_wm, self.f_csf)
        if any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=0.02):
            raise MRSError(f"tissue fractions GM {self.f_gm}, WM {self.f_wm}, CSF {self.f_csf} must be >= 0 and "
                           f"sum to 1")
        if self.f_csf >= 1:
            raise MRSError("a voxel of pure CSF has no metabolites to scale")
        total = sum(f * wc * math.exp(-self.te_s / t2) * (1 - math.exp(-self.tr_s / t1))
                    for f, wc, t1, t2 in zip(fractions, self.water_content, self.t1_water_s, self.t2_water_s))
        return PURE_WATER_MM * total / (1 - self.f_csf)

    def metabolite_factor(self) -> float:
        """``R_m`` (>= 1): the override, or ``1 / (exp(-TE/T2) (1 - exp(-TR/T1)))`` of the metabolites."""
        if self.metab_relax_factor is not None:
            if not self.metab_relax_factor > 0:
                raise MRSError(f"metabolite relaxation factor must be > 0, got {self.metab_relax_factor}")
            return float(self.metab_relax_factor)
        return 1.0 / (math.exp(-self.te_s / self.t2_metab_s) * (1 - math.exp(-self.tr_s / self.t1_metab_s)))


def water_amplitude(fids, dwell_s: float, field_mhz: float, ppm_range=(4.0, 5.4), ref_ppm: float = 4.65,
                    n_components: int = 8) -> np.ndarray:
    """Amplitude at t = 0 (|sum of the complex amplitudes| of the HLSVD components within ``ppm_range``) of each
    water reference FID; phase-independent, ignores first-point artefacts and metabolite residues."""
    from mrs_tf.preprocess.hlsvd import hlsvd
    from mrs_tf.preprocess.spectra import as_fid_matrix

    arr = as_fid_matrix(fids)
    if not np.all(np.isfinite(arr)):
        raise MRSError("the water reference contains NaN or Inf")
    out = np.empty(len(arr))
    for i, fid in enumerate(arr):
        comps = hlsvd(fid, dwell_s, n_components, min(len(fid), 1024))
        ppm = ref_ppm - comps.frequency_hz / field_mhz
        sel = (ppm >= min(ppm_range)) & (ppm <= max(ppm_range)) & (comps.damping > 0)
        out[i] = float(np.abs(np.sum(comps.amplitude[sel])))
        if not out[i] > 0:
            raise MRSError(f"water reference {i}: no water signal within {min(ppm_range)}-{max(ppm_range)} ppm")
    return out


def basis_amplitude_per_proton(basis, window_ppm: float = 0.1) -> tuple[float, dict]:
    """FID amplitude at t = 0 per proton per unit concentration of ``basis`` (1.0 for mrs-tf's own basis).

    Measured on each of :data:`REFERENCE_SINGLETS` the basis holds: the summed HLSVD components within
    ``window_ppm`` of the singlet, divided by its 3 protons. Returns ``(median, {metabolite: value})``; raises
    :class:`BasisError` when the basis holds none of them or a singlet is not found."""
    from mrs_tf.preprocess.hlsvd import hlsvd

    values = {}
    for name, ppm0, protons in REFERENCE_SINGLETS:
        if name not in basis.names:
            continue
        comps = hlsvd(basis[name], basis.dwell_s, 24, min(basis.n_points, 1024))
        near = np.abs(comps.ppm(basis.field_mhz, basis.ref_ppm) - ppm0) < window_ppm
        amp = float(np.abs(comps.amplitude[near].sum()))
        if not amp > 0:
            raise BasisError(f"basis signal {name}: no singlet within {window_ppm} ppm of {ppm0} ppm; is the basis "
                             f"referenced to {basis.ref_ppm} ppm? Give the normalisation explicitly "
                             f"(--basis-amplitude-per-proton)")
        values[name] = amp / protons
    if not values:
        raise BasisError(f"cannot tell the basis normalisation: it holds none of "
                         f"{', '.join(n for n, _, _ in REFERENCE_SINGLETS)}; give it explicitly "
                         f"(--basis-amplitude-per-proton: FID amplitude at t = 0 per proton per unit concentration)")
    return float(np.median(list(values.values()))), values


def check_water_protocol(water: dict, data: dict) -> None:
    """ProtocolError when a water reference does not share the metabolite data's points, dwell and field."""
    w_n, d_n = water["fids"].shape[1], data["fids"].shape[1]
    problems = []
    if w_n != d_n:
        problems.append(f"{w_n} vs {d_n} points")
    if not math.isclose(water["dwell_s"], data["dwell_s"], rel_tol=1e-3):
        problems.append(f"dwell {water['dwell_s']:.6g} vs {data['dwell_s']:.6g} s")
    if not math.isclose(water["field_mhz"], data["field_mhz"], rel_tol=5e-3):
        problems.append(f"{water['field_mhz']:g} vs {data['field_mhz']:g} MHz")
    if problems:
        raise ProtocolError("the water reference's protocol differs from the metabolite data's (water vs data: "
                            + ", ".join(problems) + ")")


def scale_table(table: dict, names, water_amp, scaling: WaterScaling, basis_protons: float = 1.0) -> dict:
    """Add ``<name>_mM`` (and ``<name>_sd_mM`` / ``<name>_crlb_mM`` where the table has them) for every name.

    ``water_amp``: one value, or one per row. ``basis_protons``: the basis's FID amplitude at t = 0 per proton per
    unit concentration (:func:`basis_amplitude_per_proton`; 1 for mrs-tf's basis): an amplitude ``a`` in basis
    units is ``a * basis_protons`` proton-units of signal, compared with the ``A_W / 2`` of water."""
    amp = np.asarray(water_amp, float)
    factor = 2.0 * scaling.effective_water_mm() * scaling.metabolite_factor() * basis_protons / amp
    for name in names:
        if name not in table:
            continue
        table[f"{name}_mM"] = np.asarray(table[name], float) * factor
        for suffix in ("_sd", "_crlb"):
            if f"{name}{suffix}" in table:
                table[f"{name}{suffix}_mM"] = np.asarray(table[f"{name}{suffix}"], float) * factor
    _flag_implausible_tcr(table)
    return table


#: (low, high) total creatine (Cr+PCr, mM) outside which a water-scaled row is flagged ``implausible_mM``: brains
#: hold about 5-10 mM; the range leaves a factor of 2-3 for tissue, relaxation and partial volume
TCR_MM_RANGE = (2.0, 25.0)


def _flag_implausible_tcr(table) -> None:
    """Status ``implausible_mM`` (message kept after the new one) on rows whose water-scaled tCr is outside
    :data:`TCR_MM_RANGE`: a Philips volunteer's water-suppressed scan given as its own water reference gave NAA 218,
    Cr 69 mM with status ``ok``. Rows already flagged keep their status; the message says it too."""
    if "Cr+PCr_mM" not in table:
        return
    from mrs_tf.core.table import status_columns

    tcr = np.atleast_1d(np.asarray(table["Cr+PCr_mM"], float))
    status, message = status_columns(table, len(tcr))
    lo, hi = TCR_MM_RANGE
    for i in np.flatnonzero(np.isfinite(tcr) & ((tcr < lo) | (tcr > hi))):
        text = (f"tCr (Cr+PCr) is {tcr[i]:.3g} mM after water scaling, outside any brain's (about 5-10 mM; flagged "
                f"outside {lo:g}-{hi:g} mM): the scaling is wrong, not the ratios to tCr. The water-suppressed scan "
                f"given as the water reference (--water takes the unsuppressed one)? A reference of other averages, "
                f"gain or voxel?")
        if status[i] == "ok":
            status[i] = "implausible_mM"
        message[i] = text + (f"; {message[i]}" if message[i] else "")
    table["status"], table["message"] = status, message

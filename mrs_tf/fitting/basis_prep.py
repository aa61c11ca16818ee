"""Basis hygiene: a basis set from anywhere made fit to quantify a scan, each action said once.

``prepare_basis(basis, n_points=..., dwell_s=...)`` (used by ``mrs-tf fit``/``quantify --method quest`` and
``train --basis``):

1. **reference peaks removed**: basis files often carry a TMS/DSS singlet at 0 ppm in every signal (LCModel's
   habit); it is taken out by HLSVD (:func:`mrs_tf.hlsvd.remove_band`) where found; a signal that is only water or a
   reference (``H2O``, ``TMS``, ``DSS``) is dropped;
2. **ppm reference measured and corrected**: the positions of the NAA (2.008 ppm) and Cr/PCr (3.027/3.029 ppm)
   CH3 singlets (Govindaraju et al. 2000) are measured by HLSVD and the whole basis is shifted when they sit off by
   more than ``tolerance_ppm`` (bases referenced to water at 4.68 ppm sit 0.03 ppm low on mrs-tf's 4.65 axis);
3. **resampled** to the data's points and dwell time (band-limited, :meth:`BasisSet.resample`);
4. (``free_mm=True``: ``mrs-tf fit``) **mrs-tf's one parametric MM signal split into free components** MM09 ...
   MM20 (:func:`free_mm_components`): with the one signal, lipid lines drove its amplitude and its tied 3.0-3.8 ppm
   lines into Cr, Cho, Ins and Glu;
5. **macromolecules and lipids added** when the basis has no MM signal, as LCModel does: mrs-tf's parametric MM
   components (:data:`mrs_tf.macromolecules.MM_COMPONENTS`, grouped as LCModel's MM09 ... MM20) and
   lipid lines Lip09, Lip13, Lip20 (LCModel manual's positions and widths), each a free signal, scaled to the basis's
   own units (:func:`mrs_tf.water.basis_amplitude_per_proton`: one unit = one proton per unit concentration).

Unknown signals are kept. A brain basis (one with NAA and Cr) that lacks metabolites of mrs-tf's brain set is said so
(:func:`missing_brain_metabolites`): a fit gives their signal to their neighbours. Osprey's PRESS TE 35 bases have
no Gly, Glc or Ala; LCModel with one of them gives Ins/tCr 12-14 % higher on two Philips volunteers than with the
same basis plus mrs-tf's Gly, Glc and Ala (``benchmarks/invivo_vs_lcmodel.py``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from mrs_tf.physics.basis import BasisSet
from mrs_tf.core.errors import BasisError
from mrs_tf.physics.macromolecules import MM_COMPONENTS, mm_fid
from mrs_tf.physics.metabolites import METABOLITES, MM_NAME

__all__ = ["MM_GROUPS", "LIPID_COMPONENTS", "prepare_basis", "reference_offset_ppm", "mm_and_lipid_signals",
           "free_mm_components",
           "PreparedBasis", "missing_brain_metabolites", "missing_signals"]

#: LCModel-style macromolecule signals: name -> components of :data:`MM_COMPONENTS` (ppm, FWHM ppm, protons)
MM_GROUPS: dict[str, tuple] = {
    "MM09": (MM_COMPONENTS[0],), "MM12": (MM_COMPONENTS[1],), "MM14": (MM_COMPONENTS[2],),
    "MM17": (MM_COMPONENTS[3],),
    # the 3.0-3.8 ppm components tied to the 2.0 ppm group (LCModel ties its 3.0 ppm line to MM20): free on their
    # own they trade against Cr, Cho and the baseline
    "MM20": MM_COMPONENTS[4:],
}
#: lipid signals (ppm, FWHM ppm, protons): LCModel manual's simulated Lip09, Lip13 (a + b), Lip20
LIPID_COMPONENTS: dict[str, tuple] = {
    "Lip09": ((0.89, 0.14, 3.0),),
    "Lip13": ((1.28, 0.15, 2.0), (1.28, 0.089, 2.0)),
    "Lip20": ((2.04, 0.15, 1.33), (2.25, 0.15, 0.67), (2.80, 0.20, 0.87)),
}
#: signals that are not metabolites: dropped from a basis before fitting
NON_METABOLITES = ("h2o", "water", "tms", "dss", "ref")


_SAID: set = set()


@dataclass
class PreparedBasis:
    basis: BasisSet
    actions: list = field(default_factory=list)


def _singlet_ppm(fid: np.ndarray, basis: BasisSet, ppm0: float, window: float = 0.1) -> float | None:
    from mrs_tf.preprocess.hlsvd import hlsvd

    comps = hlsvd(fid, basis.dwell_s, 24, min(basis.n_points, 1024))
    ppm = comps.ppm(basis.field_mhz, basis.ref_ppm)
    near = np.abs(ppm - ppm0) < window
    if not near.any():
        return None
    k = np.flatnonzero(near)[np.argmax(np.abs(comps.amplitude[near]))]
    return float(ppm[k])


def reference_offset_ppm(basis: BasisSet) -> float | None:
    """Median (measured - published) ppm of the NAA and Cr/PCr CH3 singlets; None when the basis has none."""
    offsets = []
    from mrs_tf.fitting.water import REFERENCE_SINGLETS  # (name, ppm, protons): the singlets that also fix the basis's units

    for name, ppm0, _ in REFERENCE_SINGLETS:
        if name in basis.names:
            found = _singlet_ppm(basis[name], basis, ppm0)
            if found is not None:
                offsets.append(found - ppm0)
    return float(np.median(offsets)) if offsets else None


def _shift(basis: BasisSet, fids: np.ndarray, dppm: float) -> np.ndarray:
    """Move every signal by ``dppm`` (positive: to higher ppm = lower frequency on mrs-tf's axis)."""
    return fids * np.exp(-2j * np.pi * dppm * basis.field_mhz * basis.time)[None, :]


def remove_reference_peak(fid: np.ndarray, basis: BasisSet, band=(-0.2, 0.2), rel: float = 0.002
                          ) -> tuple[np.ndarray, bool]:
    """``fid`` without a reference singlet inside ``band`` (ppm; TMS/DSS at 0 ppm), and whether it had one.

    A peak counts when the magnitude spectrum inside the band reaches ``rel`` of its maximum elsewhere (no brain
    metabolite has a line there). It is fitted as one Lorentzian line ``A exp((2 pi i f - pi L) t)`` to the band's
    spectral bins (with a complex constant and slope for the tails of the other lines; ``f`` and ``L`` by nonlinear
    least squares, the rest linearly) and subtracted from the whole FID: the metabolite's own lines stay
    untouched."""
    import scipy.optimize

    t = basis.time
    ppm = basis.fft_ppm
    lo, hi = min(band), max(band)
    inside = np.flatnonzero((ppm >= lo) & (ppm <= hi))
    spec = np.fft.fft(fid)
    outside = np.abs(spec[(ppm < lo - 0.1) | (ppm > hi + 0.1)])
    mag = np.abs(spec[inside]) if len(inside) else np.zeros(1)
    # a peak: tall against the rest of the spectrum, and standing out of the band's own floor (leakage is flat)
    if len(inside) < 8 or not len(outside) or mag.max() < rel * outside.max() or mag.max() < 5 * np.median(mag):
        return fid, False
    x = (ppm[inside] - ppm[inside].mean())

    def solve(p):
        line = np.exp((2j * np.pi * p[0] - np.pi * p[1]) * t)
        cols = np.stack([np.fft.fft(line)[inside], np.ones(len(inside)), x])
        amp = np.linalg.lstsq(cols.T, spec[inside], rcond=None)[0]
        return amp, line, spec[inside] - amp @ cols

    def resid(p):
        r = solve(p)[2]
        return np.concatenate([r.real, r.imag])

    f0 = (basis.ref_ppm - ppm[inside][np.argmax(np.abs(spec[inside]))]) * basis.field_mhz
    f_lo, f_hi = sorted((basis.ref_ppm - np.array([lo, hi])) * basis.field_mhz)
    best = min((scipy.optimize.least_squares(resid, [f0, lw], bounds=([f_lo, 0.0], [f_hi, 10.0]))
                for lw in (0.5, 3.0)), key=lambda r: r.cost)
    amp, line, _ = solve(best.x)
    return fid - amp[0] * line, True


def mm_and_lipid_signals(basis: BasisSet, lipids: bool = True, units: float | None = None) -> tuple[list, np.ndarray]:
    """(names, fids) of the LCModel-style MM (and lipid) signals on ``basis``'s sampling, in its units
    (``units``: its FID amplitude per proton; measured when None)."""
    from mrs_tf.fitting.water import basis_amplitude_per_proton

    if units is None:
        units = basis_amplitude_per_proton(basis)[0]
    groups = dict(MM_GROUPS, **(LIPID_COMPONENTS if lipids else {}))
    fids = np.array([mm_fid(basis.n_points, basis.dwell_s, basis.field_mhz, basis.ref_ppm, comps) * units
                     for comps in groups.values()])
    return list(groups), fids


def free_mm_components(basis: BasisSet) -> BasisSet | None:
    """``basis`` with mrs-tf's one parametric MM signal (:data:`MM_COMPONENTS` times a scale, as
    :func:`mrs_tf.physics.basis.simulate_basis` and ``mrs-tf basis simulate`` write it) replaced by the LCModel-style
    free components of :data:`MM_GROUPS` (MM09, MM12, MM14, MM17, MM20; their sum is the signal replaced), each a
    signal of its own; None where the basis has no such signal (none, or a measured or foreign MM, which keeps its
    shape).

    Why: the one signal ties the MM's 3.0-3.8 ppm lines to its 0.9-2.0 ppm ones, so lipid lines (a voxel near the
    skull) drive the whole signal up and its high-ppm lines take Cr's, Cho's, Ins's and Glu's signal. QUEST's in vivo
    fit of 256 spectra (127.7 MHz TE 35, lipids 0-1.2 NAA heights, SNR 20-80), median error of the ratios to tCr
    where the lipid band scores 0.6-0.8 NAA heights: tCho +22...+27 %, Ins +53...+58 %, Glu -25...-40 % with the one
    signal, +3...+4, +5...+15, -3...-5 % with the free components; without lipids they cost Ins/tCr 3 points of MAPE
    (benchmarks/RESULTS.md)."""
    from mrs_tf.physics.synth import _parametric_mm_row

    # within 1 % of the peak: mrs-tf's signal also after a band-limited resampling (3e-4 at 2 kHz); a measured MM
    # differs by tens of per cent
    found = _parametric_mm_row(basis, tolerance=0.01)
    if found is None:
        return None
    row, scale = found
    names, fids = mm_and_lipid_signals(basis, lipids=False, units=scale)
    keep = [i for i in range(len(basis.names)) if i != row]
    return BasisSet([basis.names[i] for i in keep] + names, np.concatenate([basis.fids[keep], fids]),
                    basis.dwell_s, basis.field_mhz, basis.ref_ppm, dict(basis.protocol, mm_model="free MM components"))


def parametric_mm(basis: BasisSet, units: float | None = None) -> np.ndarray:
    """mrs-tf's single parametric MM signal (one unit: the whole :data:`MM_COMPONENTS` set) in ``basis``'s units."""
    from mrs_tf.fitting.water import basis_amplitude_per_proton

    if units is None:
        try:
            units = basis_amplitude_per_proton(basis)[0]
        except BasisError:
            units = 1.0
    return mm_fid(basis.n_points, basis.dwell_s, basis.field_mhz, basis.ref_ppm) * units


def missing_brain_metabolites(names) -> list[str]:
    """The metabolites of mrs-tf's human-brain set (:data:`mrs_tf.metabolites.METABOLITES`) that a basis with
    ``names`` lacks, when it is a brain basis (holds NAA and Cr); [] otherwise."""
    names = set(names)
    if not {"NAA", "Cr"} <= names:
        return []
    return [n for n in METABOLITES if n not in names]


def missing_signals(basis: BasisSet, names, units: float, refocusing_pulse=None) -> np.ndarray:
    """mrs-tf's simulated signals of ``names`` for ``basis``'s protocol (its ``sequence``, ``te_ms`` and, if stated,
    ``te1_ms``/``te2_ms``; field, points, dwell time and reference) in its units (``units``: FID amplitude per
    proton; mrs-tf's basis has 1). :class:`BasisError` when the basis does not state its echo time."""
    from mrs_tf.physics.basis import simulate_basis

    protocol = basis.protocol
    te = protocol.get("te_ms")
    sequence = str(protocol.get("sequence") or "press").lower()
    if not te:
        raise BasisError("the basis does not state its echo time (te_ms): mrs-tf cannot simulate the signals it "
                         "lacks for it")
    sim = simulate_basis(sequence, basis.field_mhz, float(te), protocol.get("te1_ms"), protocol.get("te2_ms"),
                         n_points=basis.n_points, bandwidth_hz=basis.bandwidth_hz, metabolites=list(names),
                         ref_ppm=basis.ref_ppm, refocusing_pulse=refocusing_pulse)
    return sim.fids * units


def prepare_basis(basis: BasisSet, *, n_points: int | None = None, dwell_s: float | None = None,
                  remove_references: bool = True, reference: bool = True, add_mm: bool = True,
                  lipids: bool = True, tolerance_ppm: float = 0.005, complete: bool = False,
                  refocusing_pulse=None, free_mm: bool = False, log=None) -> PreparedBasis:
    """Clean ``basis`` for fitting (see the module docstring); ``log`` (default: stderr) gets one line per action.
    ``complete``: add mrs-tf's simulation of the brain metabolites the basis lacks (:func:`missing_signals`, with
    ``refocusing_pulse``: None or "ideal" for ideal pulses, or a name of :data:`mrs_tf.physics.pulses.REFOCUSING_PULSES`), in
    its units and on its (corrected) ppm axis, so that a brain's Gly, Glc, ... have a signal of their own.
    ``free_mm`` (``mrs-tf fit``): mrs-tf's one parametric MM signal, where the basis has it, split into free
    components (:func:`free_mm_components`); off for training, whose synthesis varies that signal's shape itself.

    Returns a :class:`PreparedBasis` (``basis``, ``actions``: what was done, in words)."""
    actions = []
    names = list(basis.names)
    fids = basis.fids.copy()
    protocol = dict(basis.protocol)
    from mrs_tf.formats.first_point import FIRST_POINT_RESTORED

    if protocol.get("first_point") == FIRST_POINT_RESTORED:  # done by BasisSet.load, before any resampling
        actions.append("the file stored each signal's first point halved (the DFT's trapezoid weight): doubled back")
    drop = [n for n in names if n.lower() in NON_METABOLITES] if remove_references else []
    if drop:
        keep = [i for i, n in enumerate(names) if n not in drop]
        names, fids = [names[i] for i in keep], fids[keep]
        actions.append(f"dropped non-metabolite signal(s) {', '.join(drop)}")
    if remove_references:
        cleaned = []
        for i, name in enumerate(names):
            fids[i], found = remove_reference_peak(fids[i], basis)
            if found:
                cleaned.append(name)
        if cleaned:
            actions.append(f"removed a reference peak near 0 ppm (TMS/DSS) from {len(cleaned)} signal(s)")
    work = BasisSet(names, fids, basis.dwell_s, basis.field_mhz, basis.ref_ppm, protocol)
    if reference:
        off = reference_offset_ppm(work)
        if off is not None and abs(off) > tolerance_ppm:
            work = BasisSet(names, _shift(work, work.fids, -off), work.dwell_s, work.field_mhz, work.ref_ppm,
                            dict(protocol, reference_shift_ppm=round(-off, 4)))
            actions.append(f"basis singlets sat {off:+.3f} ppm off (referenced to {work.ref_ppm - off:.3f} ppm "
                           f"water?): shifted by {-off:+.3f} ppm")
    if (n_points is not None and n_points != work.n_points) or (
            dwell_s is not None and not np.isclose(dwell_s, work.dwell_s, rtol=1e-6)):
        before = f"{work.n_points} points at {work.bandwidth_hz:g} Hz"
        work = work.resample(dwell_s=dwell_s, n_points=n_points)
        actions.append(f"resampled from {before} to {work.n_points} points at {work.bandwidth_hz:g} Hz")
    if free_mm:
        split = free_mm_components(work)
        if split is not None:
            work = split
            actions.append(f"mrs-tf's parametric MM signal fitted as free components {', '.join(MM_GROUPS)} (lipid "
                           f"lines would drive the one signal's 3.0-3.8 ppm lines into Cr, Cho, Ins and Glu)")
    has_mm = any(n == MM_NAME or n.upper().startswith("MM") or n.lower().startswith("mac") for n in work.names)
    missing = missing_brain_metabolites(work.names)
    units, units_error = None, None  # the basis's FID amplitude per proton (its singlets), measured once if needed
    if (add_mm and not has_mm) or (missing and complete):
        from mrs_tf.fitting.water import basis_amplitude_per_proton

        try:
            units = basis_amplitude_per_proton(work)[0]
        except BasisError as exc:
            units_error = exc
    if add_mm and not has_mm:
        if units is not None:
            extra_names, extra = mm_and_lipid_signals(work, lipids, units)
            work = BasisSet(list(work.names) + extra_names, np.vstack([work.fids, extra]), work.dwell_s,
                            work.field_mhz, work.ref_ppm, dict(work.protocol, mm_model="mrs-tf MM + lipids (added)"))
            actions.append(f"added {', '.join(extra_names)} (the basis has no macromolecules), "
                           f"{units:.3g} FID units per proton")
        else:
            actions.append("no MM added: the basis's units could not be measured (no NAA/Cr/PCr singlet)")
    if missing and complete:
        try:
            if units_error is not None:
                raise units_error
            extra = missing_signals(work, missing, units, refocusing_pulse)
        except BasisError as exc:
            raise BasisError(f"cannot complete the basis with {', '.join(missing)}: {exc}") from None
        work = BasisSet(list(work.names) + missing, np.vstack([work.fids, extra]), work.dwell_s, work.field_mhz,
                        work.ref_ppm, dict(work.protocol, completed_with=missing))
        sequence = str(work.protocol.get("sequence") or "press").upper()
        actions.append(f"added mrs-tf's {', '.join(missing)} ({sequence} TE {float(work.protocol['te_ms']):g} ms, "
                       f"{refocusing_pulse or 'ideal'} pulses), "
                       f"{units:.3g} FID units per proton")
        missing = []
    if missing:
        ranges = [METABOLITES[n].prior_mm for n in missing]
        actions.append(f"no {', '.join(missing)} in the basis (brain: {min(r[0] for r in ranges):g}-"
                       f"{max(r[1] for r in ranges):g} mM each): a fit gives their signal to their neighbours "
                       f"(without Gly and Glc, Ins); --complete-basis adds mrs-tf's")
    for a in actions:
        if log is not None:
            log(a)
        elif a not in _SAID:  # each action said once per process (a command prepares the same basis repeatedly)
            _SAID.add(a)
            print(f"mrs-tf: basis: {a}", file=sys.stderr)
    return PreparedBasis(work, actions)

"""Metabolite knowledge: spin systems, names and concentration priors of the human-brain basis.

Each metabolite is a list of :class:`SpinSystem` s. A spin system is a group of protons that couple to one another
(chemical shifts in ppm, scalar couplings J in Hz); protons in different systems of one molecule do not couple
(they are separated by a carbonyl, a nitrogen or a phosphate, or the coupling is below ~0.5 Hz). A group of
magnetically equivalent, uncoupled protons (a methyl singlet) is one spin with ``scale`` equal to its proton count.

Sources of the numbers (facts, re-typed here):
    * Govindaraju V, Young K, Maudsley AA. Proton NMR chemical shifts and coupling constants for brain metabolites.
      NMR Biomed 2000;13:129-153 (the tables, unless noted).
    * Govind V, Young K, Maudsley AA. Corrigendum. NMR Biomed 2015;28:923-924 (updated values where noted).
    * Concentration ranges: typical healthy adult brain values (de Graaf, In Vivo NMR Spectroscopy, 3rd ed. 2019,
      Table 2.x; Govindaraju 2000), widened slightly at the low end so that the prior covers mild pathology.
Exchangeable amide/hydroxyl protons (NAA NH at 7.82 ppm, Gln NH2, Cr NH) are left out, as in most basis sets: they
exchange with water and lie outside the fitted range.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from mrs_tf.core.errors import MetaboliteError

__all__ = [
    "SpinSystem", "Metabolite", "METABOLITES", "CANONICAL_NAMES", "MM_NAME", "ALL_NAMES",
    "PRIORS_MM", "canonical_name", "canonical_names",
]


@dataclass(frozen=True)
class SpinSystem:
    """A group of mutually coupled spin-1/2 protons.

    Attributes:
        shifts_ppm: chemical shift of each spin (ppm).
        couplings_hz: ``{(i, j): J}`` scalar couplings between spins i < j (Hz).
        scale: multiplies the whole system's signal: the proton count of an equivalent singlet group, or the
            fraction of an anomer (glucose).
    """

    shifts_ppm: tuple[float, ...]
    couplings_hz: dict[tuple[int, int], float] = field(default_factory=dict)
    scale: float = 1.0

    def __post_init__(self) -> None:
        n = len(self.shifts_ppm)
        for (i, j) in self.couplings_hz:
            if not (0 <= i < n and 0 <= j < n and i != j):
                raise ValueError(f"coupling ({i}, {j}) refers to a spin outside 0..{n - 1}")

    @property
    def n_spins(self) -> int:
        return len(self.shifts_ppm)

    def j_matrix(self) -> np.ndarray:
        """Symmetric (n, n) matrix of couplings in Hz."""
        n = self.n_spins
        j = np.zeros((n, n))
        for (a, b), value in self.couplings_hz.items():
            j[a, b] = j[b, a] = value
        return j


def _singlet(ppm: float, protons: float) -> SpinSystem:
    return SpinSystem((ppm,), {}, float(protons))


@dataclass(frozen=True)
class Metabolite:
    """A metabolite: its canonical name, full name, spin systems and default concentration prior (mM)."""

    name: str
    full_name: str
    systems: tuple[SpinSystem, ...]
    prior_mm: tuple[float, float]
    source: str = "Govindaraju 2000"

    @property
    def n_protons(self) -> float:
        """Number of non-exchangeable protons (anomer fractions weighted)."""
        return float(sum(s.scale * s.n_spins for s in self.systems))


def _m(name, full, systems, prior, source="Govindaraju 2000"):
    return Metabolite(name, full, tuple(systems), prior, source)


# --- spin tables --------------------------------------------------------------------------------------------------
# Index conventions below follow the proton labels of Govindaraju 2000 (e.g. Glu: 2, 3, 3', 4, 4').
_METABOLITE_LIST = [
    _m("Ala", "alanine", [
        # CH 3.7746, CH3 1.4667 (3 equivalent protons written out so the CH quartet is right), J = 7.234 Hz
        SpinSystem((3.7746, 1.4667, 1.4667, 1.4667), {(0, 1): 7.234, (0, 2): 7.234, (0, 3): 7.234}),
    ], (0.1, 1.5)),
    _m("Asc", "ascorbate", [
        SpinSystem((4.4965, 4.0072, 3.7469, 3.7194),
                   {(0, 1): 2.07, (1, 2): 6.0, (1, 3): 4.7, (2, 3): -11.5}),
    ], (0.5, 2.0)),
    _m("Asp", "aspartate", [
        SpinSystem((3.8914, 2.8011, 2.6533), {(0, 1): 3.647, (0, 2): 9.107, (1, 2): -17.426}),
    ], (1.0, 2.5)),
    _m("Cr", "creatine", [_singlet(3.0270, 3), _singlet(3.9130, 2)], (3.0, 7.0)),
    _m("GABA", "gamma-aminobutyric acid", [
        # H2, H2' 2.2840; H3, H3' 1.8890; H4, H4' 3.0128
        SpinSystem((2.2840, 2.2840, 1.8890, 1.8890, 3.0128, 3.0128), {
            (0, 2): 5.372, (0, 3): 7.127, (1, 2): 10.578, (1, 3): 6.982,
            (2, 4): 7.755, (2, 5): 6.173, (3, 4): 7.432, (3, 5): 7.933}),
    ], (1.0, 2.0)),
    _m("Glc", "glucose (36 % alpha, 64 % beta anomer)", [
        # alpha: H1..H6, H6'
        SpinSystem((5.2160, 3.5190, 3.6980, 3.3950, 3.8220, 3.8260, 3.7490), {
            (0, 1): 3.80, (1, 2): 9.60, (2, 3): 9.40, (3, 4): 9.90, (4, 5): 1.50, (4, 6): 6.00,
            (5, 6): -12.10}, 0.36),
        # beta
        SpinSystem((4.6300, 3.2300, 3.4730, 3.3870, 3.4500, 3.8820, 3.7070), {
            (0, 1): 8.00, (1, 2): 9.10, (2, 3): 9.40, (3, 4): 8.90, (4, 5): 1.60, (4, 6): 5.40,
            (5, 6): -12.30}, 0.64),
    ], (1.0, 2.0)),
    _m("Gln", "glutamine", [
        # H2 3.7530; H3, H3' 2.1290, 2.1090; H4, H4' 2.4320, 2.4540
        SpinSystem((3.7530, 2.1290, 2.1090, 2.4320, 2.4540), {
            (0, 1): 5.847, (0, 2): 6.500, (1, 2): -14.504, (1, 3): 9.165, (1, 4): 6.324,
            (2, 3): 6.347, (2, 4): 9.209, (3, 4): -15.371}),
    ], (2.0, 6.0)),
    _m("Glu", "glutamate", [
        # H2 3.7433; H3, H3' 2.0375, 2.1200; H4, H4' 2.3378, 2.3520
        SpinSystem((3.7433, 2.0375, 2.1200, 2.3378, 2.3520), {
            (0, 1): 7.331, (0, 2): 4.651, (1, 2): -14.849, (1, 3): 8.406, (1, 4): 6.875,
            (2, 3): 6.413, (2, 4): 8.478, (3, 4): -15.915}),
    ], (6.0, 12.5)),
    _m("Gly", "glycine", [_singlet(3.5480, 2)], (0.3, 1.5)),
    _m("GPC", "glycerophosphocholine", [
        _singlet(3.2120, 9),  # N(CH3)3
        # choline moiety: H7, H7' (OCH2) 4.3120; H8, H8' (NCH2) 3.6590
        SpinSystem((4.3120, 4.3120, 3.6590, 3.6590),
                   {(0, 2): 3.10, (0, 3): 5.90, (1, 2): 5.90, (1, 3): 3.10}),
        # glycerol moiety: H1, H1' 3.6050, 3.6720; H2 3.9030; H3, H3' 3.8710, 3.9460
        SpinSystem((3.6050, 3.6720, 3.9030, 3.8710, 3.9460), {
            (0, 1): -14.78, (0, 2): 5.77, (1, 2): 4.53, (2, 3): 5.77, (2, 4): 4.53, (3, 4): -14.78}),
    ], (0.5, 2.0)),
    _m("GSH", "glutathione", [
        _singlet(3.7690, 2),  # glycine moiety CH2
        # cysteine moiety: alpha 4.5608, beta, beta' 2.9264, 2.9747
        SpinSystem((4.5608, 2.9264, 2.9747), {(0, 1): 7.09, (0, 2): 4.71, (1, 2): -14.06}),
        # glutamate moiety: alpha 3.7690; beta 2.1590, 2.1460; gamma 2.5475, 2.5098
        SpinSystem((3.7690, 2.1590, 2.1460, 2.5475, 2.5098), {
            (0, 1): 6.34, (0, 2): 6.36, (1, 2): -15.48, (1, 3): 6.70, (1, 4): 7.60,
            (2, 3): 7.60, (2, 4): 6.70, (3, 4): -15.92}),
    ], (1.0, 3.0)),
    _m("Ins", "myo-inositol", [
        # H1..H6
        SpinSystem((3.5217, 4.0538, 3.5217, 3.6144, 3.2690, 3.6144), {
            (0, 1): 2.889, (1, 2): 3.006, (2, 3): 9.997, (3, 4): 9.485, (4, 5): 9.482, (0, 5): 9.998}),
    ], (4.0, 9.0)),
    _m("Lac", "lactate", [
        # CH 4.0974, CH3 1.3142, J = 6.933 Hz
        SpinSystem((4.0974, 1.3142, 1.3142, 1.3142), {(0, 1): 6.933, (0, 2): 6.933, (0, 3): 6.933}),
    ], (0.2, 1.0)),
    _m("NAA", "N-acetylaspartate", [
        _singlet(2.0080, 3),  # acetyl CH3
        # aspartate moiety: H2 4.3817; H3, H3' 2.6727, 2.4863
        SpinSystem((4.3817, 2.6727, 2.4863), {(0, 1): 3.861, (0, 2): 9.821, (1, 2): -15.592}),
    ], (7.5, 17.0)),
    _m("NAAG", "N-acetylaspartylglutamate", [
        _singlet(2.0420, 3),  # acetyl CH3
        # aspartyl moiety: H2 4.6063; H3, H3' 2.7203, 2.5207
        SpinSystem((4.6063, 2.7203, 2.5207), {(0, 1): 4.412, (0, 2): 9.515, (1, 2): -15.910}),
        # glutamate moiety: H2 4.1278; H3, H3' 1.8808, 2.0475; H4, H4' 2.1800, 2.1900
        SpinSystem((4.1278, 1.8808, 2.0475, 2.1800, 2.1900), {
            (0, 1): 8.405, (0, 2): 4.616, (1, 2): -14.055, (1, 3): 9.525, (1, 4): 4.854,
            (2, 3): 5.185, (2, 4): 9.875, (3, 4): -15.0}),
    ], (0.5, 2.5)),
    _m("PCh", "phosphocholine", [
        _singlet(3.2080, 9),  # N(CH3)3
        # OCH2 4.2805 (x2), NCH2 3.6410 (x2)
        SpinSystem((4.2805, 4.2805, 3.6410, 3.6410),
                   {(0, 2): 2.284, (0, 3): 7.231, (1, 2): 7.326, (1, 3): 2.285}),
    ], (0.2, 1.0)),
    _m("PCr", "phosphocreatine", [_singlet(3.0290, 3), _singlet(3.9300, 2)], (2.5, 5.5)),
    _m("PE", "phosphoethanolamine", [
        # OCH2 3.9765 (x2), NCH2 3.2160 (x2)
        SpinSystem((3.9765, 3.9765, 3.2160, 3.2160),
                   {(0, 2): 3.182, (0, 3): 6.716, (1, 2): 7.204, (1, 3): 2.980}),
    ], (1.0, 2.0)),
    _m("Scyllo", "scyllo-inositol", [_singlet(3.3400, 6)], (0.1, 0.6)),
    _m("Tau", "taurine", [
        # S-CH2 3.4206 (x2), N-CH2 3.2459 (x2)
        SpinSystem((3.4206, 3.4206, 3.2459, 3.2459),
                   {(0, 2): 6.742, (0, 3): 6.464, (1, 2): 6.403, (1, 3): 6.792}),
    ], (1.0, 3.0)),
]

METABOLITES: dict[str, Metabolite] = {m.name: m for m in _METABOLITE_LIST}
#: The 20 metabolites in canonical order.
CANONICAL_NAMES: tuple[str, ...] = tuple(METABOLITES)
#: Name of the macromolecule signal (modelled in :mod:`mrs_tf.macromolecules`).
MM_NAME = "MM"
#: The 20 metabolites plus MM: the default basis.
ALL_NAMES: tuple[str, ...] = CANONICAL_NAMES + (MM_NAME,)
#: Default prior of the MM amplitude (arbitrary units of the parametric MM model, see mrs_tf.macromolecules).
PRIORS_MM: tuple[float, float] = (6.0, 14.0)

assert len(CANONICAL_NAMES) == 20

# Aliases used by LCModel, jMRUI, FSL-MRS, Osprey and Tarquin. Lower-case keys.
_ALIASES = {
    "pcho": "PCh", "pc": "PCh", "phosphocholine": "PCh",
    "gpc": "GPC",
    "sins": "Scyllo", "si": "Scyllo", "scyllo": "Scyllo", "scyllo-inositol": "Scyllo",
    "mi": "Ins", "ins": "Ins", "myo": "Ins", "myo-inositol": "Ins", "mins": "Ins",
    "mac": "MM", "mm": "MM", "mmbl": "MM", "mms": "MM", "macromolecules": "MM",
    "cre": "Cr", "creatine": "Cr", "pcre": "PCr",
    "lac": "Lac", "lactate": "Lac", "naa": "NAA", "naag": "NAAG", "gaba": "GABA", "glc": "Glc", "glucose": "Glc",
    "gln": "Gln", "glu": "Glu", "gly": "Gly", "gsh": "GSH", "ala": "Ala", "asc": "Asc", "asp": "Asp",
    "pe": "PE", "pcr": "PCr", "cr": "Cr", "tau": "Tau", "taurine": "Tau",
}
# Combinations that must not be used as a single basis signal.
_COMBINED = {"tcho", "tcr", "tnaa", "glx", "cho", "tch", "naa+naag", "cr+pcr", "gpc+pch", "glu+gln", "ins+gly",
             "totcho", "totcr", "totnaa"}


def canonical_name(name: str) -> str:
    """Map a metabolite name used by another tool to mrs-tf's canonical name.

    Accepts the canonical names (``Ala Asc Asp Cr GABA Glc Gln Glu Gly GPC GSH Ins Lac NAA NAAG PCh PCr PE Scyllo
    Tau MM``, case-insensitive) and common aliases (``PCho``, ``sIns``, ``mI``, ``Mac``, ``MMBL``, ``Mac*``...).

    Raises:
        MetaboliteError: for a sum of metabolites (``tCho``, ``Glx``...) or an unknown name.
    """
    if not isinstance(name, str) or not name.strip():
        raise MetaboliteError(f"metabolite name must be a non-empty string, got {name!r}")
    key = name.strip()
    if key in METABOLITES or key == MM_NAME:
        return key
    low = key.lower()
    if low in _ALIASES:
        return _ALIASES[low]
    if low.startswith("mac") or low.startswith("mm"):
        # Mac, Mac1, MacroMolecules, MM09, MM_3T ... -> the single macromolecule signal
        return MM_NAME
    if low in _COMBINED or "+" in low:
        raise MetaboliteError(
            f"{name!r} is a sum of metabolites, not one basis signal; give its components "
            f"(e.g. tCho = GPC + PCh, tCr = Cr + PCr, tNAA = NAA + NAAG, Glx = Glu + Gln)")
    raise MetaboliteError(
        f"unknown metabolite {name!r}; known names: {', '.join(ALL_NAMES)} (and aliases such as PCho, sIns, mI, Mac)")


def canonical_names(names: Iterable[str] | None) -> list[str]:
    """Canonical names of ``names`` (``None``: the 20 metabolites + MM), refusing duplicates."""
    if names is None:
        return list(ALL_NAMES)
    if isinstance(names, str):
        names = [names]
    out = [canonical_name(n) for n in names]
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise MetaboliteError(f"metabolite(s) given more than once: {', '.join(dup)}")
    if not out:
        raise MetaboliteError("no metabolites given")
    return out


def prior_ranges(names: Iterable[str]) -> np.ndarray:
    """(n, 2) array of the default concentration prior [low, high] in mM (MM: arbitrary units)."""
    return np.array([PRIORS_MM if n == MM_NAME else METABOLITES[n].prior_mm for n in names], dtype=float)


def prior_means(names: Iterable[str], unknown: float = 1.0) -> np.ndarray:
    """Mid-point of each default prior (mM; MM in its model's units); ``unknown`` for names without a prior (a
    foreign basis's extra signals). Used as a typical value: QUEST's starting model, the networks' loss weights."""
    return np.array([float(np.mean(PRIORS_MM if n == MM_NAME else METABOLITES[n].prior_mm))
                     if (n == MM_NAME or n in METABOLITES) else unknown for n in names])

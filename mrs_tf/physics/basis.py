"""Basis sets: the :class:`BasisSet` container, simulation of mrs-tf's own basis, and loading/saving files.

Conventions (all of mrs-tf): a basis FID is complex, sampled at ``t = k * dwell_s``; its spectrum is
``np.fft.fftshift(np.fft.fft(fid))`` on the axis ``ppm = ref_ppm - f / field_mhz`` with
``f = np.fft.fftshift(np.fft.fftfreq(n_points, dwell_s))`` (Hz), i.e. ppm decreases with the bin index and the
centre bin is ``ref_ppm`` (4.65, water). This is the NIfTI-MRS (Levitt) convention.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence as Seq

import numpy as np

from mrs_tf.core import __version__
from mrs_tf.core.errors import BasisError, MetaboliteError, ProtocolError
from mrs_tf.formats.first_point import restore_basis_first_point
from mrs_tf.physics.macromolecules import MM_COMPONENTS, mm_fid
from mrs_tf.physics.metabolites import ALL_NAMES, METABOLITES, MM_NAME, canonical_name, canonical_names
from mrs_tf.physics.pulses import REFOCUSING_PULSES, RFPulse
from mrs_tf.physics.spin_sim import make_sequence, simulate_metabolite_fid

__all__ = ["BasisSet", "simulate_basis", "DEFAULT_PROTOCOL", "ppm_axis"]

#: The toolkit's default protocol: 3 T PRESS, TE 30 ms (11 + 19), the ISMRM 2016 fitting challenge's.
DEFAULT_PROTOCOL = dict(sequence="press", field_mhz=123.2, te1_ms=11.0, te2_ms=19.0, n_points=2048,
                        bandwidth_hz=4000.0)

#: Bumped whenever the physics or the spin tables change, so that cached basis sets are recomputed.
SIMULATION_VERSION = "1"


def lagrange_interpolate(fids: np.ndarray, dwell_s: float, t_new: np.ndarray, order: int = 8) -> np.ndarray:
    """FIDs (m, n) sampled every ``dwell_s`` evaluated at times ``t_new`` (s, within the acquisition) by local
    Lagrange interpolation of degree ``order - 1`` (error ~ (2 pi f dwell)^order / order!)."""
    n = fids.shape[1]
    x = np.asarray(t_new, float) / dwell_s
    start = np.clip(np.floor(x).astype(int) - order // 2 + 1, 0, n - order)
    u = x - start  # position inside the stencil, 0..order-1
    weights = np.ones((len(x), order))
    for j in range(order):
        for m in range(order):
            if m != j:
                weights[:, j] *= (u - m) / (j - m)
    nodes = np.arange(order)
    return np.einsum("mnk,nk->mn", fids[:, start[:, None] + nodes[None, :]], weights)


def ppm_axis(n_points: int, dwell_s: float, field_mhz: float, ref_ppm: float = 4.65) -> np.ndarray:
    """ppm of each bin of ``np.fft.fftshift(np.fft.fft(fid))`` (decreasing; ``ref_ppm`` at bin n_points // 2)."""
    f = np.fft.fftshift(np.fft.fftfreq(n_points, dwell_s))
    return ref_ppm - f / field_mhz


@dataclass
class BasisSet:
    """Basis signals of a set of metabolites for one protocol.

    Attributes:
        names: canonical metabolite names, one per row of ``fids``.
        fids: complex array (n_metabolites, n_points): time-domain signal of each metabolite at 1 mM (mrs-tf's own
            basis: ``fid[0]`` = number of protons; foreign basis sets keep their own scaling).
        dwell_s: dwell time (s).
        field_mhz: spectrometer (proton) frequency (MHz).
        ref_ppm: ppm of the centre frequency (receiver reference), 4.65 by default.
        protocol: description of the acquisition (sequence, te_ms, ...) and provenance ('source').
    """

    names: list[str]
    fids: np.ndarray
    dwell_s: float
    field_mhz: float
    ref_ppm: float = 4.65
    protocol: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        fids = np.asarray(self.fids)
        if fids.ndim == 1:
            fids = fids[None, :]
        if fids.ndim != 2:
            raise BasisError(f"basis fids must be a 2-D array (n_metabolites, n_points), got shape {fids.shape}")
        if len(self.names) != fids.shape[0]:
            raise BasisError(f"{len(self.names)} names for {fids.shape[0]} basis signals")
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise BasisError(f"duplicate metabolite names in basis: {', '.join(dup)}")
        bad = [n for n, row in zip(self.names, fids) if not np.all(np.isfinite(row))]
        if bad:
            raise BasisError(f"basis signal(s) contain NaN or Inf: {', '.join(bad)}")
        if fids.shape[1] < 16:
            raise BasisError(f"basis has only {fids.shape[1]} points")
        for key in ("dwell_s", "field_mhz"):
            value = getattr(self, key)
            if value is None or not np.isfinite(value) or value <= 0:
                raise ProtocolError(f"basis {key} must be a positive number, got {value!r}")
        self.fids = fids.astype(np.complex128, copy=False)
        self.dwell_s = float(self.dwell_s)
        self.field_mhz = float(self.field_mhz)
        self.ref_ppm = float(self.ref_ppm)

    # --- axes ------------------------------------------------------------------------------------------------------
    @property
    def n_points(self) -> int:
        return int(self.fids.shape[1])

    @property
    def n_metabolites(self) -> int:
        return len(self.names)

    @property
    def bandwidth_hz(self) -> float:
        return 1.0 / self.dwell_s

    @property
    def time(self) -> np.ndarray:
        """Sampling times (s)."""
        return np.arange(self.n_points) * self.dwell_s

    @property
    def ppm(self) -> np.ndarray:
        """ppm axis of :attr:`spectra` (decreasing, ``ref_ppm`` at the centre bin)."""
        return ppm_axis(self.n_points, self.dwell_s, self.field_mhz, self.ref_ppm)

    @property
    def fft_ppm(self) -> np.ndarray:
        """ppm of each bin of the unshifted ``np.fft.fft(fid)`` (the order the fits observe bands in)."""
        return self.ref_ppm - np.fft.fftfreq(self.n_points, self.dwell_s) / self.field_mhz

    @property
    def spectra(self) -> np.ndarray:
        """``np.fft.fftshift(np.fft.fft(fids), axes=-1)``."""
        return np.fft.fftshift(np.fft.fft(self.fids, axis=-1), axes=-1)

    def index(self, name: str) -> int:
        """Row of metabolite ``name`` (aliases accepted)."""
        key = name if name in self.names else canonical_name(name)
        if key not in self.names:
            raise MetaboliteError(f"metabolite {name!r} is not in this basis ({', '.join(self.names)})")
        return self.names.index(key)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fids[self.index(name)]

    def without(self, names: Iterable[str]) -> "BasisSet":
        """The basis without the signals ``names`` (as the basis spells them, any case, or mrs-tf's aliases; e.g.
        the non-brain signals of a 36-signal Osprey basis: ``["EtOH", "bHB", "bHG", "Phenyl", "Tyros"]``), the
        names left out recorded in ``protocol["omitted"]``. A name the basis does not hold is a
        :class:`MetaboliteError` naming every such name and the basis's signals; leaving out every creatine
        (Cr and PCr, the reference of the ratios) or every signal is refused."""
        names = list(names)
        if not names:
            return self
        lower = {n.lower(): n for n in self.names}
        drop, unknown = [], []
        for name in names:
            hit = lower.get(str(name).strip().lower())
            if hit is None:
                try:
                    hit = canonical_name(name)
                except MetaboliteError:
                    hit = None
                hit = hit if hit in self.names else None
            if hit is None:
                unknown.append(str(name))
            elif hit not in drop:
                drop.append(hit)
        if unknown:
            raise MetaboliteError(f"cannot leave out {', '.join(unknown)}: not in this basis (its signals: "
                                  f"{', '.join(self.names)})")
        keep = [n for n in self.names if n not in drop]
        if not keep:
            raise MetaboliteError("leaving out every signal of the basis leaves nothing to fit")
        if any(n in self.names for n in ("Cr", "PCr")) and not any(n in keep for n in ("Cr", "PCr")):
            raise MetaboliteError("leaving out both Cr and PCr leaves no tCr: every ratio is to Cr+PCr")
        out = self.subset(keep)
        out.protocol["omitted"] = ", ".join(([self.protocol["omitted"]] if self.protocol.get("omitted") else []) + drop)
        return out

    def subset(self, names: Iterable[str]) -> "BasisSet":
        """A basis with only ``names`` (in that order)."""
        rows = [self.index(n) for n in names]
        return BasisSet([self.names[i] for i in rows], self.fids[rows].copy(), self.dwell_s, self.field_mhz,
                        self.ref_ppm, dict(self.protocol))

    def summary(self) -> dict:
        """Plain-dict description (names, field, dwell, points, protocol)."""
        return {"names": list(self.names), "field_mhz": self.field_mhz, "dwell_s": self.dwell_s,
                "bandwidth_hz": self.bandwidth_hz, "n_points": self.n_points, "ref_ppm": self.ref_ppm,
                "protocol": dict(self.protocol)}

    # --- resampling ------------------------------------------------------------------------------------------------
    def resample(self, dwell_s: float | None = None, n_points: int | None = None) -> "BasisSet":
        """Resample every FID to a new dwell time and/or number of points.

        Truncation is exact. A new dwell time uses local Lagrange interpolation of degree 7 in the time domain
        (error ~ (2 pi f dwell)^8 / 8!, below 1e-4 for metabolite signals within 0-5 ppm at 3 T and 4 kHz).
        Nothing is filtered (a spectral low-pass would smear the first points): a signal with more than 1 % of its
        energy outside the new bandwidth is refused (:class:`BasisError`). Times beyond the end of the original
        FID cannot be extrapolated: :class:`BasisError` if the new acquisition is longer.
        """
        dwell_s = self.dwell_s if dwell_s is None else float(dwell_s)
        n_points = self.n_points if n_points is None else int(n_points)
        if dwell_s <= 0 or n_points < 16:
            raise ProtocolError(f"cannot resample to dwell {dwell_s} s and {n_points} points")
        if np.isclose(dwell_s, self.dwell_s, rtol=1e-9) and n_points == self.n_points:
            return self.subset(self.names)
        t_new = np.arange(n_points) * dwell_s
        if t_new[-1] > (self.n_points - 1) * self.dwell_s * (1 + 1e-9):
            raise BasisError(
                f"the basis FID lasts {(self.n_points - 1) * self.dwell_s:.4f} s ({self.n_points} points at "
                f"{self.dwell_s * 1e6:.1f} us) but {n_points} points at {dwell_s * 1e6:.1f} us need "
                f"{t_new[-1]:.4f} s; it cannot be extrapolated")
        if np.isclose(dwell_s, self.dwell_s, rtol=1e-9):  # only truncation
            fids = self.fids[:, :n_points].copy()
        else:
            source = self.fids
            spec = np.abs(np.fft.fft(source, axis=-1)) ** 2
            outside = np.abs(np.fft.fftfreq(self.n_points, self.dwell_s)) >= 0.5 / dwell_s
            fraction = spec[:, outside].sum(axis=1) / spec.sum(axis=1)
            if np.any(fraction > 0.01):  # real signal, not just line tails, would alias into the new band
                worst = int(np.argmax(fraction))
                raise BasisError(f"{self.names[worst]} has {fraction[worst]:.1%} of its signal outside the new "
                                 f"bandwidth of {1 / dwell_s:.0f} Hz; it would alias")
            fids = lagrange_interpolate(source, self.dwell_s, t_new)
        protocol = dict(self.protocol, resampled_from={"dwell_s": self.dwell_s, "n_points": self.n_points})
        return BasisSet(list(self.names), fids, dwell_s, self.field_mhz, self.ref_ppm, protocol)

    def with_measured_mm(self, path: str | os.PathLike, name: str | None = None) -> "BasisSet":
        """This basis with its ``MM`` signal replaced (or added) by a measured macromolecule spectrum from a file.

        The file may be any basis format (the signal named ``MM``/``Mac*``, or ``name``, or its only signal) or an
        LCModel ``.RAW``/NIfTI-MRS FID (a metabolite-nulled acquisition). It must be at this basis's field and is
        resampled to this basis's dwell time and points.
        """
        from mrs_tf.formats.basis_files import basis_format
        from mrs_tf.formats import lcmodel, nifti
        from mrs_tf.core.errors import FileFormatError

        path = Path(path)
        fmt = basis_format(path)
        if fmt == "raw":
            content = lcmodel.read_raw(path)
            other = BasisSet([MM_NAME], content["fid"][None], content["dwell_s"] or self.dwell_s,
                             content["field_mhz"] or self.field_mhz)
        elif fmt == "nifti" and (content := nifti.read(path))["data"].ndim == 4:  # a FID, not a 5-D basis
            data = content["data"].reshape(-1, content["data"].shape[3])
            if data.shape[0] != 1:
                raise FileFormatError(f"{path}: a measured MM file must hold one FID, found {data.shape[0]}")
            other = BasisSet([MM_NAME], data, content["dwell_s"], content["field_mhz"])
        else:
            other = BasisSet.load(path, unknown="keep")
            if name is not None:
                other = other.subset([name])
            elif MM_NAME in other.names:
                other = other.subset([MM_NAME])
            elif other.n_metabolites != 1:
                raise BasisError(f"{path} holds {other.n_metabolites} signals and none is MM; pass name=")
        if abs(other.field_mhz - self.field_mhz) > 0.005 * self.field_mhz:
            raise ProtocolError(f"{path}: measured MM is for {other.field_mhz:.3f} MHz, the basis for "
                                f"{self.field_mhz:.3f} MHz")
        other = BasisSet([MM_NAME], other.fids[:1], other.dwell_s, other.field_mhz).resample(self.dwell_s,
                                                                                               self.n_points)
        names = [n for n in self.names if n != MM_NAME] + [MM_NAME]
        fids = np.vstack([self.fids[[self.names.index(n) for n in names[:-1]]], other.fids])
        return BasisSet(names, fids, self.dwell_s, self.field_mhz, self.ref_ppm,
                        dict(self.protocol, mm_model=f"measured: {path}"))

    # --- files -----------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the basis; the format follows the suffix.

        ``.basis`` LCModel, ``.nii``/``.nii.gz`` NIfTI-MRS, ``.txt`` jMRUI text, anything else (a folder) FSL-MRS
        JSON files. Written atomically; an existing path is refused unless ``overwrite``.
        """
        from mrs_tf.formats import basis_files

        return basis_files.write(path, self.names, self.fids, self.dwell_s, self.field_mhz, self.protocol,
                                 overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, *, field_mhz: float | None = None, dwell_s: float | None = None,
             n_points: int | None = None, unknown: str = "keep", conjugate: bool | None = None,
             restore_first_point: bool = True) -> "BasisSet":
        """Read a basis set from LCModel ``.BASIS``, a ``.RAW`` file or folder of them, an FSL-MRS JSON folder,
        jMRUI text (``.txt``), NIfTI-MRS (``.nii``/``.nii.gz``) or Osprey's MATLAB ``.mat``
        (:mod:`mrs_tf.formats.osprey`).

        Args:
            field_mhz: needed where the file does not say (LCModel ``.RAW`` without a header); checked against the
                file where it does (mismatch > 0.5 %: :class:`ProtocolError`).
            dwell_s, n_points: resample to these (band-limited) after reading; ``dwell_s`` also stands in for a
                missing dwell in ``.RAW`` files.
            unknown: what to do with names that are not mrs-tf metabolites: ``keep`` (default: a user's basis may
                hold signals mrs-tf does not simulate; they are fitted like any other), ``error`` or ``drop``.
            conjugate: ``True`` conjugates the data after the format's own conversion, for files written with the
                opposite sign convention (spectra that come out mirrored about 4.65 ppm).
            restore_first_point: a file whose FIDs hold the first point halved (the DFT's trapezoid weight, as the
                Osprey project's LCModel ``.BASIS`` files do) gets it doubled back, before any resampling
                (:mod:`mrs_tf.formats.first_point`); ``protocol["first_point"]`` then says so. ``False``: as stored.
        """
        from mrs_tf.formats import basis_files

        content = basis_files.read(path, field_mhz=field_mhz, dwell_s=dwell_s)
        fids = np.conj(content["fids"]) if conjugate else content["fids"]
        names, rows = normalise_names(content["names"], unknown)
        if field_mhz is not None and abs(content["field_mhz"] - field_mhz) > 0.005 * field_mhz:
            raise ProtocolError(f"{path}: basis is for {content['field_mhz']:.3f} MHz but {field_mhz:.3f} MHz was "
                                f"asked")
        fids, protocol = fids[rows], dict(content["protocol"])
        if restore_first_point:
            fids, protocol = restore_basis_first_point(fids, protocol)
        basis = cls(names, fids, content["dwell_s"], content["field_mhz"], 4.65, protocol)
        if dwell_s is not None or n_points is not None:
            basis = basis.resample(dwell_s=dwell_s, n_points=n_points)
        return basis


def normalise_names(names: Seq[str], unknown: str = "error") -> tuple[list[str], list[int]]:
    """Map names read from a file to canonical names; returns (names, rows kept)."""
    if unknown not in ("error", "keep", "drop"):
        raise ValueError(f"unknown must be 'error', 'keep' or 'drop', got {unknown!r}")
    def _is_mm(name) -> bool:
        try:
            return canonical_name(name) == MM_NAME
        except MetaboliteError:
            return False

    # several macromolecule components (MM09, MM12, ...) keep their own names rather than collide as one "MM"
    keep_mm_names = sum(_is_mm(n) for n in names) > 1
    out, rows, bad = [], [], []
    for i, name in enumerate(names):
        try:
            canon = canonical_name(name)
            out.append(str(name).strip() if keep_mm_names and canon == MM_NAME else canon)
            rows.append(i)
        except MetaboliteError:
            if unknown == "keep":
                out.append(str(name))
                rows.append(i)
            elif unknown == "error":
                bad.append(str(name))
    if bad:
        raise MetaboliteError(
            f"basis contains signals that are not mrs-tf metabolites: {', '.join(bad)}; "
            f"load with unknown='keep' to keep them or unknown='drop' to leave them out")
    return out, rows


# --- simulation --------------------------------------------------------------------------------------------------
def _cache_dir() -> Path:
    return Path(os.environ.get("MRS_TF_CACHE", Path.home() / ".cache" / "mrs_tf")) / "basis"


def _spin_table_digest(names: Seq[str]) -> str:
    from mrs_tf.physics import macromolecules, pulses, spin_sim

    # the simulator's and MM model's source are part of the key: a code change never reuses a stale cache
    parts = [Path(m.__file__).read_text() for m in (spin_sim, macromolecules, pulses)]
    parts += [repr(METABOLITES[n]) for n in names if n in METABOLITES]
    if MM_NAME in names:
        parts.append(repr(MM_COMPONENTS))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def simulate_basis(sequence: str = "press", field_mhz: float = 123.2, te_ms: float | None = None,
                   te1_ms: float | None = None, te2_ms: float | None = None, tm_ms: float | None = None,
                   n_refocus: int = 4, n_points: int = 2048, bandwidth_hz: float = 4000.0,
                   metabolites: Iterable[str] | None = None, ref_ppm: float = 4.65,
                   cache: bool = True, mm: str | os.PathLike | None = None,
                   refocusing_pulse: RFPulse | str | None = None, carrier_ppm: float = 3.0,
                   spin_systems: bool = False) -> BasisSet:
    """Simulate mrs-tf's basis set with the density-matrix simulator (ideal or shaped pulses, no relaxation).

    Args:
        sequence: ``press`` (default), ``steam``, ``slaser``, ``spin_echo`` or ``fid``.
        field_mhz: proton frequency (MHz): 123.2 for 3 T, 297.2 for 7 T.
        te_ms, te1_ms, te2_ms, tm_ms, n_refocus: sequence timing (ms), see :func:`mrs_tf.spin_sim.make_sequence`.
            For PRESS with no times given, the default protocol's TE1 = 11 ms, TE2 = 19 ms (TE 30 ms).
        n_points: number of complex points. bandwidth_hz: spectral width (Hz) = 1 / dwell.
        metabolites: names (aliases accepted); ``None`` = the 20 metabolites + ``MM``.
        ref_ppm: ppm of the centre frequency.
        cache: reuse/keep the result in ``$MRS_TF_CACHE`` (default ``~/.cache/mrs_tf``), keyed by the protocol.
        mm: ``None`` for the parametric MM model, or a file with a measured MM spectrum (see
            :meth:`BasisSet.with_measured_mm`) that replaces it.
        refocusing_pulse: PRESS / spin echo with shaped, slice-selective refocusing pulses instead of ideal ones: an
            :class:`~mrs_tf.physics.pulses.RFPulse` or the name of one in
            :data:`~mrs_tf.physics.pulses.REFOCUSING_PULSES` (the signal averaged over the voxel; slower: seconds
            per metabolite); ``None`` or ``"ideal"``: ideal pulses. carrier_ppm: their transmit frequency (ppm).
        spin_systems: one row per spin system instead of per metabolite, named ``<metabolite>#<k>`` (k from 0, the
            order of :attr:`~mrs_tf.physics.metabolites.Metabolite.systems`; MM as ``MM``): a metabolite's rows sum
            to its signal exactly (the simulation is linear in its systems). Used to move spin groups against each
            other (:class:`mrs_tf.nn.general.BasisRandomisation` ``group_shift_ppm``).
    """
    names = canonical_names(metabolites)
    if mm is not None:
        if spin_systems:
            raise ProtocolError("spin_systems=True takes the parametric MM only (mm=None)")
        sim = simulate_basis(sequence, field_mhz, te_ms, te1_ms, te2_ms, tm_ms, n_refocus, n_points, bandwidth_hz,
                             [n for n in names if n != MM_NAME], ref_ppm, cache,
                             refocusing_pulse=refocusing_pulse, carrier_ppm=carrier_ppm)
        return sim.with_measured_mm(mm)
    if sequence == "press" and te_ms is None and te1_ms is None and te2_ms is None:
        te1_ms, te2_ms = DEFAULT_PROTOCOL["te1_ms"], DEFAULT_PROTOCOL["te2_ms"]
    if refocusing_pulse == "ideal":
        refocusing_pulse = None
    if isinstance(refocusing_pulse, str):
        if refocusing_pulse not in REFOCUSING_PULSES:
            raise ProtocolError(f"unknown refocusing pulse {refocusing_pulse!r}; choose one of "
                                f"{', '.join(REFOCUSING_PULSES)} or pass an RFPulse")
        refocusing_pulse = REFOCUSING_PULSES[refocusing_pulse]
    # the pulses by name: a key of REFOCUSING_PULSES, the RFPulse's own name, or "ideal"
    refocusing = "ideal" if refocusing_pulse is None else next(
        (k for k, v in REFOCUSING_PULSES.items() if v == refocusing_pulse), refocusing_pulse.name)
    seq = make_sequence(sequence, te_ms=te_ms, te1_ms=te1_ms, te2_ms=te2_ms, tm_ms=tm_ms, n_refocus=n_refocus,
                        refocusing_pulse=refocusing_pulse, carrier_ppm=carrier_ppm)
    for key, value in (("field_mhz", field_mhz), ("bandwidth_hz", bandwidth_hz)):
        if value is None or not np.isfinite(value) or value <= 0:
            raise ProtocolError(f"{key} must be a positive number, got {value!r}")
    n_points = int(n_points)
    if n_points < 16:
        raise ProtocolError(f"n_points must be at least 16, got {n_points}")
    dwell_s = 1.0 / float(bandwidth_hz)
    pulses = "ideal pulses" if seq.refocusing is None else f"shaped refocusing pulses: {seq.refocusing.name}"
    protocol = dict(seq.describe(), refocusing=refocusing, source=f"mrs-tf density-matrix simulation ({pulses})",
                    spin_tables="Govindaraju et al. NMR Biomed 2000 (+ Govind et al. 2015)",
                    mm_model="mrs_tf.macromolecules.MM_COMPONENTS", mrs_tf_version=__version__)
    rows = [(name, None) for name in names]  # (metabolite, spin system index or None: all of them)
    if spin_systems:
        rows = [(name, k) for name in names
                for k in ([None] if name == MM_NAME else range(len(METABOLITES[name].systems)))]
    row_names = [name if k is None else f"{name}#{k}" for name, k in rows]
    key = json.dumps(dict(seq.describe(), field=float(field_mhz), n=n_points, dwell=dwell_s, ref=float(ref_ppm),
                          names=row_names, v=SIMULATION_VERSION, tables=_spin_table_digest(names)), sort_keys=True)
    path = _cache_dir() / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".npz")
    if cache and path.exists():
        try:
            with np.load(path) as stored:
                if list(stored["names"]) == row_names:
                    return BasisSet(row_names, stored["fids"], dwell_s, float(field_mhz), ref_ppm, protocol)
        except Exception:  # a corrupt cache entry is recomputed
            pass
    fids = np.empty((len(rows), n_points), complex)
    from mrs_tf.core.threads import one_blas_thread

    # small matrices: BLAS threads cost far more than they bring (7.7 s vs 1.1 s for the default basis here)
    with one_blas_thread():
        for row, (name, k) in enumerate(rows):
            if name == MM_NAME:
                fids[row] = mm_fid(n_points, dwell_s, field_mhz, ref_ppm)
            else:
                met = METABOLITES[name]
                if k is not None:
                    met = dataclasses.replace(met, systems=(met.systems[k],))
                fids[row] = simulate_metabolite_fid(met, seq, field_mhz, n_points, dwell_s, ref_ppm)
    basis = BasisSet(row_names, fids, dwell_s, float(field_mhz), ref_ppm, protocol)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
            np.savez(tmp, names=np.array(row_names), fids=fids)
            os.replace(tmp, path)
        except OSError:  # a read-only home must not break simulation
            pass
    return basis


assert set(ALL_NAMES) == set(METABOLITES) | {MM_NAME}

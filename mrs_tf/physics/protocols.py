"""Basis signals for any 3 T short-TE PRESS protocol, from mrs-tf's own simulator: the training space of
protocol-general networks.

:data:`SHORT_TE_PRESS_3T` is the space: field 123.2-127.8 MHz (Siemens 123.2, GE/Philips 127.7), TE 20-40 ms with the
first sub-echo between 35 % and 50 % of TE (Siemens TE 30: 11 + 19 ms; Philips/GE TE 35: 17.5 + 17.5 or 14 + 21 ms),
any bandwidth >= 1,000 Hz and 1,024-8,192 points (the ppm grid input, :mod:`mrs_tf.preprocess.grid`, makes points and
dwell time irrelevant to the network beyond its noise and coverage).

:func:`protocol_basis` gives the basis of one protocol without simulating it each time: signals are simulated
(density matrix, cached on disk) on a grid of fields, echo times and sub-echo splits (:class:`ProtocolGrid`), then

* echo time and split: linear interpolation between the neighbouring simulated ones (J evolution is smooth in the
  timings; :func:`interpolation_error` measures it against a direct simulation);
* field: the nearest simulated field, its dwell time relabelled ``dwell * F_sim / F`` so that every chemical shift
  sits at its ppm at field ``F`` (the couplings' Hz then scale by F / F_sim, at most 1.9 % across the range).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mrs_tf.core.errors import ProtocolError
from mrs_tf.physics.basis import BasisSet, simulate_basis

__all__ = ["sequence_kind", "SEQUENCE_LABELS", "SEQUENCE_EFFECT", "basis_mismatch", "ProtocolSpace", "SHORT_TE_PRESS_3T", "ProtocolGrid", "DEFAULT_GRID", "protocol_basis",
           "interpolation_error", "protocol_vector"]


#: how each sequence family is named in messages
SEQUENCE_LABELS = {"press": "PRESS", "steam": "STEAM", "slaser": "sLASER", "laser": "LASER", "special": "SPECIAL",
                   "edited": "an edited sequence (MEGA-PRESS, HERMES, HERCULES)"}


def sequence_kind(name) -> str | None:
    """The sequence family (a key of :data:`SEQUENCE_LABELS`) that a sequence or protocol name from a file's header
    names, as scanners and converters write them: Siemens ``svs_se`` (PRESS), ``svs_st`` (STEAM), ``svs_slaser`` /
    ``svs_semi_laser`` (sLASER), ``eja_svs_mpress`` (MEGA-PRESS); Philips protocol names such as ``PRESS PAR 35``;
    LCModel basis files' ``SEQ``. None when it names none of them (or is not a string)."""
    if not isinstance(name, str):
        return None
    t = re.sub(r"[\s\-]+", "_", name.lower())
    if any(k in t for k in ("mega", "mpress", "hermes", "hercules", "edit")):
        return "edited"
    if any(k in t for k in ("slaser", "semi_laser", "semilaser")):
        return "slaser"
    if "laser" in t:
        return "laser"
    if "special" in t:
        return "special"
    if "steam" in t or re.search(r"svs_st(?![a-z])", t):
        return "steam"
    if "press" in t or re.search(r"svs_se(?![a-z])", t):
        return "press"
    return None


#: why another sequence matters, measured (benchmarks/RESULTS.md)
SEQUENCE_EFFECT = ("coupled signals evolve differently under another sequence: press3t_short_te read sLASER TE 30 "
                   "spectra with Ins/tCr +22 %, STEAM TE 20 ones with tNAA/tCr -11 % and Ins/tCr -17 %, every one "
                   "of them with status ok")


def basis_mismatch(basis_protocol: dict, data: dict, te_tolerance_ms: float = 0.5) -> list[str]:
    """Every way a basis set (its ``protocol`` dict: ``te_ms``, ``sequence`` where its file names them) does not suit a
    scan (``data``: :func:`~mrs_tf.io.read_data`'s dict, ``te_ms``, ``sequence``, ``sequence_name``), each said with
    its way out; [] when both suit (or neither names what would differ). Coupled signals evolve differently at
    another echo time or under another sequence, so a fit or a network with that basis would misread the scan."""
    out = []
    seq_basis, seq_data = sequence_kind(basis_protocol.get("sequence")), data.get("sequence")
    if seq_basis and seq_data and seq_data != seq_basis:
        out.append(f"it is a {SEQUENCE_LABELS.get(seq_basis, seq_basis)} basis, the scan a "
                   f"{SEQUENCE_LABELS.get(seq_data, seq_data)} scan ({data.get('sequence_name')!r} in its header): "
                   f"{SEQUENCE_EFFECT.split(':')[0]}; simulate a basis for the scan's sequence (mrs-tf basis "
                   f"simulate --sequence {seq_data} ...)")
    te_basis, te_data = basis_protocol.get("te_ms"), data.get("te_ms")
    if te_basis and te_data and abs(float(te_basis) - float(te_data)) > te_tolerance_ms:
        out.append(f"it is for TE {float(te_basis):g} ms, the scan has TE {float(te_data):g} ms: coupled "
                   f"signals evolve with the echo time; simulate a basis for the scan's (mrs-tf basis simulate "
                   f"--te-ms {float(te_data):g} ...)")
    return out


@dataclass(frozen=True)
class ProtocolSpace:
    """A family of protocols a network serves (units in the names)."""

    sequence: str = "press"
    field_mhz: tuple[float, float] = (123.2, 127.8)
    te_ms: tuple[float, float] = (20.0, 40.0)
    te1_fraction: tuple[float, float] = (0.35, 0.5)
    min_bandwidth_hz: float = 1000.0
    n_points: tuple[int, int] = (1024, 8192)

    def outside(self, field_mhz: float | None, te_ms: float | None, bandwidth_hz: float | None,
                n_points: int | None) -> list[str]:
        """Every parameter of a scan outside the space, each said with the range and what to do ([] inside).
        ``None``: not known (the echo time of some formats) is named too."""
        out = []
        lo, hi = self.field_mhz
        if field_mhz is None or not lo * 0.995 <= field_mhz <= hi * 1.005:
            out.append(f"field {field_mhz} MHz (this model: {lo:g}-{hi:g} MHz, 3 T)")
        lo, hi = self.te_ms
        if te_ms is None:
            out.append(f"echo time unknown (this model: TE {lo:g}-{hi:g} ms; give it: --te-ms / te_ms=)")
        elif not lo - 0.5 <= te_ms <= hi + 0.5:
            out.append(f"echo time {te_ms:g} ms (this model: {lo:g}-{hi:g} ms)")
        if bandwidth_hz is None or bandwidth_hz < self.min_bandwidth_hz * 0.999:
            out.append(f"bandwidth {bandwidth_hz} Hz (this model: >= {self.min_bandwidth_hz:g} Hz)")
        lo, hi = self.n_points
        if n_points is None or not lo <= n_points <= hi:
            out.append(f"{n_points} points (this model: {lo}-{hi}; resample: mrs_tf.preprocess.resample_fids)")
        return out


#: 3 T short-TE PRESS, as the three big vendors run it
SHORT_TE_PRESS_3T = ProtocolSpace()


@dataclass(frozen=True)
class ProtocolGrid:
    """Where the signals are simulated: fields (MHz), echo times (ms), first sub-echo fractions of TE, and the
    sampling of the simulated FIDs (long and wide enough for any protocol of the space on the ppm grid)."""

    fields_mhz: tuple[float, ...] = (123.2, 127.8)
    te_ms: tuple[float, ...] = (20.0, 22.5, 25.0, 27.5, 30.0, 32.5, 35.0, 37.5, 40.0)
    te1_fractions: tuple[float, ...] = (0.35, 0.4, 0.45, 0.5)
    n_points: int = 1088       # 0.544 s at 2 kHz (+-7.8 ppm around water): the ppm grid uses 0.52 s at most
    bandwidth_hz: float = 2000.0


DEFAULT_GRID = ProtocolGrid()


@lru_cache(maxsize=640)  # every node of the default grid (72), ideal and three shaped pulses, at two samplings
def _simulated(field_mhz: float, te_ms: float, te1_fraction: float, n_points: int, bandwidth_hz: float,
               refocusing: str | None = None, spin_systems: bool = False) -> BasisSet:
    te1 = round(te_ms * te1_fraction, 4)
    return simulate_basis("press", field_mhz=field_mhz, te1_ms=te1, te2_ms=round(te_ms - te1, 4), n_points=n_points,
                          bandwidth_hz=bandwidth_hz, refocusing_pulse=refocusing, spin_systems=spin_systems)


def _neighbours(grid: tuple[float, ...], value: float) -> tuple[float, float, float]:
    """(lower, upper, weight of upper) of ``value`` on the sorted ``grid`` (clamped at its ends)."""
    g = np.asarray(sorted(grid), float)
    if value <= g[0]:
        return g[0], g[0], 0.0
    if value >= g[-1]:
        return g[-1], g[-1], 0.0
    k = int(np.searchsorted(g, value))
    lo, hi = g[k - 1], g[k]
    return lo, hi, float((value - lo) / (hi - lo))


def protocol_basis(field_mhz: float, te_ms: float, te1_ms: float | None = None, grid: ProtocolGrid = DEFAULT_GRID,
                   space: ProtocolSpace = SHORT_TE_PRESS_3T, n_points: int | None = None,
                   dwell_s: float | None = None, refocusing: str | None = None,
                   spin_systems: bool = False) -> BasisSet:
    """The PRESS basis (20 metabolites + MM, basis units of :func:`~mrs_tf.simulate_basis`) for ``field_mhz``,
    ``te_ms`` and the first sub-echo ``te1_ms`` (default: 37 % of TE, the split of mrs-tf's default protocol), at the
    grid's sampling (see the module docstring), or at ``n_points`` and ``dwell_s`` when both are given (the grid's
    echo times and splits simulated at that sampling; slower the first time, cached after). ``refocusing``: the name
    of a shaped refocusing pulse of :data:`~mrs_tf.physics.pulses.REFOCUSING_PULSES` (``None``, the default, or
    ``"ideal"``: ideal pulses). ``spin_systems``: one row per spin system (``NAA#0``, ``NAA#1``, ...; see
    :func:`~mrs_tf.simulate_basis`). A protocol outside ``space`` is a :class:`ProtocolError`."""
    refocusing = None if refocusing == "ideal" else refocusing  # one cache entry for both spellings
    if n_points is not None and dwell_s is not None:  # simulated a little longer and wider, then resampled exactly
        wide = ProtocolGrid(grid.fields_mhz, grid.te_ms, grid.te1_fractions, int(n_points * 1.03) + 16,
                            1.0 / dwell_s)
        return protocol_basis(field_mhz, te_ms, te1_ms, wide, space, refocusing=refocusing,
                              spin_systems=spin_systems).resample(dwell_s=dwell_s, n_points=n_points)
    problems = space.outside(field_mhz, te_ms, grid.bandwidth_hz, space.n_points[0])
    if problems:
        raise ProtocolError(f"outside {space.sequence.upper()} {space.field_mhz[0]:g}-{space.field_mhz[1]:g} MHz, "
                            f"TE {space.te_ms[0]:g}-{space.te_ms[1]:g} ms: {'; '.join(problems)}")
    fraction = (te1_ms / te_ms) if te1_ms is not None else 11.0 / 30.0
    fraction = float(np.clip(fraction, min(grid.te1_fractions), max(grid.te1_fractions)))
    near_field = min(grid.fields_mhz, key=lambda f: abs(f - field_mhz))
    te_lo, te_hi, w_te = _neighbours(grid.te_ms, te_ms)
    fr_lo, fr_hi, w_fr = _neighbours(grid.te1_fractions, fraction)
    fids, names = 0.0, None
    for te, w1 in ((te_lo, 1 - w_te), (te_hi, w_te)):
        for fr, w2 in ((fr_lo, 1 - w_fr), (fr_hi, w_fr)):
            if w1 * w2 == 0:
                continue
            b = _simulated(near_field, te, fr, grid.n_points, grid.bandwidth_hz, refocusing, spin_systems)
            fids = fids + w1 * w2 * b.fids
            names = b.names
    te1 = te_ms * fraction
    protocol = {"sequence": "press", "te_ms": float(te_ms), "te1_ms": float(te1), "te2_ms": float(te_ms - te1),
                "field_mhz": float(field_mhz), "source": f"mrs-tf protocol grid (simulated at {near_field:g} MHz, "
                                                        f"TE interpolated between {te_lo:g} and {te_hi:g} ms)",
                "refocusing": refocusing or "ideal"}
    # relabel the dwell time: every chemical shift at its ppm at field_mhz (see the module docstring)
    dwell = (1.0 / grid.bandwidth_hz) * near_field / field_mhz
    return BasisSet(list(names), np.asarray(fids, np.complex128), dwell, float(field_mhz), 4.65, protocol)


def interpolation_error(field_mhz: float, te_ms: float, te1_ms: float, grid: ProtocolGrid = DEFAULT_GRID,
                        linewidth_hz: float = 4.0) -> dict[str, float]:
    """Per metabolite: ``||interpolated - simulated|| / ||simulated||`` of the spectra (Lorentzian ``linewidth_hz``)
    between :func:`protocol_basis` and a direct simulation of the same protocol at the grid's sampling."""
    approx = protocol_basis(field_mhz, te_ms, te1_ms, grid)
    direct = simulate_basis("press", field_mhz=field_mhz, te1_ms=te1_ms, te2_ms=te_ms - te1_ms,
                            n_points=grid.n_points, bandwidth_hz=grid.bandwidth_hz * field_mhz /
                            min(grid.fields_mhz, key=lambda f: abs(f - field_mhz)))
    env = np.exp(-np.pi * linewidth_hz * direct.time)
    a = np.fft.fft(approx.fids * env, axis=1)
    d = np.fft.fft(direct.fids * env, axis=1)
    return {n: float(np.linalg.norm(a[k] - d[k]) / np.linalg.norm(d[k])) for k, n in enumerate(direct.names)}


def protocol_vector(field_mhz, te_ms) -> np.ndarray:
    """float32 (n, 2): field and TE scaled to about [-1, 1] over the 3 T short-TE space (the ``"protocol"`` input of
    protocol-general networks)."""
    field = np.atleast_1d(np.asarray(field_mhz, float))
    te = np.broadcast_to(np.atleast_1d(np.asarray(te_ms, float)), field.shape)
    return np.stack([(field - 125.5) / 2.3, (te - 30.0) / 10.0], axis=1).astype(np.float32)

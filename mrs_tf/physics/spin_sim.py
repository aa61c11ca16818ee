"""Density-matrix simulation of spin systems under MRS sequences, with ideal pulses or shaped, slice-selective
refocusing pulses.

Physics and conventions
    * Hamiltonian in the rotating frame of the reference (water at ``ref_ppm``, default 4.65 ppm), in rad/s,
      full (strong-coupling) scalar coupling::

          H = 2 pi sum_i nu_i Iz_i + 2 pi sum_{i<j} J_ij (Ix_i Ix_j + Iy_i Iy_j + Iz_i Iz_j),
          nu_i = (ref_ppm - delta_i) * field_mhz   [Hz]

      The offset sign is chosen so that the simulated FID follows mrs-tf's (= NIfTI-MRS) convention:
      ``np.fft.fftshift(np.fft.fft(fid))`` puts a singlet of ``delta`` ppm at ``ppm = ref_ppm - f / field_mhz``.
    * Pulses are instantaneous rotations ``exp(-i theta (cos(phi) Fx + sin(phi) Fy))``; excitation is 90 deg about
      y, refocusing pulses are 180 deg about x. After each pulse only one coherence order is kept (perfect crusher
      gradients / phase cycling): spin echo keeps +1, -1; PRESS keeps -1, +1, -1; STEAM keeps +1, 0, -1 (the stimulated echo); the signal is
      the p = -1 coherence, read as ``Tr(rho(t) F+)``.
    * Amplitudes are normalised so that one uncoupled proton on resonance gives ``fid[0] = 1`` for every sequence
      (STEAM's factor 1/2 and the sequence's overall phase are divided out); the basis signal of a metabolite at
      1 mM therefore has ``fid[0]`` equal to its (visible) proton count. No T2 relaxation is simulated.
    * Shaped refocusing pulses (:class:`~mrs_tf.physics.pulses.RFPulse`, PRESS and spin echo): each pulse is applied
      as piecewise-constant steps (symmetric Trotter splitting of free evolution and RF, the full strong-coupling
      Hamiltonian in the frame of the pulses' carrier ``carrier_ppm``) under a slice-selection gradient, at the
      pulse's gradient offsets; the signal is averaged over them (PRESS: the two refocusing pulses select orthogonal
      slices, so the average over the first slice's positions is taken before the second pulse, which is exact because
      everything between is linear and position-independent). Delays are shortened by the pulses' durations (timing
      from pulse centres); the excitation stays ideal. The normalisation is the echo of one uncoupled proton at the
      carrier, so that ``fid[0]`` still counts protons and the voxel's chemical-shift displacement changes shapes,
      not amounts.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.linalg

from mrs_tf.core.errors import ProtocolError
from mrs_tf.physics.metabolites import Metabolite, SpinSystem
from mrs_tf.physics.pulses import RFPulse

__all__ = ["Sequence", "make_sequence", "simulate_lines", "lines_to_fid", "simulate_metabolite_fid", "SEQUENCES"]

SEQUENCES = ("fid", "spin_echo", "press", "steam", "slaser")


@dataclass(frozen=True)
class Sequence:
    """A sequence as a list of events.

    ``events`` holds ``("pulse", flip_deg, phase_deg, coherence_order_kept)``, ``("shaped", RFPulse,
    coherence_order_kept)`` and ``("delay", seconds)`` tuples; acquisition starts after the last event. The remaining
    fields document the protocol (ms); ``refocusing`` and ``carrier_ppm`` the shaped refocusing pulse and its
    transmit frequency (ppm), ``None`` for ideal pulses.
    """

    name: str
    te_ms: float
    events: tuple[tuple, ...]
    te1_ms: float | None = None
    te2_ms: float | None = None
    tm_ms: float | None = None
    n_refocus: int | None = None
    refocusing: RFPulse | None = None
    carrier_ppm: float | None = None

    def describe(self) -> dict:
        """Protocol as a plain dict (for metadata, caching keys and file headers)."""
        out = {"sequence": self.name, "te_ms": self.te_ms}
        for key in ("te1_ms", "te2_ms", "tm_ms", "n_refocus", "carrier_ppm"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.refocusing is not None:
            out["refocusing_pulse"] = self.refocusing.describe()
        return out


def _nonneg(name: str, value: float | None) -> float:
    if value is None:
        raise ProtocolError(f"{name} is required for this sequence")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ProtocolError(f"{name} must be a finite, non-negative time in ms, got {value}")
    return value


def make_sequence(sequence: str = "press", *, te_ms: float | None = None, te1_ms: float | None = None,
                  te2_ms: float | None = None, tm_ms: float | None = None, n_refocus: int = 4,
                  refocusing_pulse: RFPulse | None = None, carrier_ppm: float = 3.0) -> Sequence:
    """Build a :class:`Sequence`.

    Args:
        sequence: ``fid`` (pulse-acquire), ``spin_echo``, ``press``, ``steam`` or ``slaser``.
        te_ms: echo time (ms). For PRESS it may be given together with ``te1_ms``/``te2_ms`` (then it must equal
            their sum), or alone (then TE1 = TE2 = TE/2).
        te1_ms, te2_ms: PRESS sub-echo times (ms): 90 - TE1/2 - 180 - (TE1+TE2)/2 - 180 - TE2/2 - acquire.
        tm_ms: STEAM mixing time (ms): 90 - TE/2 - 90 - TM - 90 - TE/2 - acquire.
        n_refocus: semi-LASER: number of ideal refocusing pulses (even, >= 2), CPMG-spaced by TE/n_refocus
            (first delay TE/(2 n)).
        refocusing_pulse: PRESS and spin echo: a shaped slice-selective refocusing pulse
            (:mod:`mrs_tf.physics.pulses`) instead of ideal ones; delays are timed from the pulses' centres.
        carrier_ppm: the shaped pulses' transmit frequency (ppm): the centre of the voxel's chemical-shift
            displacement. In a homogeneous voxel only the displacement between coupled partners matters, so the
            result does not depend on it while every displaced slice lies within the pulse's simulated positions
            (2.0 and 3.0 ppm give the same basis to the printed digit).

    Raises:
        ProtocolError: unknown sequence, negative or missing times, TE1 + TE2 != TE, a shaped pulse longer than
            the delays around it, or a shaped pulse for a sequence that does not take one.
    """
    name = str(sequence).lower().replace("-", "_")
    name = {"semi_laser": "slaser", "se": "spin_echo", "pulse_acquire": "fid"}.get(name, name)
    if name not in SEQUENCES:
        raise ProtocolError(f"unknown sequence {sequence!r}; choose one of {', '.join(SEQUENCES)}")
    ms = 1e-3
    if refocusing_pulse is not None:
        if name not in ("press", "spin_echo"):
            raise ProtocolError(f"shaped refocusing pulses are simulated for PRESS and spin echo, not {name}")
        if not isinstance(refocusing_pulse, RFPulse):
            raise ProtocolError(f"refocusing_pulse must be an RFPulse, got {type(refocusing_pulse).__name__}")
        ideal = make_sequence(name, te_ms=te_ms, te1_ms=te1_ms, te2_ms=te2_ms)
        return _with_shaped(ideal, refocusing_pulse, float(carrier_ppm))
    if name == "fid":
        if te_ms not in (None, 0, 0.0):
            raise ProtocolError(f"a pulse-acquire FID has no echo time, got te_ms={te_ms}")
        return Sequence("fid", 0.0, (("pulse", 90.0, 90.0, -1),))
    if name == "spin_echo":
        te = _nonneg("te_ms", te_ms)
        return Sequence("spin_echo", te, (("pulse", 90.0, 90.0, +1), ("delay", te / 2 * ms),
                                          ("pulse", 180.0, 0.0, -1), ("delay", te / 2 * ms)))
    if name == "press":
        if te1_ms is None and te2_ms is None:
            te = _nonneg("te_ms", te_ms)
            te1 = te2 = te / 2
        else:
            te1, te2 = _nonneg("te1_ms", te1_ms), _nonneg("te2_ms", te2_ms)
            te = te1 + te2
            if te_ms is not None:
                given = _nonneg("te_ms", te_ms)
                if abs(given - te) > 1e-6:
                    raise ProtocolError(f"PRESS needs TE1 + TE2 = TE; got TE1={te1} + TE2={te2} = {te} ms "
                                        f"but TE={given} ms")
        return Sequence("press", te, (("pulse", 90.0, 90.0, -1), ("delay", te1 / 2 * ms),
                                      ("pulse", 180.0, 0.0, +1), ("delay", (te1 + te2) / 2 * ms),
                                      ("pulse", 180.0, 0.0, -1), ("delay", te2 / 2 * ms)),
                        te1_ms=te1, te2_ms=te2)
    if name == "steam":
        te = _nonneg("te_ms", te_ms)
        tm = _nonneg("tm_ms", tm_ms)
        return Sequence("steam", te, (("pulse", 90.0, 90.0, +1), ("delay", te / 2 * ms),
                                      ("pulse", 90.0, 90.0, 0), ("delay", tm * ms),
                                      ("pulse", 90.0, 90.0, -1), ("delay", te / 2 * ms)), tm_ms=tm)
    # semi-LASER with ideal refocusing
    te = _nonneg("te_ms", te_ms)
    n = int(n_refocus)
    if n < 2 or n % 2:
        raise ProtocolError(f"semi-LASER needs an even number (>= 2) of refocusing pulses, got {n_refocus}")
    events: list[tuple] = [("pulse", 90.0, 90.0, -1), ("delay", te / (2 * n) * ms)]
    for k in range(n):
        order = +1 if k % 2 == 0 else -1
        events.append(("pulse", 180.0, 0.0, order))
        events.append(("delay", te / (2 * n) * ms if k == n - 1 else te / n * ms))
    return Sequence("slaser", te, tuple(events), n_refocus=n)


def _with_shaped(ideal: Sequence, pulse: RFPulse, carrier_ppm: float) -> Sequence:
    """``ideal`` with each 180 deg pulse replaced by ``pulse``, the delays around it shortened by half its length."""
    half = pulse.duration_ms * 1e-3 / 2
    events = list(ideal.events)
    for k, event in enumerate(ideal.events):
        if event[0] == "pulse" and event[1] == 180.0:
            events[k] = ("shaped", pulse, event[3])
            for side in (k - 1, k + 1):
                events[side] = ("delay", events[side][1] - half)
    short = [e[1] for e in events if e[0] == "delay" and e[1] < -1e-12]
    if short:
        raise ProtocolError(f"a {pulse.duration_ms:g} ms refocusing pulse does not fit this timing "
                            f"(TE {ideal.te_ms:g} ms): a delay around it would be {min(short) * 1e3:.2f} ms")
    events = [("delay", max(e[1], 0.0)) if e[0] == "delay" else e for e in events]
    return Sequence(ideal.name, ideal.te_ms, tuple(events), ideal.te1_ms, ideal.te2_ms, ideal.tm_ms, ideal.n_refocus,
                    pulse, carrier_ppm)


# --- spin operators -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _operators(n: int):
    """Zeeman-basis operators for n spins: (Iz list, I+ list, total M per state). State bit k = 1 means spin k is beta."""
    dim = 2 ** n
    states = np.arange(dim)
    bits = (states[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1  # (dim, n)
    m_spin = 0.5 - bits  # +1/2 for alpha
    iz = [np.diag(m_spin[:, k]) for k in range(n)]
    ip = []
    for k in range(n):
        op = np.zeros((dim, dim))
        # I+ |beta_k> = |alpha_k>: rows with bit 0, columns with the same state but bit 1
        rows = states[bits[:, k] == 0]
        cols = rows | (1 << (n - 1 - k))
        op[rows, cols] = 1.0
        ip.append(op)
    total_m = m_spin.sum(axis=1)
    return iz, ip, total_m


@lru_cache(maxsize=64)
def _pulse(n: int, flip_deg: float, phase_deg: float) -> np.ndarray:
    _, ip, _ = _operators(n)
    fp = sum(ip)
    fx = (fp + fp.T) / 2
    fy = (fp - fp.T) / 2j
    phi = np.deg2rad(phase_deg)
    return scipy.linalg.expm(-1j * np.deg2rad(flip_deg) * (np.cos(phi) * fx + np.sin(phi) * fy))


def _hamiltonian(system: SpinSystem, field_mhz: float, ref_ppm: float) -> np.ndarray:
    n = system.n_spins
    iz, ip, _ = _operators(n)
    nu = (ref_ppm - np.asarray(system.shifts_ppm)) * field_mhz  # Hz
    h = sum(2 * np.pi * nu[k] * iz[k] for k in range(n)).astype(complex)
    for (a, b), j in system.couplings_hz.items():
        h = h + 2 * np.pi * j * (iz[a] @ iz[b] + 0.5 * (ip[a] @ ip[b].T + ip[a].T @ ip[b]))
    return h


def _eigen(h: np.ndarray, total_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a Hamiltonian that conserves total M, block by block, so that every eigenvector has a
    definite M (the basis in which coherence orders and gradient offsets stay diagonal)."""
    energies = np.empty(len(h))
    vecs = np.zeros_like(h)
    for m in np.unique(total_m):
        idx = np.flatnonzero(total_m == m)
        e, v = np.linalg.eigh(h[np.ix_(idx, idx)])
        energies[idx] = e
        vecs[np.ix_(idx, idx)] = v
    return energies, vecs


def _rf_rotation(n: int, theta: float, phase: float) -> np.ndarray:
    """``exp(-i theta (cos(phase) Fx + sin(phase) Fy))`` as the Kronecker product of the spins' own rotations."""
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    r = np.array([[c, -1j * s * np.exp(-1j * phase)], [-1j * s * np.exp(1j * phase), c]])
    out = np.ones((1, 1), complex)
    for _ in range(n):
        out = np.kron(out, r)
    return out


_SHAPED_CACHE: dict = {}


def _shaped_propagators(system: SpinSystem, field_mhz: float, carrier_ppm: float, pulse: RFPulse,
                        energies: np.ndarray, vecs: np.ndarray, m_eig: np.ndarray) -> np.ndarray:
    """Propagators (positions, dim, dim) of ``pulse`` at each of its gradient offsets, in the eigenbasis ``vecs`` of
    the free Hamiltonian (carrier frame; ``m_eig`` each eigenvector's total M); symmetric splitting
    ``D(dt/2) R_k D(dt/2)`` per step."""
    key = (repr(system), float(field_mhz), float(carrier_ppm), pulse)
    cached = _SHAPED_CACHE.get(key)  # one lookup: tf.data threads may clear the cache between two
    if cached is not None:
        return cached
    n = system.n_spins
    w1, phase = pulse.rf()
    dt = pulse.step_s
    offsets = pulse.offsets_hz()
    # free evolution of half a step at every offset: diagonal in the eigenbasis (the offset adds 2 pi f M)
    half = np.exp(-0.5j * dt * (energies[None, :] + 2 * np.pi * offsets[:, None] * m_eig[None, :]))  # (P, d)
    u = np.broadcast_to(np.eye(len(energies), dtype=complex), (len(offsets),) + vecs.shape).copy()
    cache: dict = {}
    for w, ph in zip(w1, phase):
        key_step = (round(float(w * dt), 15), round(float(ph), 12))
        r = cache.get(key_step)
        if r is None:
            r = vecs.conj().T @ _rf_rotation(n, w * dt, ph) @ vecs
            cache[key_step] = r
        u = half[:, :, None] * np.matmul(r, half[:, :, None] * u)
    if len(_SHAPED_CACHE) > 256:  # every system at two fields and three pulses: ~130 MB, Glc's 7 spins the most
        _SHAPED_CACHE.clear()
    _SHAPED_CACHE[key] = u
    return u


def simulate_lines(system: SpinSystem, sequence: Sequence, field_mhz: float, ref_ppm: float = 4.65,
                   tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one spin system: the detected signal as a sum of lines ``sum_k a_k exp(2 pi i f_k t)``.

    Returns:
        ``(freqs_hz, amps)``: line frequencies (Hz, in the fft convention of mrs-tf) and complex amplitudes,
        not yet normalised to the sequence's singlet response (see :func:`simulate_metabolite_fid`), and
        not multiplied by ``system.scale``.
    """
    n = system.n_spins
    iz, ip, total_m = _operators(n)
    # shaped pulses: everything in the frame of their carrier (the RF is then static); lines moved back at the end
    frame = sequence.carrier_ppm if sequence.refocusing is not None else ref_ppm
    h = _hamiltonian(system, field_mhz, frame)
    energies, vecs = _eigen(h, total_m)
    m_eig = np.rint((np.abs(vecs) ** 2).T @ total_m * 2) / 2  # each eigenvector's M (exact: block-diagonal)
    dm = m_eig[:, None] - m_eig[None, :]  # coherence order of each element (eigenbasis)
    rho = vecs.conj().T @ sum(iz).astype(complex) @ vecs  # thermal equilibrium, deviation part
    for event in sequence.events:
        if event[0] == "pulse":
            _, flip, phase, keep = event
            u = vecs.conj().T @ _pulse(n, flip, phase) @ vecs
            rho = u @ rho @ u.conj().T
            rho = np.where(np.isclose(dm, keep), rho, 0.0)
        elif event[0] == "shaped":
            _, pulse, keep = event
            u = _shaped_propagators(system, field_mhz, frame, pulse, energies, vecs, m_eig)
            rho = np.matmul(np.matmul(u, rho), np.conj(np.swapaxes(u, 1, 2))).mean(axis=0)
            rho = np.where(np.isclose(dm, keep), rho, 0.0)
        else:
            phases = np.exp(-1j * energies * event[1])
            rho = phases[:, None] * rho * phases.conj()[None, :]
    fplus = sum(ip)
    f_e = vecs.conj().T @ fplus @ vecs
    # element (i, j) oscillates as exp(-i (E_i - E_j) t); 2^(n-1) removes the trace over the other spins' states,
    # so that every spin contributes as much as the one-spin reference
    amp = rho * f_e.T / 2 ** (n - 1)
    freq = (energies[None, :] - energies[:, None]) / (2 * np.pi) + (ref_ppm - frame) * field_mhz
    amp, freq = amp.ravel(), freq.ravel()
    keep = np.abs(amp) > tol * max(np.abs(amp).max(), 1e-300)
    amp, freq = amp[keep], freq[keep]
    # merge degenerate lines (equivalent spins) so that FID synthesis is cheap
    key = np.round(freq, 6)
    uniq, inverse = np.unique(key, return_inverse=True)
    merged = np.zeros(len(uniq), complex)
    np.add.at(merged, inverse, amp)
    return uniq, merged


def lines_to_fid(freqs_hz: np.ndarray, amps: np.ndarray, n_points: int, dwell_s: float,
                 chunk: int = 256) -> np.ndarray:
    """FID ``sum_k a_k exp(2 pi i f_k t)`` at ``t = 0, dwell_s, ...`` (complex128, length n_points)."""
    t = np.arange(n_points) * dwell_s
    fid = np.zeros(n_points, complex)
    for start in range(0, len(freqs_hz), chunk):
        f = freqs_hz[start:start + chunk]
        fid += np.exp(2j * np.pi * np.outer(t, f)) @ amps[start:start + chunk]
    return fid


@lru_cache(maxsize=32)
def _reference_response(sequence: Sequence, field_mhz: float, ref_ppm: float) -> complex:
    """Complex echo amplitude of one uncoupled proton on resonance (at the carrier of shaped pulses), used to
    normalise every basis signal."""
    at = sequence.carrier_ppm if sequence.refocusing is not None else ref_ppm
    _, amps = simulate_lines(SpinSystem((at,)), sequence, field_mhz, ref_ppm)
    value = complex(amps.sum())
    if abs(value) < 1e-12:
        raise ProtocolError(f"sequence {sequence.name} gives no signal from an uncoupled proton")
    return value


def simulate_metabolite_fid(metabolite: Metabolite, sequence: Sequence, field_mhz: float, n_points: int,
                            dwell_s: float, ref_ppm: float = 4.65) -> np.ndarray:
    """FID of a metabolite at 1 mM (no relaxation): the sum of its spin systems, normalised per proton."""
    norm = _reference_response(sequence, float(field_mhz), float(ref_ppm))
    fid = np.zeros(n_points, complex)
    for system in metabolite.systems:
        if system.n_spins == 1 and sequence.refocusing is None:  # uncoupled, ideal pulses: no density matrix
            freqs = np.array([(ref_ppm - system.shifts_ppm[0]) * field_mhz])
            amps = np.array([norm])
        else:
            freqs, amps = simulate_lines(system, sequence, field_mhz, ref_ppm)
        fid += system.scale * lines_to_fid(freqs, amps, n_points, dwell_s)
    return fid / norm

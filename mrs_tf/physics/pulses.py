"""Shaped RF pulses for spatially resolved simulation: what a real scanner's refocusing pulse does that an ideal one
does not.

An ideal 180 deg pulse refocuses every spin in the voxel perfectly and instantly. A real slice-selective refocusing
pulse lasts milliseconds (J-coupling evolves during it), refocuses only within its bandwidth (the slice profile has
transition bands) and selects a slice that is displaced with each chemical shift (chemical-shift displacement:
``shift_hz / bandwidth_hz`` of the slice thickness per signal). Coupled partners with different shifts are then
refocused in different parts of the voxel, which reshapes their multiplets; this is the main difference between an
ideal-pulse basis and one simulated with the vendor's pulses.

:class:`RFPulse` holds a waveform as piecewise-constant steps (relative amplitude and phase) with its duration and
nominal flip angle; :func:`sinc_pulse` designs the classic windowed-sinc refocusing pulse. The simulator
(:func:`mrs_tf.physics.spin_sim.simulate_lines`) applies one under a slice-selection gradient at
``positions_hz`` (gradient offsets: position across the slice as a frequency, the slice's nominal half-width is
``bandwidth_hz / 2``) and averages the signal over them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrs_tf.core.errors import ProtocolError

__all__ = ["RFPulse", "sinc_pulse", "REFOCUSING_PULSES"]


@dataclass(frozen=True)
class RFPulse:
    """A shaped RF pulse (hashable: it keys simulation caches).

    Attributes:
        name: label (kept in basis metadata).
        amplitude: relative B1 amplitude of each step (any scale, sign allowed; scaled to ``flip_deg`` on resonance).
        phase_deg: phase of each step (deg), or ``()`` for all zero (a real waveform, about x).
        duration_ms: pulse length (ms); every step lasts ``duration_ms / len(amplitude)``.
        flip_deg: nominal flip angle on resonance (deg).
        bandwidth_hz: the refocused band's full width (Hz), the slice's nominal thickness as a gradient offset.
        positions: number of gradient offsets at which it is simulated.
        span: they cover ``+-span * bandwidth_hz`` (the slice is ``+-0.5 * bandwidth_hz``; the rest holds its
            transition bands and their chemical-shift displacement).
    """

    name: str
    amplitude: tuple[float, ...]
    duration_ms: float
    bandwidth_hz: float
    phase_deg: tuple[float, ...] = ()
    flip_deg: float = 180.0
    positions: int = 41
    span: float = 1.0

    def __post_init__(self) -> None:
        a = np.asarray(self.amplitude, float)
        if a.ndim != 1 or len(a) < 1 or not np.all(np.isfinite(a)):
            raise ProtocolError(f"pulse {self.name!r}: amplitude must be a finite 1-D sequence")
        if self.phase_deg and len(self.phase_deg) != len(a):
            raise ProtocolError(f"pulse {self.name!r}: {len(self.phase_deg)} phases for {len(a)} amplitude steps")
        if not (self.duration_ms > 0 and self.bandwidth_hz > 0 and self.positions >= 1 and self.span > 0):
            raise ProtocolError(f"pulse {self.name!r}: duration, bandwidth, positions and span must be positive")
        if abs(self._area()) < 1e-12 * np.abs(a).sum():
            raise ProtocolError(f"pulse {self.name!r}: the waveform's area is zero, it has no flip on resonance")

    def _steps(self) -> tuple[np.ndarray, np.ndarray]:
        """(relative amplitude, phase in rad) of each step."""
        a = np.asarray(self.amplitude, float)
        return a, (np.deg2rad(np.asarray(self.phase_deg, float)) if self.phase_deg else np.zeros(len(a)))

    def _area(self) -> complex:
        a, phase = self._steps()
        return complex(np.sum(a * np.exp(1j * phase)))

    @property
    def n_steps(self) -> int:
        return len(self.amplitude)

    @property
    def step_s(self) -> float:
        return self.duration_ms * 1e-3 / self.n_steps

    def rf(self) -> tuple[np.ndarray, np.ndarray]:
        """``(omega1, phase)``: B1 of each step as a nutation rate (rad/s) and phase (rad), scaled so that the
        on-resonance rotation of the whole pulse is ``flip_deg`` (exact for a waveform of constant phase)."""
        a, phase = self._steps()
        scale = np.deg2rad(self.flip_deg) / (abs(self._area()) * self.step_s)
        return a * scale, phase

    def offsets_hz(self) -> np.ndarray:
        """Gradient offsets (Hz) of the simulated positions across the slice."""
        if self.positions == 1:
            return np.zeros(1)
        half = self.span * self.bandwidth_hz
        return np.linspace(-half, half, self.positions)

    def describe(self) -> dict:
        """Plain description (for basis metadata and cache keys)."""
        import hashlib

        digest = hashlib.sha256(np.asarray(self.amplitude, float).tobytes() +
                                np.asarray(self.phase_deg, float).tobytes()).hexdigest()[:12]
        return {"name": self.name, "duration_ms": self.duration_ms, "bandwidth_hz": self.bandwidth_hz,
                "flip_deg": self.flip_deg, "n_steps": self.n_steps, "positions": self.positions, "span": self.span,
                "waveform_digest": digest}

    def profile(self, offsets_hz: np.ndarray | None = None) -> np.ndarray:
        """Refocusing profile ``beta**2`` (complex) of one uncoupled spin at each gradient offset (Hz): the crushed
        spin-echo amplitude (Cayley-Klein parameter of the rotation; 1 for a perfect 180 deg pulse)."""
        offsets = self.offsets_hz() if offsets_hz is None else np.asarray(offsets_hz, float)
        w1, phase = self.rf()
        dt = self.step_s
        out = np.empty(len(offsets), complex)
        for i, off in enumerate(offsets):
            a, b = 1.0 + 0j, 0.0 + 0j  # Cayley-Klein parameters of the accumulated rotation
            for w, ph in zip(w1, phase):
                wz = 2 * np.pi * off
                rate = np.hypot(w, wz)
                half = rate * dt / 2
                if rate == 0:
                    continue
                nx, ny, nz = w * np.cos(ph) / rate, w * np.sin(ph) / rate, wz / rate
                ca, sb = np.cos(half), np.sin(half)
                ak, bk = ca - 1j * nz * sb, -1j * (nx + 1j * ny) * sb
                a, b = ak * a - np.conj(bk) * b, bk * a + np.conj(ak) * b
            out[i] = b ** 2
        return out


def sinc_pulse(duration_ms: float = 5.2, bandwidth_hz: float = 1200.0, n_steps: int = 200, flip_deg: float = 180.0,
               window: str = "hamming", name: str | None = None, positions: int = 41, span: float = 1.0) -> RFPulse:
    """A windowed-sinc slice-selective pulse: ``sinc(TBW (t/T - 1/2))`` times a Hamming (or ``none``) window, with
    time-bandwidth product ``TBW = duration * bandwidth``. A 180 deg sinc with TBW 4-8 and 4-7 ms is what scanners'
    PRESS refocusing pulses resemble (their exact, optimised shapes are proprietary)."""
    tbw = duration_ms * 1e-3 * bandwidth_hz
    if tbw < 1.0:
        raise ProtocolError(f"time-bandwidth product {tbw:.2f} < 1: not a slice-selective pulse")
    u = (np.arange(n_steps) + 0.5) / n_steps - 0.5
    shape = np.sinc(tbw * u)
    if window == "hamming":
        shape = shape * (0.54 + 0.46 * np.cos(2 * np.pi * u))
    elif window != "none":
        raise ProtocolError(f"unknown window {window!r} (hamming or none)")
    label = name or f"sinc {duration_ms:g} ms {bandwidth_hz:g} Hz"
    return RFPulse(label, tuple(float(x) for x in shape), float(duration_ms), float(bandwidth_hz), (),
                   float(flip_deg), int(positions), float(span))


#: refocusing pulses like the three vendors' 3 T PRESS ones (duration, bandwidth); shapes are generic sincs
REFOCUSING_PULSES = {
    "sinc_5.2ms_1200hz": sinc_pulse(5.2, 1200.0),
    "sinc_6.9ms_900hz": sinc_pulse(6.9, 900.0),
    "sinc_4.0ms_1600hz": sinc_pulse(4.0, 1600.0),
}

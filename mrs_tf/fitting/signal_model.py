"""The QUEST signal model: a basis set with Voigt damping, shifts and phases, its derivatives, and the variable
projection (VARPRO) of its linear amplitudes. Shared by :mod:`mrs_tf.quest` (the fit) and :mod:`mrs_tf.crlb`
(the Fisher information of the same model).

Model of a FID ``y`` sampled at ``t = k * dwell_s`` (s)::

    y(t) = exp(i phi0) * P1(phi1) [ sum_m a_m * b_m(t) * exp(-pi L_d(m) t - (pi G t)^2 / (4 ln 2) + 2 pi i f_m t) ]
           + noise,                  f_m = F + delta_s(m)

* ``a_m`` real amplitudes in basis units (mM for mrs-tf's basis), solved linearly (variable projection);
* ``L_g`` Lorentzian FWHM (Hz) per damping group ``d(m)``, ``G`` a common Gaussian FWHM (Hz);
* ``F`` a common frequency shift (Hz; positive = towards lower ppm) and ``delta_g`` per shift group, held near 0 by a
  Gaussian soft constraint of width ``shift_sd_hz`` (QUEST's prior knowledge);
* ``phi0`` zero-order phase (rad) and ``P1(phi1)`` the first-order phase ``exp(i phi1 (ppm - ref_ppm))`` applied in
  the frequency domain (``phi1`` in deg/ppm, pivot ``ref_ppm``), exactly as :func:`mrs_tf.synthesize` applies it.
  The fitted zero-order parameter is the phase at ``pivot_ppm_rel`` (ppm - ref_ppm, the centre of the metabolite
  signals), which decorrelates it from ``phi1``; :meth:`SignalModel.unpack` returns ``phase0`` at ``ref_ppm``.

The fit is done in the *corrected frame*: the data are de-phased, ``y'' = exp(-i phi0) P1(-phi1) y`` (a unitary
map, so white noise stays white), and compared with the bare basis model. An observation operator selects which part
of the FID is fitted: time points ``k >= first_point`` (QUEST's truncation) or a ppm band of the spectrum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize

__all__ = ["Observation", "SignalModel", "stack"]

_LN2x4 = 4 * np.log(2)
DEG = np.pi / 180


def stack(v: np.ndarray) -> np.ndarray:
    """Complex (..., K) -> real (..., 2K): real parts then imaginary parts."""
    return np.concatenate([v.real, v.imag], axis=-1)


@dataclass(frozen=True)
class Observation:
    """Which part of the (corrected) FID enters the fit: time points from ``first_point`` on, or (``band`` given)
    the unshifted-FFT bins ``band`` of the spectrum, scaled by ``1/sqrt(n)`` so that white noise keeps its sigma."""

    first_point: int = 0
    band: np.ndarray | None = None

    def __call__(self, v: np.ndarray) -> np.ndarray:
        if self.band is not None:
            return np.fft.fft(v, axis=-1)[..., self.band] / np.sqrt(v.shape[-1])
        return v[..., self.first_point:]


class SignalModel:
    """Parameter layout, columns, derivatives and VARPRO residual/Jacobian for one FID.

    Nonlinear parameter vector ``theta`` (in this order, each present only when fitted): ``phase0`` (rad),
    ``phase1`` (deg/ppm), ``lorentz_<g>`` (Hz, one per damping group), ``gauss`` (Hz), ``shift`` (Hz),
    ``dshift_<g>`` (Hz, one per shift group when there is more than one).
    """

    def __init__(self, basis_fids: np.ndarray, dwell_s: float, field_mhz: float, *, damping_groups, shift_groups,
                 gaussian: bool = True, fit_phase0: bool = True, fit_phase1: bool = True, phase0: float = 0.0,
                 phase1: float = 0.0, gauss_hz: float = 0.0, complex_amplitudes: bool = False,
                 extra: np.ndarray | None = None, observation: Observation = Observation(), shift_sd_hz: float = 2.0,
                 nonnegative: bool = False, pivot_ppm_rel: float = 0.0, extra_penalty: np.ndarray | None = None):
        self.basis = np.asarray(basis_fids, complex)
        self.n_met, self.n = self.basis.shape
        self.dwell_s, self.field_mhz = float(dwell_s), float(field_mhz)
        self.t = np.arange(self.n) * self.dwell_s
        self.ppm_rel = -np.fft.fftfreq(self.n, self.dwell_s) / self.field_mhz  # ppm - ref_ppm, unshifted order
        self.dgroups = np.asarray(damping_groups, int)
        self.sgroups = np.asarray(shift_groups, int)
        self.n_dg, self.n_sg = int(self.dgroups.max()) + 1, int(self.sgroups.max()) + 1
        self.gaussian, self.fit_phase0, self.fit_phase1 = gaussian, fit_phase0, fit_phase1
        self.fixed_phase0, self.fixed_phase1, self.fixed_gauss = phase0, phase1, gauss_hz
        self.complex_amplitudes = complex_amplitudes
        self.extra = None if extra is None or len(extra) == 0 else np.asarray(extra, complex)
        # roughness penalty on the extra (baseline) amplitudes: rows R @ c, in data units, for the real and the
        # imaginary parts alike (a Gaussian prior on R c with sigma = the noise sigma)
        self.extra_penalty = None if self.extra is None or extra_penalty is None else np.asarray(extra_penalty, float)
        self.obs = observation
        self.shift_sd_hz = float(shift_sd_hz)
        self.nonnegative = nonnegative
        self.pivot = float(pivot_ppm_rel) if fit_phase1 else 0.0
        names = (["phase0"] if fit_phase0 else []) + (["phase1"] if fit_phase1 else [])
        names += [f"lorentz_{g}" for g in range(self.n_dg)] + (["gauss"] if gaussian else []) + ["shift"]
        names += [f"dshift_{g}" for g in range(self.n_sg)] if self.n_sg > 1 else []
        self.names = names
        self.idx = {nm: i for i, nm in enumerate(names)}
        self.dmember = self._membership(self.dgroups, self.n_dg)  # (n_groups, M) or None (one group each)
        self.smember = self._membership(self.sgroups, self.n_sg)
        self._cache_key = None

    @staticmethod
    def _membership(groups: np.ndarray, n_groups: int):
        if n_groups == len(groups) and np.array_equal(groups, np.arange(n_groups)):
            return None
        return (groups[None, :] == np.arange(n_groups)[:, None]).astype(complex)  # complex: BLAS zgemm, not a loop

    @staticmethod
    def _group_sums(member, weighted: np.ndarray) -> np.ndarray:
        return weighted if member is None else member @ weighted

    # --- parameters ------------------------------------------------------------------------------------------------
    def unpack(self, theta) -> dict:
        th = np.asarray(theta, float)
        i = self.idx
        lor = th[i["lorentz_0"]:i["lorentz_0"] + self.n_dg]
        dsh = th[i["dshift_0"]:i["dshift_0"] + self.n_sg] if self.n_sg > 1 else np.zeros(1)
        phase1 = th[i["phase1"]] if self.fit_phase1 else self.fixed_phase1
        pivot_phase = th[i["phase0"]] if self.fit_phase0 else self.fixed_phase0 + DEG * phase1 * self.pivot
        return {"phase0": pivot_phase - DEG * phase1 * self.pivot, "phase1": phase1,
                "lorentz": lor, "gauss": th[i["gauss"]] if self.gaussian else self.fixed_gauss,
                "shift": th[i["shift"]], "dshift": dsh}

    def pack(self, phase0=0.0, phase1=0.0, lorentz=3.0, gauss=5.0, shift=0.0, dshift=0.0) -> np.ndarray:
        """theta from physical values (``phase0`` in rad at ref_ppm, ``phase1`` deg/ppm, Hz)."""
        out = ([phase0 + DEG * phase1 * self.pivot] if self.fit_phase0 else []) + ([phase1] if self.fit_phase1 else [])
        out += list(np.broadcast_to(np.asarray(lorentz, float), (self.n_dg,)))
        out += ([gauss] if self.gaussian else []) + [shift]
        if self.n_sg > 1:
            out += list(np.broadcast_to(np.asarray(dshift, float), (self.n_sg,)))
        return np.array(out, float)

    def metabolite_shifts(self, p: dict) -> np.ndarray:
        """f_m (Hz) of every basis signal."""
        return p["shift"] + (p["dshift"][self.sgroups] if self.n_sg > 1 else 0.0)

    # --- model pieces ----------------------------------------------------------------------------------------------
    def phase1_op(self, v: np.ndarray, phase1_deg: float) -> np.ndarray:
        """P1(phase1) v: first-order phase in the frequency domain (pivot ref_ppm)."""
        if phase1_deg == 0:
            return v
        return np.fft.ifft(np.fft.fft(v, axis=-1) * np.exp(1j * DEG * phase1_deg * self.ppm_rel), axis=-1)

    def frame(self, y: np.ndarray, p: dict) -> np.ndarray:
        """Corrected data ``exp(-i phi0) P1(-phi1) y``."""
        return np.exp(-1j * p["phase0"]) * self.phase1_op(y, -p["phase1"])

    def unframe(self, v: np.ndarray, p: dict) -> np.ndarray:
        """Back to the acquisition frame: ``exp(i phi0) P1(phi1) v``."""
        return np.exp(1j * p["phase0"]) * self.phase1_op(v, p["phase1"])

    def dphase1(self, v: np.ndarray) -> np.ndarray:
        """d/dphi1 of P1(phi1) v at phi1 = 0 (per deg/ppm)."""
        return np.fft.ifft(np.fft.fft(v, axis=-1) * (1j * DEG * self.ppm_rel), axis=-1)

    def columns(self, p: dict) -> np.ndarray:
        """(M, N) damped, shifted basis signals in the corrected frame."""
        t = self.t
        expo = np.outer(-np.pi * p["lorentz"][self.dgroups] + 2j * np.pi * self.metabolite_shifts(p), t)
        expo += -(np.pi * p["gauss"] * t) ** 2 / _LN2x4
        return self.basis * np.exp(expo)

    def dcolumns_times(self, phi: np.ndarray, amp: np.ndarray, p: dict) -> list[np.ndarray]:
        """d(Phi a)/d(shape parameter) for each lorentz_g, gauss, shift, dshift_g (the order of ``names``)."""
        t = self.t
        weighted = phi * amp[:, None]
        total = weighted.sum(0)
        out = []
        out += list(-np.pi * t * self._group_sums(self.dmember, weighted))
        if self.gaussian:
            out.append(-(np.pi * t) ** 2 * p["gauss"] * 2 / _LN2x4 * total)
        out.append(2j * np.pi * t * total)
        if self.n_sg > 1:
            out += list(2j * np.pi * t * self._group_sums(self.smember, weighted))
        return out

    def derivative_columns(self, v: np.ndarray, phi: np.ndarray, amp: np.ndarray, p: dict) -> list[np.ndarray]:
        """d(model)/d(theta) in theta's order, for a model ``v = Phi a`` in the corrected frame: the phases rotate
        ``v`` (``phase0`` is the phase at the pivot), the shape parameters act through :meth:`dcolumns_times`."""
        cols = []
        if self.fit_phase0:
            cols.append(1j * v)
        if self.fit_phase1:
            cols.append(self.dphase1(v) - 1j * DEG * self.pivot * v)
        return cols + self.dcolumns_times(phi, amp, p)

    def linear_columns(self, phi: np.ndarray) -> np.ndarray:
        """(n_linear, N) complex columns whose real amplitudes are solved linearly."""
        cols = [phi, 1j * phi] if self.complex_amplitudes else [phi]
        if self.extra is not None:
            cols += [self.extra, 1j * self.extra]
        return np.concatenate(cols, axis=0)

    def penalty_rows(self, n_linear: int) -> np.ndarray:
        """(2R, n_linear) rows of the baseline roughness penalty over the linear amplitudes (zero rows: none)."""
        if self.extra_penalty is None:
            return np.zeros((0, n_linear))
        k = len(self.extra)
        start = 2 * self.n_met if self.complex_amplitudes else self.n_met
        rows = np.zeros((2 * len(self.extra_penalty), n_linear))
        rows[:len(self.extra_penalty), start:start + k] = self.extra_penalty
        rows[len(self.extra_penalty):, start + k:start + 2 * k] = self.extra_penalty
        return rows

    def metabolite_amplitudes(self, lin: np.ndarray) -> np.ndarray:
        """Complex (M,) metabolite amplitudes from the linear solution."""
        m = self.n_met
        return lin[:m] + 1j * lin[m:2 * m] if self.complex_amplitudes else lin[:m].astype(complex)

    def extra_amplitudes(self, lin: np.ndarray) -> np.ndarray:
        if self.extra is None:
            return np.zeros(0, complex)
        k = len(self.extra)
        start = 2 * self.n_met if self.complex_amplitudes else self.n_met
        return lin[start:start + k] + 1j * lin[start + k:start + 2 * k]

    # --- VARPRO ----------------------------------------------------------------------------------------------------
    def observe(self, observation: Observation) -> "SignalModel":
        """Fit (and bound) another part of the FID; the cached solution no longer applies."""
        self.obs = observation
        self._cache_key = None
        return self

    def bind(self, y: np.ndarray, sigma: float) -> "SignalModel":
        self.y = np.asarray(y, complex)
        self.sigma = float(sigma)
        self._cache_key = None
        return self

    def _solve(self, theta):
        key = np.asarray(theta, float).tobytes()
        if key == self._cache_key:
            return self._cache
        p = self.unpack(theta)
        y2 = self.frame(self.y, p)
        phi = self.columns(p)
        lin_cols = self.linear_columns(phi)
        a_mat = stack(self.obs(lin_cols)).T / self.sigma           # (2K, n_linear)
        b = stack(self.obs(y2)) / self.sigma
        pen = self.penalty_rows(a_mat.shape[1])
        if len(pen):
            a_mat, b = np.vstack([a_mat, pen / self.sigma]), np.concatenate([b, np.zeros(len(pen))])
        if self.nonnegative and not self.complex_amplitudes:
            # metabolite amplitudes >= 0, background amplitudes free (bounded-variable least squares)
            lower = np.full(a_mat.shape[1], -np.inf)
            lower[:self.n_met] = 0.0
            lin = scipy.optimize.lsq_linear(a_mat, b, bounds=(lower, np.inf), method="bvls").x
            active = np.ones(len(lin), bool)
            active[:self.n_met] = lin[:self.n_met] > 0
            q = scipy.linalg.qr(a_mat[:, active], mode="economic", check_finite=False)[0]
        else:
            q, r = scipy.linalg.qr(a_mat, mode="economic", check_finite=False)
            lin = scipy.linalg.lstsq(r, q.T @ b, check_finite=False)[0]
        res = b - a_mat @ lin
        self._cache_key, self._cache = key, (p, y2, phi, lin, q, res)
        return self._cache

    def _prior(self, theta):
        if self.n_sg <= 1:
            return np.zeros(0), np.zeros((0, len(theta)))
        i0 = self.idx["dshift_0"]
        rows = np.zeros((self.n_sg, len(theta)))
        rows[np.arange(self.n_sg), i0 + np.arange(self.n_sg)] = 1.0 / self.shift_sd_hz
        return np.asarray(theta)[i0:i0 + self.n_sg] / self.shift_sd_hz, rows

    def residual(self, theta) -> np.ndarray:
        res = self._solve(theta)[5]
        return np.concatenate([res, self._prior(theta)[0]])

    def jacobian(self, theta) -> np.ndarray:
        """Kaufman's approximation of the VARPRO Jacobian: ``P_perp (d y''/d theta - dPhi/d theta a)``."""
        p, y2, phi, lin, q, _ = self._solve(theta)
        amp = self.metabolite_amplitudes(lin)
        # residual y'' - Phi a: the data y'' = exp(-i phi0) P1(-phi1) y turn against the phases and the model moves
        # with the shape parameters, so every column is minus the model's derivative. The phase columns are taken
        # on the model Phi a, not on y'': the gradient is the same (Re<i r, r> = 0, and the residual is orthogonal
        # to the free baseline terms), but y'' would add the noise's energy to the Gauss-Newton curvature and
        # shorten every phase step (at low SNR by half or more: slow, linear convergence)
        d_mat = -stack(self.obs(np.array(self.derivative_columns(amp @ phi, phi, amp, p)))).T / self.sigma
        if self.extra_penalty is not None:  # the penalty rows do not depend on theta
            d_mat = np.vstack([d_mat, np.zeros((len(q) - len(d_mat), d_mat.shape[1]))])
        jac = d_mat - q @ (q.T @ d_mat)
        return np.vstack([jac, self._prior(theta)[1]])

    # --- Fisher information ----------------------------------------------------------------------------------------
    def fisher_jacobian(self, theta, lin) -> np.ndarray:
        """(2K, n_linear + n_theta) real Jacobian of the observed model w.r.t. every parameter (linear amplitudes
        first, then ``theta``), divided by sigma; the model's own derivatives, no data enter."""
        p = self.unpack(theta)
        phi = self.columns(p)
        amp = self.metabolite_amplitudes(np.asarray(lin, float))
        lin_cols = self.linear_columns(phi)
        cols = list(lin_cols) + self.derivative_columns(amp @ phi, phi, amp, p)
        jac = stack(self.obs(np.array(cols))).T / self.sigma
        pen = self.penalty_rows(len(lin_cols))
        if len(pen):  # the baseline prior's information, as rows (no theta dependence)
            jac = np.vstack([jac, np.hstack([pen, np.zeros((len(pen), len(cols) - len(lin_cols)))]) / self.sigma])
        return jac

    def prior_precision(self, n_linear: int, theta) -> np.ndarray:
        """Diagonal of the soft constraints' information, aligned with :meth:`fisher_jacobian`'s columns."""
        out = np.zeros(n_linear + len(theta))
        if self.n_sg > 1:
            i0 = n_linear + self.idx["dshift_0"]
            out[i0:i0 + self.n_sg] = 1.0 / self.shift_sd_hz ** 2
        return out

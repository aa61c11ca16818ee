"""Network-initialised fit: QUEST's final model, solved for a batch of spectra at once from the network's answer.

``table = mrs_tf.hybrid.fit(fids, basis, initial=network_amplitudes)`` fits every FID with the signal model of
:mod:`mrs_tf.signal_model` observed over a ppm band of the spectrum with a smooth spline baseline (QUEST's
``background="spline"`` stage, :class:`~mrs_tf.quest.QuestOptions`): real amplitudes solved by variable projection,
a common Lorentzian and Gaussian FWHM (Hz), a common shift (Hz) with per-metabolite deviations held near 0 by a
Gaussian soft constraint, zero- and first-order phase. It differs from :func:`mrs_tf.quest.fit` in how it gets there:

1. a starting model from ``initial`` (amplitudes in basis units, e.g. the network's; prior means otherwise): the
   global shift from the cross-correlation of magnitude spectra with that template, then the linewidths and the
   zero-order phase from a small grid (the template's best complex match to the data), so there is no 180-degree
   ambiguity and no staged search;
2. Levenberg-Marquardt on the variable-projection functional (Kaufman's Jacobian), vectorised over the batch: every
   spectrum of a chunk moves in one set of FFTs and stacked QR factorisations, each with its own damping factor,
   until its cost stops falling (``tol``) or ``max_iterations``;
3. the same solution object, table row, CRLB (Fisher information of the final model, :mod:`mrs_tf.crlb`) and fit
   diagnostics as QUEST (:class:`~mrs_tf.quest.QuestResult`): identical columns, plus ``method``;
4. spectra whose refined fit is poor (status ``poor_fit`` or ``max_iterations``, see
   :data:`mrs_tf.quest.POOR_FIT_LIMITS`) are fitted again by the full QUEST search (``fallback=True``); the better of
   the two (lower reduced chi2) is kept and ``method`` says which (``hybrid`` or ``quest_fallback``).

Only ``damping="common"`` and ``shift`` ``"common"`` or ``"per_metabolite"`` are supported; amplitudes are free in
sign (QUEST's unbiased default; ``nonnegative`` is refused rather than ignored).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.fft
from threadpoolctl import threadpool_limits

from .basis import BasisSet
from .crlb import combined, covariance, tcr_rows
from .errors import MRSError
from .metabolites import prior_means
from .quest import (QuestOptions, QuestResult, _above_noise, _band, _failed_row, _poor_fit_problems, _snr,
                    check_protocol, fit_one, fit_quality, spectral_noise_sd, spline_baseline)
from .signal_model import DEG, stack
from .table import ResultTable

__all__ = ["HYBRID_OPTIONS", "fit", "initial_parameters"]

_LN2x4 = 4 * np.log(2)

#: the hybrid's default model: QUEST's spline stage over 0.2-4.2 ppm, amplitudes free in sign
HYBRID_OPTIONS = QuestOptions(background="spline", ppm_range=(0.2, 4.2), baseline_knot_ppm=0.1,
                              baseline_stiffness=1.0)

#: (Lorentzian, Gaussian) FWHM pairs (Hz) tried for the starting model
_WIDTH_GRID = [(lor, gau) for lor in (1.0, 3.0, 6.0, 10.0) for gau in (3.0, 7.0, 12.0)]


#: the first Levenberg-Marquardt steps: global parameters only, data and model broadened by this much (Hz)
_START_APOD_HZ = 6.0
_START_ITERATIONS = 10


@dataclass
class _Problem:
    """What every spectrum of a fit shares: the basis, the observed band, the baseline and its penalty, bounds."""

    basis: BasisSet
    options: QuestOptions
    band: np.ndarray          # unshifted FFT bins of the fitted band
    prel: np.ndarray          # ppm - ref_ppm of those bins
    splines_td: np.ndarray    # (J, N) baseline signals (time domain, QUEST's spline_baseline)
    splines: np.ndarray       # (K, J) their values in the band (real B-splines)
    penalty: np.ndarray       # (J - 2, J) second differences x stiffness
    per_met: bool             # per-metabolite shifts
    pivot: float              # ppm - ref_ppm where the fitted zero-order phase applies

    @classmethod
    def build(cls, basis: BasisSet, options: QuestOptions) -> "_Problem":
        if options.damping != "common":
            raise MRSError("the hybrid fit supports damping='common' only")
        if options.shift not in ("common", "per_metabolite"):
            raise MRSError("the hybrid fit supports shift='common' or 'per_metabolite' only")
        if options.nonnegative:
            raise MRSError("the hybrid fit solves free-sign amplitudes; use QuestOptions(nonnegative=False) or "
                           "quest.fit for a nonnegative fit")
        band = _band(basis, options.ppm_range or (0.2, 4.2)).band
        if len(band) < 16:
            raise MRSError(f"the fit band {options.ppm_range} holds only {len(band)} spectral points")
        splines_td = spline_baseline(basis, band, options.baseline_knot_ppm)
        splines = (scipy.fft.fft(splines_td, axis=-1)[:, band] / np.sqrt(basis.n_points)).real.T
        penalty = options.baseline_stiffness * np.diff(np.eye(splines.shape[1]), 2, axis=0)
        prel = basis.fft_ppm[band] - basis.ref_ppm
        return cls(basis, options, band, prel, splines_td, splines, penalty, options.shift == "per_metabolite",
                   pivot=float(np.mean(prel)))

    @property
    def n_met(self) -> int:
        return self.basis.n_metabolites

    @property
    def n_theta(self) -> int:
        return 5 + (self.n_met if self.per_met else 0)

    def bounds(self, shift0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, P) lower and upper bounds (QUEST's, :func:`mrs_tf.quest._bounds`)."""
        o, b = self.options, len(shift0)
        half = max(0.05 * self.basis.field_mhz, 5.0)
        lo = np.tile([-np.inf, -o.phase1_max_deg_per_ppm, 0.0, 0.0, 0.0] + [-o.shift_bound_hz] * (self.n_theta - 5),
                     (b, 1))
        hi = np.tile([np.inf, o.phase1_max_deg_per_ppm, o.lorentz_max_hz, o.gauss_max_hz, 0.0]
                     + [o.shift_bound_hz] * (self.n_theta - 5), (b, 1))
        lo[:, 4], hi[:, 4] = shift0 - half, shift0 + half
        return lo, hi


def _fft_band(v: np.ndarray, prob: _Problem) -> np.ndarray:
    return scipy.fft.fft(v, axis=-1, workers=-1)[..., prob.band] / np.sqrt(v.shape[-1])


def _envelope(prob: _Problem, lorentz, gauss, shift) -> np.ndarray:
    """(B, N) common Voigt damping and shift ``exp(-pi L t - (pi G t)^2 / 4 ln 2 + 2 pi i F t)``."""
    t = prob.basis.time
    return np.exp(-np.pi * lorentz[:, None] * t - (np.pi * gauss[:, None] * t) ** 2 / _LN2x4
                  + 2j * np.pi * shift[:, None] * t)


def initial_parameters(yb: np.ndarray, fids: np.ndarray, prob: _Problem, amplitudes: np.ndarray) -> np.ndarray:
    """(B, P) starting parameters from the template ``amplitudes @ basis`` (B, M): global shift by magnitude
    cross-correlation (+-search_ppm), then the (Lorentzian, Gaussian) pair of :data:`_WIDTH_GRID` and the zero-order
    phase of the template's best complex match in the band; first-order phase and deviations 0."""
    basis, n = prob.basis, prob.basis.n_points
    t = basis.time
    template = amplitudes @ basis.fids                                         # (B, N)
    ref = np.abs(scipy.fft.fft(template * np.exp(-np.pi * 6.0 * t - (np.pi * 6.0 * t) ** 2 / 2.77), 2 * n, axis=-1))
    dat = np.abs(scipy.fft.fft(fids * np.exp(-np.pi * 4.0 * t), 2 * n, axis=-1))
    ref -= ref.mean(axis=1, keepdims=True)
    dat -= dat.mean(axis=1, keepdims=True)
    corr = scipy.fft.ifft(scipy.fft.fft(dat, axis=-1) * np.conj(scipy.fft.fft(ref, axis=-1)), axis=-1).real
    hz_per_bin = 1.0 / (2 * n * basis.dwell_s)
    max_lag = int(prob.options.search_ppm * basis.field_mhz / hz_per_bin)
    lags = np.r_[0:max_lag + 1, -max_lag:0]
    shift = lags[np.argmax(corr[:, lags], axis=1)] * hz_per_bin
    best = np.full(len(yb), -np.inf)
    theta = np.zeros((len(yb), prob.n_theta))
    theta[:, 4] = shift
    for lor, gau in _WIDTH_GRID:
        model = _fft_band(template * _envelope(prob, np.full(len(yb), lor), np.full(len(yb), gau), shift), prob)
        inner = np.sum(np.conj(model) * yb, axis=1)
        score = np.abs(inner) ** 2 / np.maximum(np.sum(np.abs(model) ** 2, axis=1), 1e-300)
        better = score > best
        best[better] = score[better]
        theta[better, 0] = np.angle(inner[better])
        theta[better, 2], theta[better, 3] = lor, gau
    return theta


class _Batch:
    """The VARPRO functional of a batch at its current parameters: residual, Jacobian, solution pieces."""

    def __init__(self, prob: _Problem, yb: np.ndarray, sigma: np.ndarray, theta: np.ndarray, apod_hz: float = 0.0):
        self.prob, self.yb, self.sigma, self.theta, self.apod_hz = prob, yb, sigma, theta, apod_hz
        basis, m = prob.basis, prob.n_met
        t = basis.time
        k, j = len(prob.band), prob.splines.shape[1]
        psi, phase1, lor, gau, shift = theta[:, 0], theta[:, 1], theta[:, 2], theta[:, 3], theta[:, 4]
        dev = theta[:, 5:] if prob.per_met else np.zeros((len(theta), m))
        env = _envelope(prob, lor + apod_hz, gau, shift)                           # (B, N)
        phi_td = basis.fids[None] * env[:, None, :] * np.exp(2j * np.pi * dev[:, :, None] * t)  # (B, M, N)
        phi = _fft_band(phi_td, prob)                                              # (B, M, K)
        tphi = _fft_band(phi_td * t, prob)
        rot = np.exp(-1j * (psi[:, None] + DEG * phase1[:, None] * (prob.prel - prob.pivot)))
        data = rot * self.yb                                                       # corrected data in the band
        s = sigma[:, None, None]
        b = len(theta)
        n_lin = m + 2 * j
        n_pen = 2 * len(prob.penalty)
        a_mat = np.zeros((b, 2 * k + n_pen, n_lin))
        a_mat[:, :2 * k, :m] = np.swapaxes(stack(phi), 1, 2)
        a_mat[:, :k, m:m + j] = prob.splines
        a_mat[:, k:2 * k, m + j:] = prob.splines
        a_mat[:, 2 * k:2 * k + n_pen // 2, m:m + j] = prob.penalty
        a_mat[:, 2 * k + n_pen // 2:, m + j:] = prob.penalty
        a_mat /= s
        rhs = np.zeros((b, 2 * k + n_pen))
        rhs[:, :2 * k] = stack(data) / sigma[:, None]
        q, r = np.linalg.qr(a_mat)
        lin = np.linalg.solve(r, np.einsum("bij,bi->bj", q, rhs)[..., None])[..., 0]
        res = rhs - np.einsum("bij,bj->bi", a_mat, lin)
        amp = lin[:, :m]
        met = np.einsum("bm,bmk->bk", amp, phi)                                    # metabolite model in the band
        tmet = np.einsum("bm,bmk->bk", amp, tphi)
        t2met = _fft_band(np.einsum("bm,bmn->bn", amp, phi_td) * t ** 2, prob)
        # d(residual)/d(theta) with the amplitudes held (Kaufman): the data turn with the phases, the model moves
        # with the shape parameters
        cols = [-1j * data, -1j * DEG * (prob.prel - prob.pivot) * data, np.pi * tmet,
                (np.pi ** 2) * 2 * gau[:, None] / _LN2x4 * t2met, -2j * np.pi * tmet]
        dres = np.stack([stack(c) for c in cols], axis=2)                          # (B, 2K, 5)
        if prob.per_met:
            dres = np.concatenate([dres, np.swapaxes(stack(-2j * np.pi * amp[:, :, None] * tphi), 1, 2)], axis=2)
        dres = np.concatenate([dres, np.zeros((b, n_pen, dres.shape[2]))], axis=1) / s
        jac = dres - np.einsum("bij,bjk->bik", q, np.einsum("bij,bik->bjk", q, dres))
        if prob.per_met:  # the soft constraint on each deviation
            sd = prob.options.shift_sd_hz
            prior_jac = np.zeros((b, m, prob.n_theta))
            prior_jac[:, np.arange(m), 5 + np.arange(m)] = 1.0 / sd
            res = np.concatenate([res, dev / sd], axis=1)
            jac = np.concatenate([jac, prior_jac], axis=1)
        self.residual, self.jacobian = res, jac
        self.cost = 0.5 * np.sum(res ** 2, axis=1)
        self.lin, self.phi_td, self.met = lin, phi_td, met
        self.a_mat, self.data = a_mat, data

    def take(self, rows) -> None:
        """Keep only ``rows`` of every batched array (the spectra still moving)."""
        for key in ("yb", "sigma", "theta", "residual", "jacobian", "cost", "lin", "phi_td", "met", "a_mat", "data"):
            setattr(self, key, getattr(self, key)[rows])


def _levenberg_marquardt(prob: _Problem, yb, sigma, theta, lo, hi, max_iterations: int, tol: float,
                         free: np.ndarray | None = None, apod_hz: float = 0.0):
    """Batched LM on the VARPRO functional; returns ({spectrum: solution}, iterations per spectrum, converged per
    spectrum). ``free``: which parameters move (the others stay); ``apod_hz``: data and model both broadened by
    this Lorentzian (the data ``yb`` already apodised), a smoother cost for the first steps."""
    cur = _Batch(prob, yb, sigma, np.clip(theta, lo, hi), apod_hz)
    frozen = np.zeros(theta.shape[1], bool) if free is None else ~np.asarray(free, bool)
    lam = np.full(len(theta), 1e-3)
    iters = np.zeros(len(theta), int)
    done = np.zeros(len(theta), bool)
    final: dict = {}
    active = np.arange(len(theta))
    for _ in range(max_iterations):
        if not len(active):
            break
        jac, res = cur.jacobian, cur.residual
        hess = np.einsum("bij,bik->bjk", jac, jac)
        grad = np.einsum("bij,bi->bj", jac, res)
        diag = np.einsum("bjj->bj", hess)
        damped = hess + (lam[active, None] * np.maximum(diag, 1e-12))[:, :, None] * np.eye(hess.shape[1])
        if frozen.any():
            damped[:, frozen, :], damped[:, :, frozen] = 0.0, 0.0
            damped[:, frozen, frozen] = 1.0
            grad[:, frozen] = 0.0
        step = -np.linalg.solve(damped, grad[..., None])[..., 0]
        trial_theta = np.clip(cur.theta + step, lo[active], hi[active])
        trial = _Batch(prob, cur.yb, cur.sigma, trial_theta, apod_hz)
        better = trial.cost < cur.cost
        iters[active] += 1
        gain = (cur.cost - trial.cost) / np.maximum(cur.cost, 1e-300)
        lam[active] = np.where(better, np.maximum(lam[active] / 3, 1e-9), lam[active] * 4)
        for key in ("theta", "residual", "jacobian", "cost", "lin", "phi_td", "met", "a_mat", "data"):
            getattr(cur, key)[better] = getattr(trial, key)[better]
        finished = (better & (gain < tol)) | (lam[active] > 1e8)
        done[active[finished]] = True
        for i in np.flatnonzero(finished):
            final[active[i]] = _row_of(cur, i)
        keep = ~finished
        active = active[keep]
        cur.take(keep)
    for i, idx in enumerate(active):
        final[idx] = _row_of(cur, i)
    return final, iters, done


def _row_of(batch: _Batch, i: int) -> dict:
    return {"theta": batch.theta[i].copy(), "lin": batch.lin[i].copy(), "phi_td": batch.phi_td[i].copy(),
            "met": batch.met[i].copy(), "a_mat": batch.a_mat[i].copy(), "cost": float(batch.cost[i])}


def _result(prob: _Problem, y: np.ndarray, sigma: float, sol: dict, converged: bool, n_iter: int,
            seconds: float) -> QuestResult:
    """A :class:`~mrs_tf.quest.QuestResult` (CRLB, diagnostics, status) of one spectrum's solution."""
    basis, opts = prob.basis, prob.options
    names, m = list(basis.names), prob.n_met
    theta, lin = sol["theta"], sol["lin"]
    k, j = len(prob.band), prob.splines.shape[1]
    psi, phase1, lor, gau, shift = theta[:5]
    dev = theta[5:] if prob.per_met else np.zeros(m)
    phase0 = psi - DEG * phase1 * prob.pivot                                       # at ref_ppm
    # the corrected frame of the whole FID, as QUEST's SignalModel.frame
    spec = scipy.fft.fft(y) * np.exp(-1j * (phase0 + DEG * phase1 * (basis.fft_ppm - basis.ref_ppm)))
    y2 = scipy.fft.ifft(spec)
    amp = lin[:m]
    contributions = amp[:, None] * sol["phi_td"]
    coef = lin[m:m + j] + 1j * lin[m + j:]
    background = coef @ prob.splines_td
    fitted = contributions.sum(0) + background
    resid = y2 - fitted
    # Fisher information at the solution: the model's derivatives (no data), as mrs_tf.signal_model
    t = basis.time
    met = sol["met"]
    tphi = _fft_band(sol["phi_td"] * t, prob)
    tmet = amp @ tphi
    t2met = _fft_band((amp @ sol["phi_td"]) * t ** 2, prob)
    cols = [1j * met, 1j * DEG * (prob.prel - prob.pivot) * met, -np.pi * tmet,
            -(np.pi ** 2) * 2 * gau / _LN2x4 * t2met, 2j * np.pi * tmet]
    if prob.per_met:
        cols += list(2j * np.pi * amp[:, None] * tphi)
    dmod = stack(np.array(cols)).T / sigma                                        # (2K, P)
    a_mat = sol["a_mat"] * (sol["sigma_fit"] / sigma)
    n_pen = a_mat.shape[0] - 2 * k
    jac = np.hstack([a_mat, np.vstack([dmod, np.zeros((n_pen, dmod.shape[1]))])])
    prior = np.zeros(jac.shape[1])
    if prob.per_met:
        prior[len(lin) + 5:] = 1.0 / opts.shift_sd_hz ** 2
    cov = covariance(jac, prior)
    crlb = np.sqrt(np.diag(cov)[:m])
    observed = _fft_band(resid, prob)
    dof = max(2 * k - len(lin) - len(theta), 1)
    chi2 = float(np.sum(np.abs(observed) ** 2) / sigma ** 2 / dof)
    energy = float(np.sum(np.abs(met) ** 2) / sigma ** 2)
    shifts = shift + dev
    naa_shift = float(shifts[names.index("NAA")]) if "NAA" in names else 0.0
    snr = _snr(basis, contributions, sigma, naa_shift)
    quality = fit_quality(basis, contributions, background, resid, sigma, opts.ppm_range or (0.2, 4.2))
    tcr = float(amp[tcr_rows(names)].sum()) if len(tcr_rows(names)) else np.nan
    problems = _poor_fit_problems(quality, chi2, tcr)
    if not _above_noise(energy, m + len(theta)):
        status, message = "no_signal", f"fitted signal energy {energy:.0f} sigma^2 is at the noise level"
    elif problems:
        status, message = "poor_fit", "; ".join(problems)
    elif not converged:
        status, message = "max_iterations", f"stopped after {n_iter} iterations"
    else:
        status, message = "ok", ""
    return QuestResult(
        names=names, amplitudes=amp.copy(), crlb=crlb, covariance=cov, combinations=combined(names, amp, cov),
        phase0_deg=float(np.rad2deg((phase0 + np.pi) % (2 * np.pi) - np.pi)), phase1_deg_per_ppm=float(phase1),
        lorentz_hz=np.array([lor]), gauss_hz=float(gau), shift_hz=float(shift),
        metabolite_shift_hz=np.asarray(shifts, float), noise_sd=sigma, snr=snr, chi2=chi2, status=status,
        message=message, nfev=int(n_iter), seconds=seconds, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz,
        ref_ppm=basis.ref_ppm, data=y2, contributions=contributions, background=background, quality=quality)


def fit_results(fids, basis: BasisSet, initial: np.ndarray | None = None, options: QuestOptions | None = None, *,
                max_iterations: int = 40, tol: float = 1e-6, chunk: int = 64) -> list[QuestResult]:
    """Refined fits (no fallback) of every FID as :class:`~mrs_tf.quest.QuestResult`; see :func:`fit`."""
    opts = options or HYBRID_OPTIONS
    prob = _Problem.build(basis, opts)
    arr = check_protocol(fids, basis)
    if not np.all(np.isfinite(arr)):
        raise MRSError(f"spectra {np.flatnonzero(~np.all(np.isfinite(arr), axis=1))[:10].tolist()} contain NaN "
                       f"or Inf")
    n = len(arr)
    if initial is None:
        initial = np.tile(prior_means(basis.names), (n, 1))
    initial = np.asarray(initial, float)
    if initial.shape != (n, prob.n_met):
        raise MRSError(f"initial amplitudes have shape {initial.shape}; expected ({n}, {prob.n_met}) in the order "
                       f"of the basis ({', '.join(basis.names[:4])}, ...)")
    # the template is only a guide to shift, width and phase: a negative (noisy) estimate would flip it
    initial = np.clip(initial, 0, None)
    initial[initial.sum(1) <= 0] = prior_means(basis.names)
    out: list = []
    with threadpool_limits(1, user_api="blas"):  # small stacked matrices: BLAS threads cost more than they bring
        for start in range(0, n, chunk):
            t0 = time.perf_counter()
            ys = arr[start:start + chunk]
            if opts.water_ppm is not None:
                from .hlsvd import remove_band

                ys = np.array([remove_band(y, basis.dwell_s, basis.field_mhz, opts.water_ppm,
                                           ref_ppm=basis.ref_ppm)[0] for y in ys])
            yb = _fft_band(ys, prob)
            theta0 = initial_parameters(yb, ys, prob, initial[start:start + chunk])
            # sigma for the soft constraints: the spectral noise (signal-free regions), else the band's scatter
            sigma = np.array([spectral_noise_sd(y, basis) or np.std(np.diff(b_)) / 2 for y, b_ in zip(ys, yb)])
            sigma = np.where(sigma > 0, sigma, 1e-12)
            lo, hi = prob.bounds(theta0[:, 4])
            # first the global parameters on broadened data and model (a smooth cost far from the minimum), then
            # every parameter on the data as they are
            apod = np.exp(-np.pi * _START_APOD_HZ * basis.time)
            free = np.zeros(prob.n_theta, bool)
            free[[0, 2, 3, 4]] = True
            coarse, iters0, _ = _levenberg_marquardt(prob, _fft_band(ys * apod, prob), sigma, theta0, lo, hi,
                                                     _START_ITERATIONS, 1e-3, free=free, apod_hz=_START_APOD_HZ)
            theta1 = np.array([coarse[i]["theta"] for i in range(len(ys))])
            sols, iters, done = _levenberg_marquardt(prob, yb, sigma, theta1, lo, hi, max_iterations, tol)
            iters += iters0
            share = (time.perf_counter() - t0) / len(ys)
            for i, y in enumerate(ys):
                sol = dict(sols[i], sigma_fit=sigma[i])
                res = _result(prob, y, float(sigma[i]), sol, bool(done[i]), int(iters[i]), share)
                out.append(res)
    return out


def fit(fids, basis: BasisSet, initial: np.ndarray | None = None, options: QuestOptions | None = None, *,
        fallback: bool = True, max_iterations: int = 40, tol: float = 1e-6, chunk: int = 64,
        progress: bool = False) -> ResultTable:
    """Network-initialised fit of every FID; one row per spectrum with :func:`mrs_tf.quest.fit`'s columns and
    ``method`` (``hybrid`` or ``quest_fallback``).

    Args:
        fids: complex (n_spectra, n_points) or (n_points,) FIDs, mrs-tf's (NIfTI-MRS) sign convention.
        basis: a :class:`~mrs_tf.basis.BasisSet` with the data's points, dwell time and field.
        initial: (n_spectra, n_met) amplitudes in basis units in the basis's order (the network's estimate); the
            prior means when None.
        options: the model (:data:`HYBRID_OPTIONS` by default; ``background`` is always the spline).
        fallback: refit spectra whose refined fit is poor with the full QUEST search (same options).
        max_iterations, tol: Levenberg-Marquardt stops per spectrum when a step lowers the cost by less than
            ``tol`` (relative) or after ``max_iterations``.
        chunk: spectra per vectorised batch (memory ~ chunk x n_met x n_points x 48 bytes).
    """
    opts = options or HYBRID_OPTIONS
    arr = check_protocol(fids, basis)
    rows: list = [None] * len(arr)
    good = np.all(np.isfinite(arr), axis=1) & np.any(arr, axis=1)
    for i in np.flatnonzero(~good):
        bad = np.all(np.isfinite(arr[i]))
        rows[i] = _failed_row(basis.names, "no_signal" if bad else "nan_input",
                              "the FID is all zeros" if bad else "the FID contains NaN or Inf")
        rows[i]["method"] = "hybrid"
    idx = np.flatnonzero(good)
    init = None if initial is None else np.asarray(initial, float)[idx]
    from tqdm.auto import tqdm

    results = fit_results(arr[idx], basis, init, opts, max_iterations=max_iterations, tol=tol, chunk=chunk) \
        if len(idx) else []
    for i, res in tqdm(list(zip(idx, results)), desc="hybrid", unit="spectrum", disable=not progress):
        method = "hybrid"
        if fallback and res.status in ("poor_fit", "max_iterations"):
            try:
                full = fit_one(arr[i], basis, opts)
                if full.chi2 < res.chi2 or res.status == "max_iterations" and full.status == "ok":
                    full.seconds += res.seconds
                    res, method = full, "quest_fallback"
            except (np.linalg.LinAlgError, ValueError, FloatingPointError):
                pass
        rows[i] = {**res.row(), "method": method}
    table = ResultTable.from_rows([{"index": i, **r} for i, r in enumerate(rows)])
    from dataclasses import asdict

    table.options = asdict(opts)
    return table

"""Network-initialised fit: QUEST's signal model, solved for a batch of spectra at once from the network's answer.

``table = mrs_tf.hybrid.fit(fids, basis, initial=network_amplitudes)`` fits every FID with the model of
:mod:`mrs_tf.signal_model` (real amplitudes by variable projection, a common Lorentzian and Gaussian FWHM in Hz, a
common shift in Hz with per-metabolite deviations held near 0 by a Gaussian soft constraint, zero- and first-order
phase) and the background handling of :class:`~mrs_tf.quest.QuestOptions` (``subtract``, ``truncate``, ``none``,
``spline`` or ``auto``), as :func:`mrs_tf.quest.fit` does. It differs in how it gets there:

1. a starting model from ``initial`` (amplitudes in basis units, e.g. the network's; prior means otherwise): the
   global shift from the cross-correlation of magnitude spectra with that template, then the (Lorentzian, Gaussian)
   pair of a small grid and the zero-order phase of the template's best complex match. The template has the right
   sign, so there is no 180-degree ambiguity and none of QUEST's staged search or restarts;
2. Levenberg-Marquardt on the variable-projection functional (Kaufman's Jacobian, written with the normal
   equations of the linear amplitudes so that only small inner-product matrices are formed), vectorised over a
   chunk of spectra (one set of exponentials and FFTs for all; stacked solves), each spectrum with its own damping
   factor, until its cost stops falling; the phase derivatives are taken on the model, not the de-phased data
   (the same gradient, without the noise's energy in the curvature), so it converges in a few steps. With
   ``subtract`` the broad background is then taken from the HLSVD of the early residual, as QUEST does, and the
   whole FID refitted;
3. the same result object, table row, CRLB (Fisher information of the final model, :mod:`mrs_tf.crlb`), fit
   diagnostics and statuses as QUEST (:class:`~mrs_tf.quest.QuestResult`): identical columns, plus ``method``;
4. spectra whose refined fit is poor (status ``poor_fit`` or ``max_iterations``, :data:`mrs_tf.quest.POOR_FIT_LIMITS`)
   are fitted again by the full QUEST search (``fallback=True``); the better fit (lower reduced chi2) is kept and
   ``method`` says which (``hybrid`` or ``quest_fallback``).

Default model (:data:`HYBRID_OPTIONS`): QUEST's, the first 7.5 ms of the FID left to the background
(``background="truncate"``), measured nearest to the Cramér-Rao bound of the variants in ``benchmarks/estimators.py``
at SNR 10-100. At SNR 100-200 with a broad baseline its CRLBs under-cover (standardised errors up to 2.4: part of
the baseline stays in the fitted FID, and a few fits settle in a nearby minimum of the Lorentzian/Gaussian trade-off
that QUEST's staged search avoids); ``quest.fit`` is the honest choice there.
Supported: ``damping="common"``, ``shift`` ``"common"`` or ``"per_metabolite"``, free-sign amplitudes (QUEST's
unbiased default) and ``nonnegative=True`` (the free-sign fit where all its amplitudes are >= 0, which is then also
the constrained minimum; QUEST's nonnegative search for the others, ``method`` ``quest_fallback``);
``background="include"`` is refused, not ignored.

``background="auto"`` (the hybrid's own meaning: QUEST's ``auto`` keeps HLSVD background columns instead): the
truncated fit first, then the whole FID refitted from it without any background; the first ``truncate_ms`` of the
FID add 2 k0 real observations, so without a broad background chi2 rises by about 2 k0 (chi2 with 2 k0 degrees of
freedom). The whole-FID fit is kept where the excess over 2 k0 (column ``background_delta_chi2``) is below
``auto_background_chi2`` (25; the excess's sd is 11 at 4 kHz): then the first milliseconds, where the singlets
carry most of their information, count, and the bound is the whole FID's. Measured (100 spectra per set,
``benchmarks/RESULTS.md``): spectra without a baseline 5th-95th percentile of the excess -18...16, 99 % whole;
the evaluation spectra with broad baselines 32...23,000, 3-4 % whole. Spectra whose excess at the truncated
fit's parameters (amplitudes re-solved from that fit's normal equations plus the first k0 points) is already above
``AUTO_REFIT_FACTOR`` x the limit are not refitted: 85-92 % of the truncation's speed on those spectra.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.fft

from mrs_tf.core.threads import one_blas_thread
from mrs_tf.physics.basis import BasisSet
from mrs_tf.fitting.crlb import combined, fisher_covariance
from mrs_tf.core.errors import MRSError
from mrs_tf.preprocess.hlsvd import hlsvd, remove_band
from mrs_tf.physics.metabolites import prior_means
from mrs_tf.fitting.quest import QuestOptions, QuestResult, _band, _failed_row, _snr, _tail_sd, check_protocol, fit_one, fit_quality, fit_status, spectral_noise_sd, spline_baseline
from mrs_tf.preprocess.spectra import magnitude_correlation, mirror_scores
from mrs_tf.fitting.signal_model import DEG
from mrs_tf.core.table import ResultTable

__all__ = ["HYBRID_OPTIONS", "fit", "fit_results"]

_LN2x4 = 4 * np.log(2)

#: ``background="auto"``: the whole FID is refitted only where its chi2 excess at the truncated fit's parameters is
#: below this many times ``auto_background_chi2`` (measured: <= 480 without a baseline, 30-50,000 with one)
AUTO_REFIT_FACTOR = 25.0

#: the hybrid's default model: QUEST's signal model on the FID from 7.5 ms on (the broad background decays before)
HYBRID_OPTIONS = QuestOptions(background="truncate", truncate_ms=7.5)

#: (Lorentzian, Gaussian) FWHM pairs (Hz) tried for the starting model
_WIDTH_GRID = [(lor, gau) for lor in (1.0, 3.0, 6.0, 10.0) for gau in (3.0, 7.0, 12.0)]
#: index of each global parameter in theta
PSI, PHASE1, LORENTZ, GAUSS, SHIFT = range(5)


@dataclass(frozen=True, eq=False)
class _View:
    """Which part of the corrected FID a stage fits: FFT bins ``band`` (scaled by 1/sqrt(n), with an optional
    spline baseline ``splines`` (K, J) and its roughness ``penalty``), or time points from ``first`` on."""

    band: np.ndarray | None = None
    first: int = 0
    splines: np.ndarray | None = None
    penalty: np.ndarray | None = None


@dataclass
class _Problem:
    """What every spectrum of a fit shares: the basis, the options, the views of each stage."""

    basis: BasisSet
    options: QuestOptions
    per_met: bool             # per-metabolite shift deviations
    pivot: float              # ppm - ref_ppm where the fitted zero-order phase applies
    prel: np.ndarray          # ppm - ref_ppm of every unshifted FFT bin
    search: _View             # stages 1-2 (broadened, then all parameters)
    final: _View              # the last stage (after the background, if any)
    bound: _View              # whose information enters the CRLB
    splines_td: np.ndarray | None = None   # (J, N) the spline baseline's time-domain signals
    whole: _View | None = None             # 'auto': the whole FID, fitted after the truncated fit

    @classmethod
    def build(cls, basis: BasisSet, options: QuestOptions) -> "_Problem":
        o = options
        if o.damping != "common":
            raise MRSError("the hybrid fit supports damping='common' only")
        if o.shift not in ("common", "per_metabolite"):
            raise MRSError("the hybrid fit supports shift='common' or 'per_metabolite' only")
        if o.background == "include":
            raise MRSError("the hybrid fit supports background auto, subtract, truncate, none or spline (not "
                           "'include'); start from its own: mrs_tf.hybrid.HYBRID_OPTIONS.with_(...)")
        if o.background == "auto" and o.ppm_range is not None:
            raise MRSError("the hybrid's background='auto' fits the FID (truncated, then whole): give ppm_range=None "
                           "or another background")
        n, dwell = basis.n_points, basis.dwell_s
        k0 = o.first_point(dwell, n)
        prel = basis.fft_ppm - basis.ref_ppm
        band = None if o.ppm_range is None and o.background != "spline" else \
            _band(basis, o.ppm_range or (0.2, 4.2)).band
        if band is not None and len(band) < 16:
            raise MRSError(f"the fit band {o.ppm_range} holds only {len(band)} spectral points")
        splines_td = None
        if o.background == "spline":
            splines_td = spline_baseline(basis, band, o.baseline_knot_ppm)
            splines = (scipy.fft.fft(splines_td, axis=-1)[:, band] / np.sqrt(n)).real.T
            penalty = o.baseline_stiffness * np.diff(np.eye(splines.shape[1]), 2, axis=0)
            search = final = bound = _View(band=band, splines=splines, penalty=penalty)
        else:
            search = _View(first=k0)
            if band is not None:  # truncate: the band of the truncated FID's spectrum
                final = _View(band=band, first=k0 if o.background == "truncate" else 0)
            else:
                final = _View(first=0) if o.background == "subtract" else search
            first = k0 if o.background == "auto" else o.bound_first_point(dwell, n)
            bound = final if final.first == first else search if first == k0 else _View(first=first)
        sel = (prel + basis.ref_ppm > 0.2) & (prel + basis.ref_ppm < 4.2)
        return cls(basis, o, o.shift == "per_metabolite", float(np.mean(prel[sel])), prel, search, final, bound,
                   splines_td, _View(first=0) if o.background == "auto" else None)

    def as_fitted(self, whole: bool) -> "_Problem":
        """'auto': the problem of the model a spectrum ended with (the truncated FID's, or the whole FID's)."""
        if whole:
            view = self.whole
            return replace(self, options=self.options.with_(background="none"), search=view, final=view,
                           bound=view, whole=None)
        return replace(self, options=self.options.with_(background="truncate"), whole=None)

    @property
    def n_met(self) -> int:
        return self.basis.n_metabolites

    @property
    def n_theta(self) -> int:
        return 5 + (self.n_met if self.per_met else 0)

    def bounds(self, shift0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, P) lower and upper bounds, QUEST's (:func:`mrs_tf.quest._bounds`)."""
        o, b, extra = self.options, len(shift0), self.n_theta - 5
        half = o.global_shift_bound_hz(self.basis.field_mhz)
        lo = np.tile([-np.inf, -o.phase1_max_deg_per_ppm, 0.0, 0.0, 0.0] + [-o.shift_bound_hz] * extra, (b, 1))
        hi = np.tile([np.inf, o.phase1_max_deg_per_ppm, o.lorentz_max_hz, o.gauss_max_hz, 0.0]
                     + [o.shift_bound_hz] * extra, (b, 1))
        lo[:, SHIFT], hi[:, SHIFT] = shift0 - half, shift0 + half
        return lo, hi

    def observe(self, v: np.ndarray, view: _View) -> np.ndarray:
        """The part of time-domain signals ``v`` (..., N) that ``view`` fits."""
        if view.band is not None:
            if view.first:
                v = v.copy()
                v[..., :view.first] = 0
            return scipy.fft.fft(v, axis=-1, workers=-1)[..., view.band] / np.sqrt(v.shape[-1])
        return v[..., view.first:]

    def rotation(self, theta: np.ndarray) -> np.ndarray:
        """(B, N) ``exp(-i (psi + phi1 (ppm - ref_ppm - pivot)))`` on the unshifted FFT bins: the de-phasing."""
        return np.exp(-1j * (theta[:, PSI, None] + DEG * theta[:, PHASE1, None] * (self.prel - self.pivot)))


def initial_parameters(fids: np.ndarray, prob: _Problem, amplitudes: np.ndarray) -> np.ndarray:
    """(B, P) starting parameters from the template ``amplitudes @ basis`` (B, M): global shift by magnitude
    cross-correlation (+-search_ppm), then the (Lorentzian, Gaussian) pair of :data:`_WIDTH_GRID` and the zero-order
    phase of the template's best complex match over 0.2-4.2 ppm; first-order phase and deviations 0."""
    basis = prob.basis
    t = basis.time
    template = amplitudes @ basis.fids                                                     # (B, N)
    corr, shift_hz = magnitude_correlation(fids, template, basis.dwell_s, basis.field_mhz, prob.options.search_ppm)
    shift = shift_hz[np.argmax(corr, axis=1)]
    sel = _band(basis, (0.2, 4.2)).band
    data = scipy.fft.fft(fids, axis=-1)[:, sel]
    best = np.full(len(fids), -np.inf)
    theta = np.zeros((len(fids), prob.n_theta))
    theta[:, SHIFT] = shift
    # the grid's envelopes from their separable parts: the spectra's shifts once, each width's real damping once
    shifted = template * np.exp(2j * np.pi * shift[:, None] * t)
    lorentz = {lor: np.exp(-np.pi * lor * t) for lor in {lor for lor, _ in _WIDTH_GRID}}
    gaussian = {gau: np.exp(-(np.pi * gau * t) ** 2 / _LN2x4) for gau in {gau for _, gau in _WIDTH_GRID}}
    for lor, gau in _WIDTH_GRID:
        model = scipy.fft.fft(shifted * (lorentz[lor] * gaussian[gau]), axis=-1)[:, sel]
        inner = np.sum(np.conj(model) * data, axis=1)
        score = np.abs(inner) ** 2 / np.maximum(np.sum(np.abs(model) ** 2, axis=1), 1e-300)
        better = score > best
        best[better] = score[better]
        theta[better, PSI] = np.angle(inner[better])
        theta[better, LORENTZ], theta[better, GAUSS] = lor, gau
    return theta


def _real(v: np.ndarray) -> np.ndarray:
    """Complex (..., R) -> real (..., 2R), each point's real and imaginary part side by side (a view, no copy,
    where the last axis is contiguous): ``Re(a^H b) = _real(a) . _real(b)``."""
    v = np.asarray(v, np.complex128)
    if v.strides[-1] != v.itemsize:
        v = np.ascontiguousarray(v)
    return v.view(np.float64)


def _gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched ``a @ b^T`` of real (B, p, R) and (B, q, R)."""
    return np.matmul(a, np.swapaxes(b, 1, 2))


def _signals(basis: BasisSet, theta: np.ndarray, per_met: bool) -> np.ndarray:
    """(B, M, N) damped, shifted basis signals ``b_m(t) exp((-pi L + 2 pi i (F + d_m)) t - (pi G t)^2 / 4 ln 2)``;
    the exponentials by a running product (one complex multiply per point instead of an exponential)."""
    b, m, n = len(theta), basis.n_metabolites, basis.n_points
    dev = theta[:, 5:] if per_met else np.zeros((b, m))
    rate = -np.pi * theta[:, LORENTZ, None] + 2j * np.pi * (theta[:, SHIFT, None] + dev)  # (B, M)
    powers = _powers(np.exp(rate * basis.dwell_s), n)
    gauss = np.exp(-(np.pi * theta[:, GAUSS, None] * basis.time) ** 2 / _LN2x4)              # (B, N)
    powers *= gauss[:, None, :]
    powers *= basis.fids[None]
    return powers


def _powers(step: np.ndarray, n: int, block: int = 64) -> np.ndarray:
    """(..., n) ``step ** k`` for k = 0 ... n-1: a running product over one block of ``block`` points and over the
    blocks' starts, then their outer product (elementwise and vectorised: 2.7x faster than one running product over
    all n points, equally accurate, 4e-14 at 2,048 points)."""
    j = -(-n // block)
    small = np.empty(step.shape + (block,), complex)
    small[..., 0] = 1.0
    small[..., 1:] = step[..., None]
    np.cumprod(small, axis=-1, out=small)
    starts = np.empty(step.shape + (j,), complex)
    starts[..., 0] = 1.0
    starts[..., 1:] = (small[..., -1] * step)[..., None]
    np.cumprod(starts, axis=-1, out=starts)
    out = np.empty(step.shape + (j, block), complex)
    np.multiply(starts[..., :, None], small[..., None, :], out=out)
    out = out.reshape(step.shape + (j * block,))
    return out if j * block == n else np.ascontiguousarray(out[..., :n])


def _combine(amp: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """(B, R) ``sum_m amp[b, m] signals[b, m]`` as a stacked matrix product (BLAS, not an einsum loop)."""
    return np.matmul(amp[:, None, :].astype(signals.dtype), signals)[:, 0]


def _turned(prob: _Problem, met_td: np.ndarray, met: np.ndarray, view: _View) -> np.ndarray:
    """d/d(phase1) of the model turned by the first-order phase, in the view: ``i (ppm - ref - pivot) deg`` times
    its spectrum (``met_td`` the model's FID, ``met`` its view)."""
    ramp = 1j * DEG * (prob.prel - prob.pivot)
    if view.band is not None and not view.first:
        return ramp[view.band] * met
    return prob.observe(scipy.fft.ifft(ramp * scipy.fft.fft(met_td, axis=-1, workers=-1), axis=-1, workers=-1), view)


def _amplitude_rows(phi: np.ndarray, view: _View) -> np.ndarray:
    """(B, L, 2R) rows of the linear parameters in ``_real``'s layout: the basis signals' view ``phi`` (a view of it
    where no spline baseline is fitted), then the spline baseline's real and imaginary coefficients (the same for
    every spectrum: a broadcast view)."""
    rows = _real(phi)
    if view.splines is None:
        return rows
    k, j = view.splines.shape
    extra = np.zeros((2 * j, 2 * k))  # (re, im) of each point side by side
    extra[:j, 0::2] = view.splines.T      # real coefficients: the spline itself
    extra[j:, 1::2] = view.splines.T      # imaginary coefficients: i x the spline
    return np.concatenate([rows, np.broadcast_to(extra, (len(rows),) + extra.shape)], axis=1)


class _Batch:
    """The VARPRO functional of a chunk of spectra at ``theta`` in one view: cost and amplitudes (amplitudes
    projected out through their normal equations) on construction; the gradient and Gauss-Newton matrix of the
    nonlinear parameters (:meth:`derive`) only for the spectra whose next step needs them (not for a trial point that
    is rejected, nor for the point a spectrum ends at: about a quarter of the derivative work). Every inner product
    is one stacked real matrix product over the view's points."""

    def __init__(self, prob: _Problem, view: _View, yf: np.ndarray, sigma: np.ndarray, theta: np.ndarray):
        self.theta, self.view = theta, view
        basis, m = prob.basis, prob.n_met
        phi_td = _signals(basis, theta, prob.per_met)                            # (B, M, N)
        phi = prob.observe(phi_td, view)                                                 # (B, M, R)
        spec = prob.rotation(theta) * yf                                                 # corrected spectrum
        if view.band is not None and not view.first:
            data = spec[:, view.band] / np.sqrt(yf.shape[-1])
        else:
            data = prob.observe(scipy.fft.ifft(spec, axis=-1, workers=-1), view)
        lin_rows = _amplitude_rows(phi, view)                                           # (B, L, 2R)
        inv_var = 1.0 / sigma[:, None, None] ** 2
        gram = _gram(lin_rows, lin_rows) * inv_var
        if view.penalty is not None:
            j = view.splines.shape[1]
            pen = view.penalty.T @ view.penalty
            gram[:, m:m + j, m:m + j] += pen * inv_var
            gram[:, m + j:, m + j:] += pen * inv_var
        rhs = _gram(lin_rows, _real(data)[:, None, :])[..., 0] * inv_var[..., 0]
        gram_n, norm = _equilibrated(gram)
        lin = np.linalg.solve(gram_n, (rhs / norm)[..., None])[..., 0] / norm
        data_sq = np.sum(np.abs(data) ** 2, axis=1) / sigma ** 2
        self.cost = 0.5 * np.maximum(data_sq - np.einsum("bl,bl->b", lin, rhs), 0.0)
        if prob.per_met:  # the soft constraint on each deviation
            self.cost = self.cost + 0.5 * np.sum((theta[:, 5:] / prob.options.shift_sd_hz) ** 2, axis=1)
        self.lin, self.data = lin, data
        self.phi_td, self.phi, self.gram, self.inv_var = phi_td, phi, gram, inv_var
        self._lin_rows = lin_rows
        p = prob.n_theta
        self.hess, self.grad = np.zeros((len(theta), p, p)), np.zeros((len(theta), p))
        self.derived = np.zeros(len(theta), bool)

    def derive(self, prob: _Problem, rows: np.ndarray) -> None:
        """The gradient and Gauss-Newton matrix at spectra ``rows`` (those not derived yet; in place)."""
        rows = rows[~self.derived[rows]]
        if not len(rows):
            return
        every = np.array_equal(rows, np.arange(len(self.theta)))  # the whole batch: views, no copies of (B, M, N)
        pick = (lambda a: a) if every else (lambda a: a[rows])
        theta, lin, m = pick(self.theta), pick(self.lin), prob.n_met
        phi_td, gram, inv_var = pick(self.phi_td), pick(self.gram), pick(self.inv_var)
        phi = pick(self.phi) if self.view.band is not None else phi_td[..., self.view.first:]
        lin_rows = self.parts[0] if every else _amplitude_rows(phi, self.view)
        # d(residual)/d(theta), amplitudes held (Kaufman): minus the model's derivatives
        d_rows = _real(_model_derivatives(prob, self.view, theta, lin[:, :m], phi_td, phi))   # (B, P, 2R)
        cross = -_gram(lin_rows, d_rows) * inv_var                                       # (B, L, P)
        jtj = _gram(d_rows, d_rows) * inv_var
        jtb = -_gram(d_rows, _real(pick(self.data))[:, None, :])[..., 0] * inv_var[..., 0]
        gram_n, norm = _equilibrated(gram)
        solved = np.linalg.solve(gram_n, cross / norm[:, :, None]) / norm[:, :, None]
        hess = jtj - np.matmul(np.swapaxes(cross, 1, 2), solved)
        grad = jtb - np.einsum("blp,bl->bp", cross, lin)
        if prob.per_met:  # the soft constraint on each deviation
            sd = prob.options.shift_sd_hz
            grad[:, 5:] += theta[:, 5:] / sd ** 2
            hess[:, 5 + np.arange(m), 5 + np.arange(m)] += 1 / sd ** 2
        self.hess[rows], self.grad[rows] = hess, grad
        self.derived[rows] = True

    #: every per-spectrum array of a batch (first axis: the spectrum) that is not a view of another
    _FIELDS = ("theta", "hess", "grad", "derived", "cost", "lin", "data", "phi_td", "gram", "inv_var")

    @property
    def parts(self) -> tuple:
        """(amplitude rows in ``_real``'s layout, basis signals (B, M, N), their view, Gram matrix, 1/sigma^2)."""
        if self._lin_rows is None:
            self._lin_rows = _amplitude_rows(self.phi, self.view)
        return self._lin_rows, self.phi_td, self.phi, self.gram, self.inv_var

    def _views(self) -> None:
        """phi again a view of phi_td where the view is a time window; the amplitude rows rebuilt when needed."""
        if self.view.band is None:
            self.phi = self.phi_td[..., self.view.first:]
        self._lin_rows = None  # rebuilt from phi by parts

    def take(self, idx) -> "_Batch":
        """The batch of spectra ``idx`` (copies)."""
        out = object.__new__(_Batch)
        out.view = self.view
        for name in self._FIELDS:
            setattr(out, name, getattr(self, name)[idx])
        out.phi = None if self.view.band is None else self.phi[idx]
        out._views()
        return out

    def put(self, rows: np.ndarray, other: "_Batch", mask: np.ndarray) -> None:
        """Spectra ``mask`` of ``other`` into this batch's ``rows`` (in place)."""
        for name in self._FIELDS:
            getattr(self, name)[rows] = getattr(other, name)[mask]
        if self.view.band is not None:
            self.phi[rows] = other.phi[mask]
        self._views()

    def fisher(self, prob: _Problem, amp: np.ndarray) -> np.ndarray:
        """(B, n_lin + P, n_lin + P) Fisher information of the model (no data) at ``theta`` with amplitudes ``amp``
        (the final fit's), in this view: the amplitude block (the Gram matrix, with the baseline's penalty), the
        model's derivatives, the soft constraints."""
        lin_rows, phi_td, phi, gram, inv_var = self.parts
        d_rows = _real(_model_derivatives(prob, self.view, self.theta, amp, phi_td, phi))
        n_lin, p = lin_rows.shape[1], d_rows.shape[1]
        info = np.empty((len(gram), n_lin + p, n_lin + p))
        info[:, :n_lin, :n_lin] = gram
        info[:, :n_lin, n_lin:] = _gram(lin_rows, d_rows) * inv_var
        info[:, n_lin:, :n_lin] = np.swapaxes(info[:, :n_lin, n_lin:], 1, 2)
        info[:, n_lin:, n_lin:] = _gram(d_rows, d_rows) * inv_var
        if prob.per_met:
            idx = n_lin + 5 + np.arange(prob.n_met)
            info[:, idx, idx] += 1 / prob.options.shift_sd_hz ** 2
        return info


def _model_derivatives(prob: _Problem, view: _View, theta, amp, phi_td, phi) -> np.ndarray:
    """(B, P, R) derivatives of the model ``sum_m amp_m phi_m`` (in ``view``) by each nonlinear parameter: the
    zero- and first-order phase, the Lorentzian and Gaussian widths, the common shift, each metabolite's shift.

    The phases turn the data, but their derivative is taken on the model turned the other way (the same gradient,
    since Re<i r, r> = 0): the data's own derivative would add the noise's energy to the Gauss-Newton curvature and
    shorten every phase step (at low SNR by more than half: dozens of iterations instead of a few). Written in place
    (no stacked or concatenated copies of (B, M, R) arrays)."""
    t = prob.basis.time
    met, met_td = _combine(amp, phi), _combine(amp, phi_td)
    window = t[view.first:] if view.band is None else None  # a time window: t x a signal is the view's own product
    if window is not None:
        tmet, t2met = met * window, met * window ** 2
    else:
        tmet, t2met = prob.observe(met_td * t, view), prob.observe(met_td * t ** 2, view)
    out = np.empty((len(theta), prob.n_theta, met.shape[-1]), complex)
    np.multiply(met, 1j, out=out[:, PSI])
    out[:, PHASE1] = _turned(prob, met_td, met, view)
    np.multiply(tmet, -np.pi, out=out[:, LORENTZ])
    np.multiply(t2met, (-np.pi ** 2 * 2 / _LN2x4 * theta[:, GAUSS])[:, None], out=out[:, GAUSS])
    np.multiply(tmet, 2j * np.pi, out=out[:, SHIFT])
    if prob.per_met:  # 2 pi i amp_m t phi_m
        if window is not None:
            np.multiply(phi, window, out=out[:, 5:])
        else:
            out[:, 5:] = prob.observe(phi_td * t, view)
        out[:, 5:] *= (2j * np.pi * amp)[:, :, None]
    return out


def _levenberg_marquardt(prob: _Problem, view: _View, yf, sigma, theta, lo, hi, max_iterations: int, tol: float):
    """Batched LM on the VARPRO functional, each spectrum with its own damping factor and stop. Returns (the
    :class:`_Batch` of every spectrum at its end point (``.theta``), iterations per spectrum, converged per
    spectrum).

    Parameters at a bound whose gradient points out of the box are held there for the step (a projected step: a
    clipped step otherwise zigzags against the bound for dozens of iterations). A spectrum stops when an accepted
    step lowers the cost by less than ``tol`` (relative) or 0.005 (chi-square 0.01: nothing), or when the step the
    model predicts would lower it by less than 0.005: then there is nothing left to gain, and trying it would only
    compare two costs that differ in their last digits (at the minimum Kaufman's curvature is not exact, such
    steps fail, and the damping would be raised for twenty more evaluations before it gave up)."""
    theta = np.clip(theta, lo, hi)
    # the current point of every active spectrum: row rows[i] of the batch cur (spectra that stop leave their
    # rows behind instead of the others being copied into a smaller batch)
    cur = _Batch(prob, view, yf, sigma, theta)
    rows = np.arange(len(theta))
    lam = np.full(len(theta), 1e-3)
    iters = np.zeros(len(theta), int)
    done = np.zeros(len(theta), bool)
    active = np.arange(len(theta))
    ended: list[tuple[np.ndarray, _Batch]] = []  # (spectra, their batch at the end)
    eye = np.eye(cur.hess.shape[1])

    def retire(finished: np.ndarray) -> None:
        nonlocal rows, active
        ended.append((active[finished], cur.take(rows[finished])))
        rows, active = rows[~finished], active[~finished]

    for _ in range(max_iterations):
        if not len(active):
            break
        cur.derive(prob, rows)
        th, hess, grad, cost = cur.theta[rows], cur.hess[rows], cur.grad[rows], cur.cost[rows]
        held = ((th <= lo[active]) & (grad > 0)) | ((th >= hi[active]) & (grad < 0))    # (B, P)
        free = ~held
        h = np.where(free[:, :, None] & free[:, None, :], hess, 0.0) + held[:, :, None] * eye
        g = np.where(free, grad, 0.0)
        diag = np.einsum("bjj->bj", h)
        damped = h + (lam[active, None] * np.maximum(diag, 1e-12))[:, :, None] * eye
        step = -np.linalg.solve(damped, g[..., None])[..., 0]
        predicted = -(np.einsum("bp,bp->b", g, step) + 0.5 * np.einsum("bp,bpq,bq->b", step, h, step))
        flat = predicted < 0.005
        if flat.any():
            done[active[flat]] = True
            keep = ~flat
            th, cost, step = th[keep], cost[keep], step[keep]
            retire(flat)
            if not len(active):
                break
        trial_theta = np.clip(th + step, lo[active], hi[active])
        trial = _Batch(prob, view, yf[active], sigma[active], trial_theta)
        better = trial.cost < cost
        iters[active] += 1
        drop = cost - trial.cost
        gain = drop / np.maximum(cost, 1e-300)
        lam[active] = np.where(better, np.maximum(lam[active] / 3, 1e-9), lam[active] * 4)
        if better.all():
            cur, rows = trial, np.arange(len(active))
        elif better.any():
            cur.put(rows[better], trial, better)
        # converged: a step that lowers the cost by less than tol (relative) or 0.005 (chi-square 0.01: nothing)
        finished = (better & ((gain < tol) | (drop < 0.005))) | (lam[active] > 1e8)
        done[active[finished]] = True
        if finished.any():
            retire(finished)
    if len(active):
        ended.append((active, cur if np.array_equal(rows, np.arange(len(cur.cost))) else cur.take(rows)))
    # one batch of every spectrum, in their order
    order = np.argsort(np.concatenate([idx for idx, _ in ended]))
    final = ended[0][1] if len(ended) == 1 else _concat([b for _, b in ended])
    final = final if np.array_equal(order, np.arange(len(order))) else final.take(order)
    return final, iters, done


def _concat(batches: list[_Batch]) -> _Batch:
    """One batch of the spectra of ``batches``, in that order."""
    out = object.__new__(_Batch)
    out.view = batches[0].view
    for name in _Batch._FIELDS:
        setattr(out, name, np.concatenate([getattr(b, name) for b in batches]))
    out.phi = None if out.view.band is None else np.concatenate([b.phi for b in batches])
    out._views()
    return out


def _background(prob: _Problem, yf: np.ndarray, sigma, search: "_Batch") -> tuple[np.ndarray, np.ndarray]:
    """QUEST's background (``subtract``): the broad HLSVD components (FWHM >= background_min_fwhm_hz) of the early
    residual of the search fit ``search`` (its batch at the end). Returns (background in the corrected frame (B, N),
    data spectra without it)."""
    o, basis = prob.options, prob.basis
    n, dwell = basis.n_points, basis.dwell_s
    theta = search.theta
    phi_td = search.phi_td
    data = scipy.fft.ifft(prob.rotation(theta) * yf, axis=-1)  # corrected, whole FID
    resid = data - np.einsum("bm,bmn->bn", search.lin[:, :prob.n_met], phi_td)
    window = min(n, max(int(round(o.background_window_ms * 1e-3 / dwell)), 4 * o.background_components))
    out = np.zeros_like(resid)
    for i, r in enumerate(resid):
        comps = hlsvd(r, dwell, o.background_components, window)
        out[i] = comps.select((comps.fwhm_hz >= o.background_min_fwhm_hz) & (comps.damping > 0)).signal(basis.time)
    # back to the acquisition frame, then off the data
    return out, yf - scipy.fft.fft(out, axis=-1) / prob.rotation(theta)


def fit_results(fids, basis: BasisSet, initial: np.ndarray | None = None, options: QuestOptions | None = None, *,
                max_iterations: int = 40, tol: float = 1e-6, chunk: int = 16):
    """Refined fits (no fallback) of every FID, one :class:`~mrs_tf.quest.QuestResult` at a time (a generator, so
    that a long batch does not hold every fit's arrays); see :func:`fit`."""
    opts = options or HYBRID_OPTIONS
    prob = _Problem.build(basis, opts)
    arr = check_protocol(fids, basis)
    bad = ~np.all(np.isfinite(arr), axis=1)
    if bad.any():
        raise MRSError(f"spectra {np.flatnonzero(bad)[:10].tolist()} contain NaN or Inf")
    n = len(arr)
    initial = np.tile(prior_means(basis.names), (n, 1)) if initial is None else np.array(initial, float)
    if initial.shape != (n, prob.n_met):
        raise MRSError(f"initial amplitudes have shape {initial.shape}; expected ({n}, {prob.n_met}) in the order "
                       f"of the basis ({', '.join(basis.names[:4])}, ...)")
    # the template only guides shift, width and phase: negative (noisy) estimates would distort it
    initial = np.clip(initial, 0, None)
    initial[initial.sum(1) <= 0] = prior_means(basis.names)
    with one_blas_thread():  # small stacked matrices: BLAS threads cost more than they bring
        for start in range(0, n, chunk):
            t0 = time.perf_counter()
            ys = arr[start:start + chunk]
            if opts.water_ppm is not None:
                ys = np.array([remove_band(y, basis.dwell_s, basis.field_mhz, opts.water_ppm,
                                           ref_ppm=basis.ref_ppm)[0] for y in ys])
            yf = scipy.fft.fft(ys, axis=-1, workers=-1)
            # sigma of the soft constraints: the spectral noise (signal-free regions), else the FID's tail
            sigma = np.array([spectral_noise_sd(y, basis) or _tail_sd(y) for y in ys])
            sigma = np.where(sigma > 0, sigma, np.abs(ys).max(axis=1) * 1e-6 + 1e-300)
            theta = initial_parameters(ys, prob, initial[start:start + chunk])
            lo, hi = prob.bounds(theta[:, SHIFT])
            final, iters, done = _levenberg_marquardt(prob, prob.search, yf, sigma, theta, lo, hi, max_iterations,
                                                      tol)
            background = np.zeros_like(ys)
            if prob.final is not prob.search:
                if opts.background == "subtract":
                    background, yf = _background(prob, yf, sigma, final)
                final, it2, done = _levenberg_marquardt(prob, prob.final, yf, sigma, final.theta, lo, hi,
                                                        max_iterations, tol)
                iters += it2
            theta = final.theta
            bound = final if prob.bound is prob.final else _Batch(prob, prob.bound, yf, sigma, theta)
            info = bound.fisher(prob, final.lin[:, :prob.n_met])
            phi_td, lin = final.phi_td, final.lin
            full = scipy.fft.ifft(prob.rotation(theta) * yf, axis=-1)  # corrected data, whole FID
            probs, excess = [prob] * len(ys), np.full(len(ys), np.nan)
            if prob.whole is not None:
                # 'auto': the whole FID from the truncated fit's answer. Its first k0 points add 2 k0 real
                # observations: without a broad background the cost rises by about that much (chi2 with 2 k0
                # degrees of freedom); the excess over it is the evidence for a background that the truncation
                # left out. The whole FID's fit is kept where the excess is below auto_background_chi2
                # (at the truncated fit's nonlinear parameters first, amplitudes re-solved: where that excess is
                # above AUTO_REFIT_FACTOR x the limit a broad background is plain and the refit, slow against it,
                # would not come back under the limit; no-background spectra start at up to ~500, baselines at
                # 30-50,000 on the evaluation sets)
                k0 = prob.search.first
                excess = 2 * (_whole_cost(prob, final, full[:, :k0], sigma) - final.cost) - 2 * k0
                try_whole = np.flatnonzero(excess < AUTO_REFIT_FACTOR * opts.auto_background_chi2)
                use = np.zeros(len(ys), bool)
                if len(try_whole):
                    refit, it3, done3 = _levenberg_marquardt(
                        prob, prob.whole, yf[try_whole], sigma[try_whole], theta[try_whole], lo[try_whole],
                        hi[try_whole], max_iterations, tol)
                    excess[try_whole] = 2 * (refit.cost - final.cost[try_whole]) - 2 * k0
                    keep = excess[try_whole] < opts.auto_background_chi2
                    rows = try_whole[keep]
                    use[rows] = True
                    if keep.any():
                        kept = refit.take(np.flatnonzero(keep))
                        iters[rows] += it3[keep]
                        done[rows] = done3[keep]
                        # into the truncated fit's own arrays (not used after this): no copies of (B, M, N) signals
                        theta[rows], lin[rows] = kept.theta, kept.lin
                        phi_td[rows] = kept.phi_td
                        info[rows] = kept.fisher(prob, kept.lin[:, :prob.n_met])
                        full[rows] = scipy.fft.ifft(prob.rotation(kept.theta) * yf[rows], axis=-1)
                fitted = (prob.as_fitted(False), prob.as_fitted(True))
                probs = [fitted[int(u)] for u in use]
            # the data's match with the basis as they are and mirrored, for the chunk at once (magnitude spectra:
            # the fitted phases do not change them)
            as_is, mirrored = mirror_scores(ys, basis)
            share = (time.perf_counter() - t0) / len(ys)
            for i in range(len(ys)):
                res = _result(probs[i], full[i], float(sigma[i]), theta[i], lin[i], phi_td[i], info[i],
                              background[i], bool(done[i]), int(iters[i]), share, (as_is[i], mirrored[i]))
                if prob.whole is not None:
                    res.quality["background_delta_chi2"] = float(excess[i])
                yield res


def _equilibrated(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, L, L) normal-equation matrices scaled to a unit diagonal, and the (B, L) scale ``norm``: solve
    ``gram_n x = rhs / norm`` and divide by ``norm`` (amplitudes of very different sizes, e.g. a basis in units of
    1e-4 beside spline terms, then solve as well as equal ones)."""
    norm = np.sqrt(np.maximum(np.einsum("bii->bi", gram), 1e-300))
    return gram / norm[:, :, None] / norm[:, None, :], norm


def _whole_cost(prob: _Problem, trunc: "_Batch", first: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """(B,) the VARPRO cost of the whole FID at the truncated fit's parameters, amplitudes re-solved, from that fit's
    normal equations plus the first k0 points ``first`` (corrected data, (B, k0)): the 'auto' test's start, without
    new basis signals or derivatives."""
    k0 = first.shape[1]
    rows0 = _real(np.ascontiguousarray(trunc.phi_td[..., :k0]))                        # (B, M, 2 k0)
    inv_var = 1.0 / sigma[:, None, None] ** 2
    m = rows0.shape[1]
    lin_t = trunc.lin[:, :m]
    gram_t = trunc.gram[:, :m, :m]
    rhs_t = np.einsum("bij,bj->bi", gram_t, lin_t)                                     # normal equations
    # the truncated cost is 0.5 (|d|^2 / sigma^2 - lin . rhs) plus the soft constraint on the shift deviations
    constraint = 0.5 * np.sum((trunc.theta[:, 5:] / prob.options.shift_sd_hz) ** 2, axis=1) if prob.per_met else 0.0
    data_sq_t = 2 * (trunc.cost - constraint) + np.einsum("bl,bl->b", lin_t, rhs_t)
    d0 = _real(np.ascontiguousarray(first))[:, None, :]
    gram = gram_t + _gram(rows0, rows0) * inv_var
    rhs = rhs_t + _gram(rows0, d0)[..., 0] * inv_var[..., 0]
    gram_n, norm = _equilibrated(gram)
    lin = np.linalg.solve(gram_n, (rhs / norm)[..., None])[..., 0] / norm
    data_sq = data_sq_t + np.sum(np.abs(first) ** 2, axis=1) / sigma ** 2
    return 0.5 * np.maximum(data_sq - np.einsum("bl,bl->b", lin, rhs), 0.0) + constraint


def _result(prob: _Problem, y2, sigma, theta, lin, phi_td, info, background, converged, n_iter, seconds,
            match=None):
    """One spectrum's :class:`~mrs_tf.quest.QuestResult`: CRLB from ``info``, diagnostics and status as QUEST's."""
    basis, opts = prob.basis, prob.options
    names, m = list(basis.names), prob.n_met
    amp = lin[:m]
    contributions = amp[:, None] * phi_td
    if prob.splines_td is not None:
        j = prob.splines_td.shape[0]
        background = (lin[m:m + j] + 1j * lin[m + j:]) @ prob.splines_td
        resid = y2 - contributions.sum(0) - background
        data = y2
    else:
        resid = y2 - contributions.sum(0)   # the background was subtracted from y2
        data = y2 + background
    if opts.background == "truncate":
        resid[:opts.first_point(basis.dwell_s, basis.n_points)] = 0
    cov = fisher_covariance(info)
    crlb = np.sqrt(np.diag(cov)[:m])
    observed = prob.observe(resid, prob.final)
    dof = max(2 * observed.size - len(lin) - len(theta), 1)
    chi2 = float(np.sum(np.abs(observed) ** 2) / sigma ** 2 / dof)
    energy = float(np.sum(np.abs(prob.observe(contributions.sum(0), prob.final)) ** 2) / sigma ** 2)
    dev = theta[5:] if prob.per_met else np.zeros(m)
    shifts = theta[SHIFT] + dev
    snr = _snr(basis, contributions, sigma, float(shifts[names.index("NAA")]) if "NAA" in names else 0.0)
    quality = fit_quality(basis, contributions, background if prob.splines_td is not None else None, resid, sigma,
                          opts.ppm_range or (0.2, 4.2), data=data, match=match)
    status, message = fit_status(names, amp, energy, m + len(theta), quality, chi2,
                                 None if converged else f"stopped after {n_iter} iterations", crlb)
    phase0 = theta[PSI] - DEG * theta[PHASE1] * prob.pivot
    return QuestResult(
        names=names, amplitudes=amp.copy(), crlb=crlb, covariance=cov, combinations=combined(names, amp, cov),
        phase0_deg=float(np.rad2deg((phase0 + np.pi) % (2 * np.pi) - np.pi)),
        phase1_deg_per_ppm=float(theta[PHASE1]), lorentz_hz=np.array([theta[LORENTZ]]),
        gauss_hz=float(theta[GAUSS]), shift_hz=float(theta[SHIFT]), metabolite_shift_hz=np.asarray(shifts, float),
        noise_sd=sigma, snr=snr, chi2=chi2, status=status, message=message, nfev=int(n_iter), seconds=seconds,
        dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, ref_ppm=basis.ref_ppm, data=data,
        contributions=contributions, background=background, quality=quality)


def fit(fids, basis: BasisSet, initial: np.ndarray | None = None, options: QuestOptions | None = None, *,
        fallback: bool = True, n_jobs: int | None = 2, max_iterations: int = 40, tol: float = 1e-6, chunk: int = 16,
        progress: bool = False, check_inputs: bool = True) -> ResultTable:
    """Network-initialised fit of every FID: one row per spectrum with :func:`mrs_tf.quest.fit`'s columns and
    ``method`` (``hybrid`` or ``quest_fallback``).

    Args:
        fids: complex (n_spectra, n_points) or (n_points,) FIDs, mrs-tf's (NIfTI-MRS) sign convention.
        basis: a :class:`~mrs_tf.basis.BasisSet` with the data's points, dwell time and field.
        initial: (n_spectra, n_met) amplitudes in basis units, in the basis's order (the network's estimate); the
            prior means when None.
        options: :class:`~mrs_tf.quest.QuestOptions` (:data:`HYBRID_OPTIONS` when None).
        fallback: refit spectra whose refined fit is poor with the full QUEST search (same options).
        n_jobs: worker threads (default 2: both cores here); 1 fits in the calling thread.
        max_iterations, tol: each stage stops per spectrum when a step lowers the cost by less than ``tol``
            (relative) or after ``max_iterations``.
        chunk: spectra per vectorised batch (memory about chunk x n_met x n_points x 64 bytes).
        progress: a progress bar (tqdm).
        check_inputs: flag what no fit sees past, as :func:`mrs_tf.quest.fit` does
            (:func:`mrs_tf.preprocess.input_flags.flag_fit_inputs`): ``lipid_contamination``,
            ``offset_out_of_range`` (peaks further from the basis's than the fit reaches,
            ``options.shift_reach_ppm``: mrs-tf's spectra moved 0.6 ppm had read tNAA/tCr -0.59 for 1.02, status
            ``ok``), ``broad_lines`` and ``no_metabolite_pattern``. False: the fit's own statuses
            (:meth:`mrs_tf.Quantifier.quantify` checks its input itself).
    """
    opts = options or HYBRID_OPTIONS
    _Problem.build(basis, opts)  # unsupported options fail before any work
    if opts.nonnegative and not fallback:
        raise MRSError("nonnegative=True needs fallback=True: spectra whose free-sign fit has a negative amplitude "
                       "are refitted by QUEST's nonnegative search")
    arr = check_protocol(fids, basis)
    n = len(arr)
    init = None if initial is None else np.asarray(initial, float)
    if init is not None and init.shape != (n, basis.n_metabolites):
        raise MRSError(f"initial amplitudes have shape {init.shape}; expected ({n}, {basis.n_metabolites}) in the "
                       f"order of the basis ({', '.join(basis.names[:4])}, ...)")
    from tqdm.auto import tqdm

    bar = tqdm(total=n, desc="hybrid", unit="spectrum", disable=not progress)
    rows: list = [None] * n
    n_jobs = max(1, min(int(n_jobs or 1), os.cpu_count() or 1, n))
    chunk = max(1, min(chunk, -(-n // n_jobs)))  # every worker gets work, even for a few spectra
    tasks = [(s, arr[s:s + chunk], None if init is None else init[s:s + chunk]) for s in range(0, n, chunk)]
    try:
        # one BLAS thread, held by this (the calling) thread for the workers: a limit set from a worker thread was
        # not reliably in effect, and two workers on two BLAS threads each ran 3-4x slower than one
        with one_blas_thread():
            if n_jobs == 1:
                for task in tasks:
                    s, part = _rows(task, basis, opts, fallback, max_iterations, tol)
                    rows[s:s + len(part)] = part
                    bar.update(len(part))
            else:
                # threads, not processes: the work is numpy and FFTs on whole chunks, which release the GIL, and
                # threads need no __main__ guard and are safe beside TensorFlow (a spawned process is not)
                from concurrent.futures import ThreadPoolExecutor

                def work(task):
                    return _rows(task, basis, opts, fallback, max_iterations, tol)

                with ThreadPoolExecutor(n_jobs) as pool:
                    for s, part in pool.map(work, tasks):
                        rows[s:s + len(part)] = part
                        bar.update(len(part))
    finally:
        bar.close()
    table = ResultTable.from_rows([{"index": i, **r} for i, r in enumerate(rows)])
    if check_inputs:  # on the FIDs as given: the scores leave the residual water's band out
        from mrs_tf.preprocess.input_flags import flag_fit_inputs

        flag_fit_inputs(table, arr, basis, reach_ppm=opts.shift_reach_ppm(basis.field_mhz, refinements=1))
    table.options = asdict(opts)
    return table


def _rows(task, basis: BasisSet, opts: QuestOptions, fallback: bool, max_iterations: int, tol: float):
    """(start, rows) of one chunk: bad spectra as statuses, the others refined, poor refined fits by QUEST."""
    start, arr, init = task
    rows: list = [None] * len(arr)
    finite = np.all(np.isfinite(arr), axis=1)
    good = finite & np.any(arr, axis=1)
    for i in np.flatnonzero(~good):
        status, message = ("no_signal", "the FID is all zeros") if finite[i] else \
            ("nan_input", "the FID contains NaN or Inf")
        rows[i] = {**_failed_row(basis.names, status, message), "method": "hybrid"}
    idx = np.flatnonzero(good)
    if not len(idx):
        return start, rows
    # nonnegative: the free-sign fit first; where its amplitudes are all >= 0 that minimum is also the constrained
    # one, the others are refitted by QUEST's nonnegative search
    free = opts.with_(nonnegative=False) if opts.nonnegative else opts
    results = fit_results(arr[idx], basis, None if init is None else init[idx], free,
                          max_iterations=max_iterations, tol=tol, chunk=len(idx))
    for i, res in zip(idx, results):
        method = "hybrid"
        negative = opts.nonnegative and bool(np.any(res.amplitudes < 0))
        if negative or fallback and res.status in ("poor_fit", "max_iterations"):
            try:
                full = fit_one(arr[i], basis, opts)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError):
                full = None
            if full is not None and (negative or full.chi2 < res.chi2 or
                                     res.status == "max_iterations" and full.status == "ok"):
                full.seconds += res.seconds
                res, method = full, "quest_fallback"
        rows[i] = {**res.row(), "method": method}
    return start, rows

"""Cramér–Rao lower bounds (CRLB) of the QUEST signal model (:mod:`mrs_tf.signal_model`).

For complex white Gaussian noise of standard deviation ``sigma`` in the real and in the imaginary part, the Fisher
information of the real parameter vector ``p`` of a model ``m(p)`` observed through a linear map ``O`` is
``F = Re(J^H J) / sigma^2 = J_r^T J_r / sigma^2`` with ``J = d O m / d p`` and ``J_r`` its real and imaginary parts
stacked; soft constraints (Gaussian priors of width ``s``) add ``1/s^2`` to the diagonal. The CRLB of parameter
``i`` is ``sqrt((F^-1)_ii)``, in the parameter's own units (amplitudes: basis units, i.e. mM for mrs-tf's basis).

Three entry points:

* :func:`covariance` / :func:`bounds`: from a Jacobian (what :func:`mrs_tf.quest.fit` uses at its solution);
* :func:`from_truth`: the bound of synthesized spectra at their true parameters (the noise sigma is known);
* :func:`lorentzian_amplitude_crlb`: the closed form for one Lorentzian line in white noise, for checks.
"""
from __future__ import annotations

import numpy as np

from mrs_tf.core.errors import MRSError

_LN2x4 = 4 * np.log(2)

__all__ = ["covariance", "fisher_covariance", "bounds", "ratio_bounds", "COMBINATIONS", "combination_rows", "tcr_rows", "combined",
           "lorentzian_amplitude_crlb", "from_truth"]

#: Sums reported next to their parts (LCModel's names), when every part is in the basis.
COMBINATIONS: dict[str, tuple[str, ...]] = {
    "NAA+NAAG": ("NAA", "NAAG"),
    "Cr+PCr": ("Cr", "PCr"),
    "GPC+PCh": ("GPC", "PCh"),
    "Glu+Gln": ("Glu", "Gln"),
}


def covariance(jacobian: np.ndarray, prior_precision: np.ndarray | None = None) -> np.ndarray:
    """Inverse Fisher information ``(J^T J + diag(prior))^-1`` of a real Jacobian already divided by sigma.

    Directions that the data do not determine (singular Fisher matrix) get an infinite variance, never a silent
    small one.
    """
    jac = np.asarray(jacobian, float)
    fisher = jac.T @ jac
    if prior_precision is not None:
        fisher = fisher + np.diag(prior_precision)
    return fisher_covariance(fisher)


def fisher_covariance(fisher: np.ndarray) -> np.ndarray:
    """Inverse of a Fisher information matrix (equilibrated; undetermined directions get an infinite variance)."""
    fisher = np.asarray(fisher, float)
    scale = np.sqrt(np.clip(np.diag(fisher), 1e-300, None))
    normed = fisher / np.outer(scale, scale)  # equilibrate before inverting
    w, v = np.linalg.eigh(normed)
    tiny = w < w.max() * 1e-12
    inv_w = np.where(tiny, 0.0, 1.0 / np.where(tiny, 1.0, w))
    cov = (v * inv_w) @ v.T / np.outer(scale, scale)
    if np.any(tiny):
        null = np.abs(v[:, tiny]).max(axis=1) > 1e-6
        cov[null, :] = np.inf
        cov[:, null] = np.inf
    return cov


def bounds(jacobian: np.ndarray, prior_precision: np.ndarray | None = None) -> np.ndarray:
    """CRLB (standard deviations) of every parameter: ``sqrt(diag(covariance))``."""
    return np.sqrt(np.diag(covariance(jacobian, prior_precision)))


def combination_rows(names) -> dict[str, list[int]]:
    """``{combination: row indices}`` for each of :data:`COMBINATIONS` whose parts are all in ``names``."""
    names = list(names)
    return {combo: [names.index(p) for p in parts] for combo, parts in COMBINATIONS.items()
            if all(p in names for p in parts)}


def tcr_rows(names) -> list[int]:
    """Rows of Cr and PCr (whichever are present): the reference of every ``<met>_over_tCr`` ratio."""
    names = list(names)
    return [names.index(n) for n in ("Cr", "PCr") if n in names]


def combined(names, amplitudes: np.ndarray, cov: np.ndarray) -> dict[str, tuple[float, float]]:
    """``{combination: (sum of amplitudes, its CRLB)}`` for each of :data:`COMBINATIONS` whose parts are all in
    ``names``; the bound uses the full covariance (``sqrt(1^T C 1)``), so anti-correlated parts (Cr and PCr) give a
    sum far better determined than either part."""
    out = {}
    for combo, rows in combination_rows(names).items():
        sub = cov[np.ix_(rows, rows)]
        out[combo] = (float(np.sum(np.asarray(amplitudes)[rows])), float(np.sqrt(max(sub.sum(), 0.0))))
    return out


def ratio_bounds(names, amplitudes: np.ndarray, cov: np.ndarray) -> dict[str, float]:
    """``{<name>_over_tCr: CRLB}`` of every signal's and every combination's ratio to Cr+PCr, from the amplitudes'
    covariance by the delta method (``g^T C g`` with ``g`` the ratio's gradient: ``1/tCr`` on the numerator's rows,
    ``-ratio/tCr`` on Cr's and PCr's), so that correlations between numerator and tCr count."""
    names = list(names)
    amplitudes = np.asarray(amplitudes, float)
    ref = tcr_rows(names)
    if not ref:
        return {}
    tcr = float(amplitudes[ref].sum())
    groups = {nm: [i] for i, nm in enumerate(names)}
    groups.update(combination_rows(names))
    cov = np.asarray(cov, float)[:len(names), :len(names)]
    out = {}
    for name, rows in groups.items():
        grad = np.zeros(len(names))
        grad[rows] += 1.0 / tcr
        grad[ref] -= float(amplitudes[rows].sum()) / tcr ** 2
        out[f"{name}_over_tCr"] = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    return out


def lorentzian_amplitude_crlb(noise_sd: float, fwhm_hz: float, dwell_s: float, n_points: int) -> float:
    """Exact CRLB of the amplitude ``a`` of ``a exp(i phi) exp((-pi fwhm + 2 pi i f) t)`` sampled at
    ``t = k dwell_s`` (k < n_points) in complex white noise (sigma per part), all of a, phi, fwhm, f unknown.

    The Fisher matrix splits into an (a, damping) block and a (phi, f) block; the (a, damping) block gives
    ``CRLB(a)^2 = sigma^2 S2 / (S0 S2 - S1^2)`` with ``S_n = sum_k t_k^n exp(-2 d t_k)``, ``d = pi fwhm``.
    For long acquisitions (``exp(-d t_max)`` negligible) the sums close to ``CRLB(a) = sigma sqrt(1 - exp(-4 d dwell))``,
    i.e. ``2 sigma sqrt(d dwell)`` when ``d dwell << 1``.
    """
    if fwhm_hz <= 0 or dwell_s <= 0 or n_points < 2:
        raise MRSError("lorentzian_amplitude_crlb needs fwhm_hz > 0, dwell_s > 0 and n_points >= 2")
    x = np.exp(-2 * np.pi * fwhm_hz * dwell_s)  # ratio of the geometric series
    k = np.arange(n_points, dtype=float)
    w = x ** k
    s0, s1, s2 = w.sum(), (k * w).sum() * dwell_s, (k * k * w).sum() * dwell_s ** 2
    return float(noise_sd * np.sqrt(s2 / (s0 * s2 - s1 ** 2)))


def from_truth(basis, truth: dict, options=None, rows=None, *, baseline: str = "known") -> dict[str, np.ndarray]:
    """CRLB of synthesized spectra at their true parameters, for the QUEST model with ``options``.

    Args:
        basis: the :class:`~mrs_tf.basis.BasisSet` the spectra were synthesized from (and QUEST fits with).
        truth: the truth table of :func:`mrs_tf.synthesize` (concentrations, lineshape, shifts, phases, noise_sd).
        options: :class:`mrs_tf.quest.QuestOptions` (default: QUEST's defaults); sets the damping/shift groups,
            the soft constraints and the truncation, so that the bound belongs to the estimator being judged
            (``background="none"`` for the bound of the whole FID).
        rows: indices of the spectra (default: all).
        baseline: ``"known"``: the synthesis' smooth baseline is taken as known (it is not a parameter of the QUEST
            model; the tightest bound, which no estimator that must find the baseline attains); ``"unknown"``: its
            broad Gaussian lines (:class:`mrs_tf.synth.SynthesisConfig`'s ``baseline_*``: a real amplitude, a
            frequency in Hz and a FWHM in Hz each) are parameters of the model too, so that the bound is that of the
            exact model of the spectra (use it with ``background="none"``).

    Returns:
        ``{<metabolite>: crlb}`` plus every combination of :data:`COMBINATIONS` (basis units, e.g. mM) and the bound
        of every ratio to Cr+PCr (``<name>_over_tCr``, :func:`ratio_bounds`), each an array over ``rows``.
    """
    from mrs_tf.fitting.options import QuestOptions, group_indices
    from mrs_tf.fitting.signal_model import Observation, SignalModel

    options = options or QuestOptions()
    if baseline not in ("known", "unknown"):
        raise MRSError(f"baseline must be 'known' or 'unknown', not {baseline!r}")
    names = list(basis.names)
    n_total = len(np.asarray(truth[names[0]]))
    rows = np.arange(n_total) if rows is None else np.atleast_1d(rows)
    dgroups, sgroups = group_indices(names, options.damping), group_indices(names, options.shift)
    first = options.bound_first_point(basis.dwell_s, basis.n_points)
    model = SignalModel(basis.fids, basis.dwell_s, basis.field_mhz, damping_groups=dgroups, shift_groups=sgroups,
                        gaussian=options.gaussian, fit_phase1=options.phase1, shift_sd_hz=options.shift_sd_hz,
                        observation=Observation(first_point=first))
    out = {nm: np.empty(len(rows)) for nm in names}
    from mrs_tf.core.threads import one_blas_thread

    with one_blas_thread():  # small matrices: threads cost more than they bring
        _bounds_at_truth(model, truth, names, rows, sgroups, n_total, out,
                         _BaselineLines(basis, truth) if baseline == "unknown" else None)
    return out


class _BaselineLines:
    """The synthesis' smooth baseline (:func:`mrs_tf.synth.synthesize`) as parameters: per spectrum, the broad
    Gaussian lines ``A_k exp(2 pi i nu_k t - (pi W_k t)^2 / 4 ln 2)`` (A_k real, FID units; nu_k, W_k in Hz), added
    before the first-order phase and neither phased nor shifted with the metabolites."""

    def __init__(self, basis, truth: dict):
        self.n_lines = sum(1 for key in truth if key.startswith("baseline_amp_"))
        self.truth, self.t, self.field, self.ref = truth, basis.time, basis.field_mhz, basis.ref_ppm

    def columns(self, model, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(derivatives (3K, N) in the model's corrected frame, the baseline's addition to the phase1 column)."""
        tr, t = self.truth, self.t
        phase0 = np.deg2rad(tr["phase0_deg"][i])
        cols, total = [], np.zeros_like(t, complex)
        for k in range(self.n_lines):
            width = tr[f"baseline_fwhm_ppm_{k}"][i] * self.field
            nu = (self.ref - tr[f"baseline_ppm_{k}"][i]) * self.field
            envelope = np.exp(-(np.pi * width * t) ** 2 / _LN2x4)
            shape = envelope * np.exp(2j * np.pi * nu * t)
            amp = tr[f"baseline_amp_{k}"][i] * tr["naa_height"][i] / envelope.sum()  # relative -> FID units
            cols += [shape, 2j * np.pi * t * amp * shape, -(np.pi * t) ** 2 * 2 * width / _LN2x4 * amp * shape]
            total += amp * shape
        turn = np.exp(-1j * phase0)  # the model's frame: de-phased by phase0 (the baseline was not phased by it)
        return turn * np.array(cols), turn * model.dphase1(total)


def _bounds_at_truth(model, truth, names, rows, sgroups, n_total, out, lines=None) -> None:
    """Fill ``out`` with the CRLB of every row of ``truth`` (see :func:`from_truth`); ``lines``: the baseline's
    parameters as unknowns."""
    for j, i in enumerate(rows):
        conc = np.array([truth[nm][i] for nm in names], float)
        met_shift = np.array([truth.get(f"{nm}_shift_hz", np.zeros(n_total))[i] for nm in names])
        # per-group deviations: the mean true deviation of each group's members
        dshift = np.array([met_shift[sgroups == g].mean() for g in range(model.n_sg)])
        theta = model.pack(phase0=np.deg2rad(truth["phase0_deg"][i]), phase1=truth["phase1_deg_per_ppm"][i],
                           lorentz=truth["lw_lorentz_hz"][i], gauss=truth["lw_gauss_hz"][i],
                           shift=truth["shift_hz"][i], dshift=dshift)
        model.sigma = float(truth["noise_sd"][i])
        if not model.sigma > 0:
            raise MRSError(f"spectrum {i} has no noise (noise_sd = {model.sigma}); its CRLB is zero")
        jac = model.fisher_jacobian(theta, conc)
        prior = model.prior_precision(len(names), theta)
        if lines is not None:
            from mrs_tf.fitting.signal_model import stack

            extra, dphase1 = lines.columns(model, i)
            if model.fit_phase1:
                jac[:, len(names) + model.idx["phase1"]] += stack(model.obs(dphase1)) / model.sigma
            # the baseline's parameters profiled out: every other column projected off the span of the baseline's
            # derivatives (the Schur complement of their block; two nearly equal broad lines make that block
            # singular, but only the span they cover matters)
            u, sv, _ = np.linalg.svd(stack(model.obs(extra)).T / model.sigma, full_matrices=False)
            span = u[:, sv > sv[0] * 1e-9]
            jac = jac - span @ (span.T @ jac)
        cov = covariance(jac, prior)
        crlb = np.sqrt(np.diag(cov))
        for k, nm in enumerate(names):
            out[nm][j] = crlb[k]
        for combo, (_, bound) in combined(names, conc, cov).items():
            out.setdefault(combo, np.empty(len(rows)))[j] = bound
        for ratio, bound in ratio_bounds(names, conc, cov).items():
            out.setdefault(ratio, np.empty(len(rows)))[j] = bound

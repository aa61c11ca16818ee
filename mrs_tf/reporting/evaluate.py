"""Accuracy of estimators against ground truth, per metabolite and SNR band, beside the Cramér–Rao bound.

``evaluate(truth, {"network": table_nn, "QUEST": table_quest}, crlb=bounds)`` returns a tidy
:class:`~mrs_tf.table.ResultTable`, one row per (method, quantity, metabolite, SNR band), with

* ``n``, ``mape_pct`` (mean |error| / truth, %), ``mae``, ``bias``, ``bias_pct`` (bias / mean truth, %), ``rmse``;
* ``slope``, ``intercept``, ``r2`` of the least-squares line estimate = slope * truth + intercept (a perfect
  estimator: 1, 0, 1; one that returns the prior mean whatever the data: slope 0);
* ``efficiency``: RMSE / mean CRLB (the bound's sigma at the true parameters; 1 = as good as an unbiased estimator
  can be, below 1 only by bias toward a prior);
* ``within_1sd_pct``, ``within_2sd_pct``: for estimators that report a sigma (``<met>_sd``), the fraction of errors
  within one and two sigmas (68.3 % and 95.4 % when calibrated); QUEST's sigma is its CRLB (``<met>_crlb``).

``quantity`` is ``amplitude`` (basis units, mM) or ``ratio_tCr`` (``<met>_over_tCr`` against the true ratio to
Cr+PCr). Combinations (NAA+NAAG, Cr+PCr, GPC+PCh, Glu+Gln) are truth sums of their parts.
"""
from __future__ import annotations

import numpy as np

from mrs_tf.fitting.crlb import COMBINATIONS
from mrs_tf.core.errors import MRSError
from mrs_tf.core.table import ResultTable

__all__ = ["metrics", "evaluate", "truth_value", "DEFAULT_SNR_BANDS", "HEADLINE"]

DEFAULT_SNR_BANDS = ((10.0, 30.0), (30.0, 60.0), (60.0, 100.0))
HEADLINE = ("NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins")
COLUMNS = ("n", "mape_pct", "mae", "bias", "bias_pct", "rmse", "slope", "intercept", "r2", "efficiency",
           "within_1sd_pct", "within_2sd_pct")


def metrics(estimate, truth, sd=None, crlb=None) -> dict[str, float]:
    """The figures of one estimator on one quantity (1-D arrays of the same length; NaN estimates are errors)."""
    est = np.asarray(estimate, float)
    tru = np.asarray(truth, float)
    if est.shape != tru.shape or est.ndim != 1:
        raise MRSError(f"estimate and truth must be 1-D arrays of one length, got {est.shape} and {tru.shape}")
    ok = np.isfinite(est) & np.isfinite(tru)
    est, tru = est[ok], tru[ok]
    nan = float("nan")
    out = dict.fromkeys(COLUMNS, nan)
    out["n"] = float(len(est))
    if len(est) == 0:
        return out
    err = est - tru
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mape_pct"] = float(100 * np.mean(np.abs(err) / np.abs(tru)))
        out["bias_pct"] = float(100 * np.mean(err) / np.mean(tru))
    out["mae"] = float(np.mean(np.abs(err)))
    out["bias"] = float(np.mean(err))
    out["rmse"] = float(np.sqrt(np.mean(err ** 2)))
    if len(est) > 1 and np.ptp(tru) > 0:
        slope, intercept = np.polyfit(tru, est, 1)
        ss_res = np.sum((est - (slope * tru + intercept)) ** 2)
        ss_tot = np.sum((est - est.mean()) ** 2)
        out["slope"], out["intercept"] = float(slope), float(intercept)
        out["r2"] = float(1 - ss_res / ss_tot) if ss_tot > 0 else 0.0
    if crlb is not None:
        bound = np.asarray(crlb, float)[ok]
        out["efficiency"] = float(out["rmse"] / np.mean(bound))
    if sd is not None:
        s = np.asarray(sd, float)[ok]
        out["within_1sd_pct"] = float(100 * np.mean(np.abs(err) <= s))
        out["within_2sd_pct"] = float(100 * np.mean(np.abs(err) <= 2 * s))
    return out


def truth_value(truth: dict, name: str) -> np.ndarray:
    """True amplitude of a metabolite or a combination ("A+B": the sum of the parts)."""
    try:
        return sum(np.asarray(truth[p], float) for p in name.split("+"))
    except KeyError as exc:
        raise MRSError(f"the truth table has no {exc.args[0]!r}") from None


def _sd(table: dict, name: str):
    for key in (f"{name}_sd", f"{name}_crlb"):
        if key in table:
            return table[key]
    return None


def evaluate(truth: dict, estimates: dict, names=None, snr_bands=DEFAULT_SNR_BANDS, crlb: dict | None = None,
             ratios: bool = True) -> ResultTable:
    """Tidy metrics table (see the module docstring).

    Args:
        truth: ground truth (``synthesize``'s truth dict, or a CSV read into a dict): ``<met>`` and ``snr``.
        estimates: ``{method: table}``, each table mapping ``<met>`` (and ``<met>_sd``/``_crlb``,
            ``<met>_over_tCr``) to arrays in the order of the truth's spectra.
        names: metabolites and combinations to report (default: every name in the truth that every table has, plus
            the combinations they cover).
        snr_bands: ``(low, high)`` ranges of ``truth["snr"]`` (low inclusive); the ``all`` band is always added.
        crlb: ``{<met>: bound per spectrum}`` (e.g. :func:`mrs_tf.crlb.from_truth`) for the efficiency column.
    """
    if not estimates:
        raise MRSError("give at least one set of estimates")
    n = len(np.asarray(truth["snr"]))
    for method, table in estimates.items():
        lengths = {len(np.asarray(v)) for k, v in table.items() if not isinstance(v, str)}
        if lengths and lengths != {n}:
            raise MRSError(f"estimates {method!r} have {sorted(lengths)} rows; the truth has {n} spectra")
    if names is None:
        base = [k for k in truth if all(k in t for t in estimates.values()) and not k.endswith(("_sd", "_crlb"))
                and np.issubdtype(np.asarray(truth[k]).dtype, np.number) and k != "snr"
                and not k.startswith(("lw_", "shift", "phase", "baseline", "water", "lipid", "noise", "naa_"))
                and not k.endswith("_shift_hz")]
        names = base + [c for c in COMBINATIONS if all(p in truth for p in COMBINATIONS[c])
                        and all(c in t for t in estimates.values())]
    snr = np.asarray(truth["snr"], float)
    bands = [("all", np.ones(n, bool))] + [(f"{lo:g}-{hi:g}", (snr >= lo) & (snr < hi)) for lo, hi in snr_bands]
    tcr = truth_value(truth, "Cr+PCr") if all(p in truth for p in ("Cr", "PCr")) else None
    rows = []
    for method, table in estimates.items():
        for name in names:
            if name not in table:
                raise MRSError(f"estimates {method!r} have no column {name!r}")
            tru = truth_value(truth, name)
            sd = _sd(table, name)
            bound = None if crlb is None or name not in crlb else np.asarray(crlb[name], float)
            for band, sel in bands:
                rows.append({"method": method, "quantity": "amplitude", "metabolite": name, "snr_band": band,
                             **metrics(np.asarray(table[name], float)[sel], tru[sel],
                                       None if sd is None else np.asarray(sd, float)[sel],
                                       None if bound is None else bound[sel])})
                if ratios and tcr is not None and f"{name}_over_tCr" in table and name != "Cr+PCr":
                    rows.append({"method": method, "quantity": "ratio_tCr", "metabolite": name, "snr_band": band,
                                 **metrics(np.asarray(table[f"{name}_over_tCr"], float)[sel], (tru / tcr)[sel])})
    return ResultTable.from_rows(rows)

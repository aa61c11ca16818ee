"""The table of a network's estimates: every output, its sigma, its ratio to tCr, and the combinations."""
from __future__ import annotations

import numpy as np

from mrs_tf.core.table import ResultTable, status_columns
from mrs_tf.preprocess.input_flags import (FIT_LIPID_DRIFT, LIPID_LIMIT, PATTERN_OVERRIDES, flag_lipids,  # noqa: F401
                                           flag_pattern, pattern_message)  # (re-exported: their home before)
from mrs_tf.fitting.crlb import combination_rows, tcr_rows

__all__ = ["network_table", "prior_columns", "flag_prior_dominated", "PRIOR_DOMINATED_RATIO", "status_columns",
           "LIPID_LIMIT", "FIT_LIPID_DRIFT", "PATTERN_OVERRIDES", "flag_lipids",
           "flag_pattern", "pattern_message"]


def network_table(names: list[str], outputs: list[str], mean: np.ndarray, sd: np.ndarray | None) -> ResultTable:
    """``<met>`` (basis units, mM for mrs-tf's basis), ``<met>_sd`` (the network's sigma, when it has one) and
    ``<met>_over_tCr`` for every name, then the same for NAA+NAAG, Cr+PCr, GPC+PCh, Glu+Gln: the value is the sum of
    the parts; its sd is the network's own sigma for the sum where ``outputs`` (the network's output columns, names
    then combinations) has one (the parts' errors are correlated), else the parts' sigmas in quadrature.
    ``mean``/``sd``: (n, len(outputs)) or (n, len(names))."""
    parts = tcr_rows(names)
    tcr = mean[:, parts].sum(1) if parts else np.full(len(mean), np.nan)
    table = ResultTable()
    table["index"] = np.arange(len(mean), dtype=float)

    def add(name, value, sdev):
        table[name] = value
        if sdev is not None:
            table[f"{name}_sd"] = sdev
        with np.errstate(divide="ignore", invalid="ignore"):
            table[f"{name}_over_tCr"] = value / tcr

    for j, nm in enumerate(names):
        add(nm, mean[:, j], None if sd is None else sd[:, j])
    for combo, idx in combination_rows(names).items():
        if sd is None:
            combo_sd = None
        elif combo in outputs:
            combo_sd = sd[:, outputs.index(combo)]
        else:
            combo_sd = np.sqrt((sd[:, idx] ** 2).sum(1))
        add(combo, mean[:, idx].sum(1), combo_sd)
    return table


#: a network's relative sd (sd / value) at or above this fraction of its training prior's (prior sd / prior mean):
#: the data told it less than about half of what the prior left open (for a Bayes-optimal estimate at the prior's
#: mean, sd / prior sd = sqrt(1 - R^2)). press3t_short_te at SNR 15-150: 0.2-0.5 on tNAA, tCr, tCho, Glu, Ins
#: (R^2 0.72-0.96); 0.9-1.3 on PE, GABA, Asp, Lac, Asc, Glc, NAAG, PCh (R^2 below 0.45). A fit says the same with a
#: large CRLB.
PRIOR_DOMINATED_RATIO = 0.7
#: the ratios a spectrum is read for: where one of these is its prior's, the spectrum gets status prior_dominated
HEADLINE_OUTPUTS = ("NAA+NAAG", "Cr+PCr", "GPC+PCh", "Glu", "Ins")


def prior_columns(table: ResultTable, ranges: dict) -> ResultTable:
    """``table`` (:func:`network_table`) with ``<met>_sd_vs_prior`` for every ``<met>_sd`` whose training prior is
    known (``ranges``: ``{name: (low, high)}``, the uniform ranges the training drew from,
    :func:`mrs_tf.physics.synth.concentration_ranges`; a sum's prior: its parts' means added, their sds in
    quadrature): the network's relative sd, ``sd / |value|`` (a CRLB %'s kind of figure), over the prior's, ``prior
    sd / prior mean``. Relative, because a scanner file's units are arbitrary and the network's answer scales with
    them. And ``prior_dominated``: per spectrum, the names at :data:`PRIOR_DOMINATED_RATIO` or above (``;`` between
    them), values that say little more than the prior the network was trained with (a network's PE reads PE/tCr 0.13
    whatever the truth, 0.06-0.48, with an sd that looks like a usable 28 %)."""
    prior = {nm: ((lo + hi) / 2.0, (hi - lo) / np.sqrt(12.0)) for nm, (lo, hi) in ranges.items()}
    names = [k[:-3] for k in list(table) if k.endswith("_sd")]
    for nm in names:
        parts = nm.split("+")
        if nm not in prior and len(parts) > 1 and all(p in prior for p in parts):
            prior[nm] = (sum(prior[p][0] for p in parts), float(np.sqrt(sum(prior[p][1] ** 2 for p in parts))))
    flagged = [[] for _ in range(table.n_rows)]
    for nm in names:
        mean, sd = prior.get(nm, (0.0, 0.0))
        if mean <= 0 or sd <= 0:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (np.asarray(table[f"{nm}_sd"], float) / np.abs(np.asarray(table[nm], float))) / (sd / mean)
        table[f"{nm}_sd_vs_prior"] = ratio
        for i in np.flatnonzero(~(ratio < PRIOR_DOMINATED_RATIO)):  # NaN (a value of 0) counts as the prior's
            flagged[i].append(nm)
    table["prior_dominated"] = np.array([";".join(f) for f in flagged], dtype=object)
    return table


def flag_prior_dominated(table: ResultTable) -> ResultTable:
    """Status ``prior_dominated`` (on spectra still ``ok``) where a headline output (:data:`HEADLINE_OUTPUTS`) is
    among ``prior_dominated`` (:func:`prior_columns`): the ratio the spectrum is read for is mostly the network's
    prior (too little signal for it: low SNR, broad lines, a small voxel)."""
    if "prior_dominated" not in table:
        return table
    status, message = status_columns(table, table.n_rows)
    for i in range(table.n_rows):
        heads = [h for h in str(table["prior_dominated"][i]).split(";") if h in HEADLINE_OUTPUTS]
        if heads and status[i] == "ok":
            status[i] = "prior_dominated"
            message[i] = (f"{', '.join(heads)}: the network's relative sd is {PRIOR_DOMINATED_RATIO:g} or more of its "
                          f"training prior's (columns <met>_sd_vs_prior): the value says little more than that "
                          f"prior; fit the spectrum (method='hybrid', mrs-tf fit) and read its CRLBs, or average more")
    table["status"], table["message"] = status, message
    return table

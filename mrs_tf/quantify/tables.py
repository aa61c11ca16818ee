"""The table of a network's estimates: every output, its sigma, its ratio to tCr, and the combinations."""
from __future__ import annotations

import numpy as np

from mrs_tf.core.table import ResultTable, status_columns
from mrs_tf.preprocess.input_flags import (FIT_LIPID_DRIFT, LIPID_LIMIT, PATTERN_OVERRIDES, flag_lipids,  # noqa: F401
                                           flag_pattern, pattern_message)  # (re-exported: their home before)
from mrs_tf.fitting.crlb import combination_rows, tcr_rows

__all__ = ["network_table", "status_columns", "LIPID_LIMIT", "FIT_LIPID_DRIFT", "PATTERN_OVERRIDES", "flag_lipids",
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

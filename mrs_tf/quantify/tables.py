"""The table of a network's estimates: every output, its sigma, its ratio to tCr, and the combinations."""
from __future__ import annotations

import numpy as np

from mrs_tf.core.table import ResultTable, status_columns
from mrs_tf.fitting.crlb import combination_rows, tcr_rows

__all__ = ["network_table", "status_columns", "LIPID_LIMIT", "flag_lipids", "pattern_message"]

#: the network's path flags a spectrum ``lipid_contamination`` where :class:`~mrs_tf.preprocess.spectra.InputScores`'
#: ``lipid_to_naa`` (the 1.3 ppm band's height over NAA's) exceeds this, for a network that learnt lipids up to 0.3
#: NAA heights (press3t_short_te; :func:`mrs_tf.quantify.quantifier.lipid_limit` for others); the fits (``mrs-tf
#: fit``, hybrid, cross-check) too. The network's training spectra score up to 0.69-0.72 (99.9th percentile, three
#: protocols), the Philips volunteers 0.50 and 0.31; beyond, press3t_short_te's tNAA/tCr reads +7.5 % (0.8-1.0), +12 %
#: (1.0-1.2), +18 % (1.2-1.5) high and Glu/tCr +6, +8, +12 % (9,216 spectra, lipids up to 3 NAA heights); mrs-tf's
#: in vivo fit with free MM components at 0.8-1.0: tCho/tCr -7 %, Ins/tCr +15 %, Glu/tCr -13 % (median, 46 spectra;
#: benchmarks/RESULTS.md)
LIPID_LIMIT = 0.8

#: what the fits' ratios do beyond :data:`LIPID_LIMIT`, for the flag's message
FIT_LIPID_DRIFT = ("the fit's ratios drift (mrs-tf's in vivo fit with free MM components at 0.8-1.0x: tCho/tCr -7 %, "
                   "Ins/tCr +15 %, Glu/tCr -13 % median; it has no model of lipids that tall)")


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


def flag_lipids(status: np.ndarray, message: np.ndarray, lipid_to_naa: np.ndarray, limit: float, drift: str,
                learnt: bool = False) -> None:
    """Set ``status`` to ``lipid_contamination`` (in place; the earlier message kept after the new one) where
    ``lipid_to_naa`` (:class:`~mrs_tf.preprocess.spectra.InputScores`) exceeds ``limit``; ``drift`` says what the
    numbers do there, ``learnt``: the limit is what a network learnt (else a fit's)."""
    for i in np.flatnonzero(np.asarray(lipid_to_naa) > limit):
        text = (f"the 1.3 ppm band (lipids, lactate) is {lipid_to_naa[i]:.2f}x NAA's height, beyond "
                + (f"what the network learnt (up to about {limit:.2g}x): " if learnt else f"{limit:.2g}x: ")
                + f"{drift}; suppress the lipids at the scan (outer-volume suppression, the voxel away from the "
                  f"skull) or look at the spectrum before trusting a number")
        status[i], message[i] = "lipid_contamination", text + (f"; {message[i]}" if message[i] else "")


#: the statuses that ``no_metabolite_pattern`` replaces: a lipid score or a fit's chi2 means nothing on a spectrum of
#: no metabolite pattern; residual water, an offset, broad lines or a mirrored spectrum are causes of a poor match,
#: and their flags say which
PATTERN_OVERRIDES = ("ok", "lipid_contamination", "poor_fit")


def flag_pattern(status: np.ndarray, message: np.ndarray, scores, skip=None) -> None:
    """Set ``status`` to ``no_metabolite_pattern`` (in place; the earlier message kept after the new one) where
    ``scores`` (:class:`~mrs_tf.preprocess.spectra.InputScores`) match the basis's pattern poorly and are not mirrored
    (:func:`~mrs_tf.preprocess.spectra.lacks_pattern`) and the status is one of :data:`PATTERN_OVERRIDES`; ``skip``:
    a boolean mask of spectra to leave alone (e.g. those of no signal, said otherwise)."""
    from mrs_tf.preprocess.spectra import lacks_pattern

    unlike = lacks_pattern(scores.as_is, scores.conjugated) & np.isin(status, PATTERN_OVERRIDES)
    if skip is not None:
        unlike &= ~np.asarray(skip, bool)
    for i in np.flatnonzero(unlike):
        status[i], message[i] = "no_metabolite_pattern", pattern_message(scores.as_is[i]) + (
            f"; {message[i]}" if message[i] else "")


def pattern_message(as_is: float) -> str:
    """The ``no_metabolite_pattern`` message for a spectrum that matches the basis ``as_is``
    (:func:`~mrs_tf.preprocess.spectra.lacks_pattern`)."""
    from mrs_tf.preprocess.spectra import NO_PATTERN_LIMIT

    return (f"the spectrum does not match the basis's metabolite pattern ({as_is:.2f}; brain spectra score "
            f"0.58 or more, usually 0.7-0.9; the limit is {NO_PATTERN_LIMIT:g}): every number is nonsense. A water reference (unsuppressed "
            f"water) given as the data? (it goes to --water) Failed water suppression, another nucleus or sequence? "
            f"Look at the spectrum")

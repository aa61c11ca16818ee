"""Flags on a quantifier's input that no fit or network can see past: lipids taller than any model of them holds
(``lipid_contamination``), a spectrum with no metabolite pattern (``no_metabolite_pattern``: e.g. a water reference
given as the data), each set on a result table's ``status`` with a message that says what to do. Measured by
:func:`~mrs_tf.preprocess.spectra.input_scores`; shared by :func:`mrs_tf.quest.fit`, ``mrs-tf fit`` and
:meth:`mrs_tf.Quantifier.quantify`."""
from __future__ import annotations

import numpy as np

__all__ = ["LIPID_LIMIT", "FIT_LIPID_DRIFT", "PATTERN_OVERRIDES", "flag_lipids", "flag_pattern", "pattern_message",
           "flag_fit_inputs", "flag_offset", "flag_broad_lines", "flag_fit_reach", "set_flag", "wide_scores",
           "BROAD_LINE_LIMIT_HZ", "SCORED_STATUSES", "OFFSET_SEARCH_PPM", "OFFSET_MARGIN_PPM", "OFFSET_ACCURACY_PPM"]

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


#: how far (+-ppm) the input checks search the peaks' offset: beyond the search an offset aliases to a match within it
#: (NAA's singlet on Cr's, ...), and with +-0.5 ppm spectra moved by 0.8 / 1.0 ppm came out ``ok`` on 40 % / 89 % of 512
#: (press3t_short_te); with +-1.2 ppm 99-100 % are flagged and 0.2 % of spectra in the training range are
OFFSET_SEARCH_PPM = 1.2
#: how well (ppm) :func:`~mrs_tf.preprocess.spectra.input_scores` measures the offset: a fit's spectrum is
#: ``offset_out_of_range`` where its peaks sit further than the fit's shift reaches plus this
OFFSET_ACCURACY_PPM = 0.01
#: the network's path flags ``offset_out_of_range`` where the peaks sit further than its training range plus this (ppm;
#: at +-0.25 ppm press3t_short_te's MAPE is 1.3-1.9x, at 0.3 ppm 2-3x its in-range one)
OFFSET_MARGIN_PPM = 0.03


#: ``broad_lines`` where :class:`~mrs_tf.preprocess.spectra.InputScores`' ``line_hz`` (the Lorentzian broadening of
#: the basis that best matches the spectrum) reaches this (Hz): spectra synthesised with Lorentzian 1-12 Hz and
#: Gaussian 2-14 Hz score so on 0-0.2 %, with Lorentzian 20-25 Hz on 60-62 %, 25-35 Hz on 96-97 %; the Philips
#: volunteers score 6 Hz. A network that learnt broader lines gets the difference on top
#: (:meth:`mrs_tf.Quantifier.quantify`)
BROAD_LINE_LIMIT_HZ = 26.0


def set_flag(status: np.ndarray, message: np.ndarray, i: int, name: str, text: str) -> None:
    """Set spectrum ``i``'s ``status`` to ``name`` and its message to ``text``, the earlier message kept after it."""
    status[i], message[i] = name, text + (f"; {message[i]}" if message[i] else "")


def wide_scores(fids, basis):
    """(:class:`~mrs_tf.preprocess.spectra.InputScores`, mirrored mask) of ``fids`` with the offset searched over
    +-:data:`OFFSET_SEARCH_PPM`; a frequency-mirrored spectrum's best match far out is spurious (+1.2 ppm on a Philips
    volunteer, its water then measured at the wrong place), so its other measures are those of a search near home."""
    from mrs_tf.preprocess.spectra import as_fid_matrix, input_scores, looks_mirrored

    arr = as_fid_matrix(fids)
    scores = input_scores(arr, basis, search_ppm=OFFSET_SEARCH_PPM)
    mirrored = looks_mirrored(scores.as_is, scores.conjugated)
    if mirrored.any():
        near = input_scores(arr[mirrored], basis)
        for name in ("offset_ppm", "water_to_naa", "line_hz", "naa_over_noise", "lipid_to_naa"):
            getattr(scores, name)[mirrored] = getattr(near, name)
    return scores, mirrored


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
        set_flag(status, message, i, "lipid_contamination", text)


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
        set_flag(status, message, i, "no_metabolite_pattern", pattern_message(scores.as_is[i]))


def pattern_message(as_is: float) -> str:
    """The ``no_metabolite_pattern`` message for a spectrum that matches the basis ``as_is``
    (:func:`~mrs_tf.preprocess.spectra.lacks_pattern`)."""
    from mrs_tf.preprocess.spectra import NO_PATTERN_LIMIT

    return (f"the spectrum does not match the basis's metabolite pattern ({as_is:.2f}; brain spectra score "
            f"0.58 or more, usually 0.7-0.9; the limit is {NO_PATTERN_LIMIT:g}): every number is nonsense. A water reference (unsuppressed "
            f"water) given as the data? (it goes to --water) Failed water suppression, another nucleus or sequence? "
            f"Look at the spectrum")


def flag_offset(status: np.ndarray, message: np.ndarray, offset_ppm: np.ndarray, reach_ppm: float,
                skip=None) -> None:
    """Set ``status`` to ``offset_out_of_range`` (in place; the earlier message kept after the new one) where a fit's
    spectrum has its peaks (``offset_ppm``, :class:`~mrs_tf.preprocess.spectra.InputScores`) further from the
    basis's than the fit's shift reaches (``reach_ppm``, :meth:`~mrs_tf.quest.QuestOptions.shift_reach_ppm`) and
    the offset's accuracy (0.01 ppm): the fit matches the peaks to other peaks and every number is nonsense, often with
    broad lines, amplitudes that cancel and a modest chi2 (mrs-tf's spectra moved 0.6 ppm: the hybrid fit read
    tNAA/tCr -0.59 for 1.02 with Cr -3018 and PCr +3529, status ``ok``); ``skip``: spectra to leave alone (mirrored
    or of no metabolite pattern, whose offset means nothing)."""
    from mrs_tf.preprocess.spectra import REFERENCE_SEARCH_PPM

    off = np.asarray(offset_ppm, float)
    far = np.abs(off) > reach_ppm + OFFSET_ACCURACY_PPM
    if skip is not None:
        far &= ~np.asarray(skip, bool)
    for i in np.flatnonzero(far):
        wide = abs(off[i]) > 0.9 * REFERENCE_SEARCH_PPM
        call = f"frequency_reference(fids, basis{f', search_ppm={OFFSET_SEARCH_PPM:g}' if wide else ''})"
        set_flag(status, message, i, "offset_out_of_range",
                 f"the peaks sit {off[i]:+.2f} ppm from the basis's positions, beyond what the fit's shift reaches "
                 f"(+-{reach_ppm:.2f} ppm): the fit matched them to other peaks and every number is nonsense; "
                 f"reference the spectra first (mrs_tf.preprocess.{call}) or widen the search "
                 f"(QuestOptions.search_ppm)")


def flag_broad_lines(status: np.ndarray, message: np.ndarray, line_hz: np.ndarray, skip=None) -> None:
    """Set a fit's ``status`` to ``broad_lines`` (in place; the earlier message kept after the new one) where the
    spectrum's lines (``line_hz``, :class:`~mrs_tf.preprocess.spectra.InputScores`) reach
    :data:`BROAD_LINE_LIMIT_HZ`: a poor shim (brain spectra at 3 T: 4-12 Hz), beyond what quality control accepts
    (0.1 ppm). On spectra with Lorentzian 25-35 Hz (127.75 MHz TE 35, SNR 5-100, 32 spectra) the network-initialised
    in vivo fit read tNAA / tCho / Ins / Glu over tCr with MAPE 17 / 27 / 51 / 35 %, 94 % ``ok``, one of them 5-7
    CRLBs off; ``skip``: spectra to leave alone (mirrored or of no metabolite pattern: their line means nothing)."""
    broad = np.asarray(line_hz, float) >= BROAD_LINE_LIMIT_HZ
    if skip is not None:
        broad &= ~np.asarray(skip, bool)
    for i in np.flatnonzero(broad):
        set_flag(status, message, i, "broad_lines",
                 f"the lines are {line_hz[i]:g} Hz broad or more (the basis matches best broadened so much; brain "
                 f"spectra at 3 T: 4-12 Hz): a poor shim, whose fitted ratios drift far (Lorentzian 25-35 Hz: MAPE "
                 f"17-51 %); check the shim")


def flag_fit_reach(status: np.ndarray, message: np.ndarray, scores, mirrored: np.ndarray,
                   reach_ppm: float | None) -> None:
    """A fit's ``broad_lines`` (:func:`flag_broad_lines`) and, with ``reach_ppm`` (the fit's shift reach,
    :meth:`~mrs_tf.quest.QuestOptions.shift_reach_ppm`), ``offset_out_of_range`` (:func:`flag_offset`) from
    ``scores`` (:func:`wide_scores`); spectra mirrored or of no metabolite pattern (a water reference given as the
    data) have no line or offset to speak of and are left alone."""
    from mrs_tf.preprocess.spectra import lacks_pattern

    unlike = np.asarray(mirrored, bool) | lacks_pattern(scores.as_is, scores.conjugated)
    flag_broad_lines(status, message, scores.line_hz, skip=unlike)
    if reach_ppm is not None:
        flag_offset(status, message, scores.offset_ppm, reach_ppm, skip=unlike)


#: the fit statuses that :func:`flag_fit_inputs` may replace
SCORED_STATUSES = ("ok", "poor_fit", "max_iterations")


def flag_fit_inputs(table, fids, basis, reach_ppm: float | None = None) -> None:
    """``lipid_contamination``, ``broad_lines`` (:func:`flag_broad_lines`), ``offset_out_of_range`` (with
    ``reach_ppm``, the fit's shift search: :func:`flag_offset`) and ``no_metabolite_pattern`` (in place, on
    ``table``'s ``status`` and ``message``) for the spectra of a fit: ``fids`` as fitted (residual water removed
    where the fit removes it, or not: the scores leave the water's band out), ``basis`` the fit's. A basis without
    NAA is not scored, nor are FIDs of NaN or zeros, nor spectra whose status is not one of :data:`SCORED_STATUSES`
    (no signal, a failed fit: their own statuses say more; noise scores as anything); frequency-mirrored spectra get
    no lipid, line or offset flag (their fit says ``poor_fit``, naming the mirroring)."""
    from mrs_tf.core.table import status_columns
    from mrs_tf.preprocess.spectra import as_fid_matrix

    if "NAA" not in basis.names:
        return
    arr = as_fid_matrix(fids)
    status, message = status_columns(table, len(arr))
    usable = np.flatnonzero(np.all(np.isfinite(arr), axis=1) & np.any(arr != 0, axis=1)
                            & np.isin(status, SCORED_STATUSES))
    if len(usable):
        scores, mirrored = wide_scores(arr[usable], basis)
        sub_status, sub_message = status[usable].copy(), message[usable].copy()
        # a frequency-mirrored spectrum's 1.3 ppm band is not lipids' (the fit's own status names the mirroring)
        lipids = np.where(mirrored, 0.0, scores.lipid_to_naa)
        flag_lipids(sub_status, sub_message, lipids, LIPID_LIMIT, FIT_LIPID_DRIFT)
        flag_fit_reach(sub_status, sub_message, scores, mirrored, reach_ppm)
        flag_pattern(sub_status, sub_message, scores)
        status[usable], message[usable] = sub_status, sub_message
    table["status"], table["message"] = status, message

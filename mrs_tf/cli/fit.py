"""``mrs-tf fit`` and ``mrs-tf quantify``: scans in (read, preprocessed, checked), a table, maps and a report out."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mrs_tf.cli.common import (add_omit, add_preprocessing, add_water, basis_norm, dwell_s_from, omitted,
                              fit_options, refuse_existing, spectra_count, water_scale, write_plot)
from mrs_tf.core.errors import MRSError, ProtocolError
from mrs_tf.preprocess.spectra import REFERENCE_SEARCH_PPM

#: the refocusing pulse of mrs-tf's basis for the hybrid fit and the cross-check on scanner files (general networks):
#: scanners' pulses are shaped; with ideal pulses the hybrid put tCho, Ins and Glu of two Philips volunteers 11-23 %
#: above LCModel (vendor basis), with this one within 8 % (benchmarks/RESULTS.md)
SCANNER_FIT_PULSE = "sinc_5.2ms_1200hz"


def fit_pulse_for(choice: str, d: dict) -> str:
    """The refocusing pulse of mrs-tf's fit basis for scan ``d`` (``read_data``'s dict): ``choice`` unless "auto";
    auto: a file of ``mrs-tf synth`` is fitted with the pulses of the basis that made it (ideal for mrs-tf's default
    simulation), every other file (scanner data) with :data:`SCANNER_FIT_PULSE`."""
    if choice != "auto":
        return choice
    if not made_by_mrs_tf(d):
        return SCANNER_FIT_PULSE
    pulse = str(d["simulated"].get("refocusing", "ideal"))
    return pulse if pulse in _pulse_names() else "ideal"


def made_by_mrs_tf(d: dict) -> bool:
    """Scan ``d`` (``read_data``'s dict) is a file of ``mrs-tf synth`` from mrs-tf's own basis (its provenance says
    so); anything else is treated as scanner data."""
    made = d.get("simulated")
    return made is not None and "mrs-tf" in str(made.get("basis_source", ""))


def _pulse_names() -> list[str]:
    from mrs_tf.physics.pulses import REFOCUSING_PULSES

    return list(REFOCUSING_PULSES)


#: files with more spectra than this (MRSI) are not cross-checked by default: a fit per voxel costs 0.05-0.5 s
CROSS_CHECK_MAX = 64


#: signals of a brain spectrum whose absence from a basis biases its neighbours (what takes their signal)
_EXPECTED = {"NAA": "NAAG, the baseline", "Cr": "PCr, MM", "Glu": "Gln, GABA, GSH", "Gln": "Glu, GABA, GSH",
             "Ins": "Gly, Tau", "GPC": "PCh", "PCh": "GPC"}


def add_parsers(sub) -> None:
    """The group's sub-commands on ``sub`` (argparse sub-parsers)."""
    fit = sub.add_parser("fit", help="quantify spectra (QUEST with CRLBs) into a CSV table")
    fit.add_argument("data", nargs="+", help="NIfTI-MRS (.nii.gz), LCModel .RAW or jMRUI text (.txt) files")
    fit.add_argument("--method", choices=["quest"], default="quest", help="quantification method (default quest)")
    fit.add_argument("--basis", default=None,
                     help="basis set file (.BASIS, .nii.gz, .txt, FSL-MRS folder, Osprey .mat); without it, "
                          "mrs-tf's basis for the scan's protocol (3 T short-TE PRESS: 123.2-127.8 MHz, TE 20-40 ms), "
                          "simulated with the refocusing pulses of --fit-pulse")
    fit.add_argument("--fit-pulse", default="auto", choices=["auto", "ideal", *_pulse_names()],
                     help=f"without --basis (or with --complete-basis): the refocusing pulses of mrs-tf's basis (auto: "
                          f"{SCANNER_FIT_PULSE} for scanner files, the synthesis' own for mrs-tf synth files)")
    fit.add_argument("--out", required=True, help="output CSV: one row per spectrum")
    fit.add_argument("--field-mhz", type=float, default=None, help="for .RAW data without a header")
    fit.add_argument("--bandwidth-hz", type=float, default=None, help="for .RAW data without a header")
    fit.add_argument("--resample-basis", action="store_true",
                     help="(always done now: a basis of other points/dwell is resampled to the data)")
    fit.add_argument("--preset", choices=["in-vivo", "classic"], default="in-vivo",
                     help="in-vivo (default): residual water removed, 0.2-4.0 ppm with a spline baseline, amplitudes "
                          ">= 0; classic: QUEST's time-domain fit (HLSVD's broad background where the data need it: "
                          "background auto; --background subtract for the published QUEST)")
    fit.add_argument("--background", choices=["subtract", "include", "truncate", "none", "spline", "auto"],
                     default=None, help="background handling (default: the preset's; spline for in-vivo, auto for classic: "
                                        "HLSVD's broad background in the fit only where the data need it, else the "
                                        "whole FID; subtract: the published QUEST)")
    fit.add_argument("--truncate-ms", type=float, default=None, help="FID start left to the background (ms)")
    fit.add_argument("--water-ppm", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                     help="remove residual water in this band by HLSVD first (in-vivo default: 4.2 5.2)")
    fit.add_argument("--no-water-removal", action="store_true", help="keep residual water (not recommended in vivo)")
    fit.add_argument("--ppm-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                     help="fit this band of the spectrum (in-vivo default: 0.2 4.0)")
    fit.add_argument("--nonnegative", dest="nonnegative", action="store_true", default=None,
                     help="metabolite amplitudes >= 0 (in-vivo default)")
    fit.add_argument("--allow-negative", dest="nonnegative", action="store_false",
                     help="free amplitudes (classic default)")
    fit.add_argument("--baseline-stiffness", type=float, default=None,
                     help="spline baseline: weight of its curvature (default 2; larger = stiffer)")
    fit.add_argument("--no-basis-hygiene", action="store_true",
                     help="use the basis as read: no reference-peak removal, ppm re-referencing, MM/lipids added")
    add_omit(fit, "the fit")
    fit.add_argument("--complete-basis", action="store_true",
                     help="with --basis: add mrs-tf's simulation of the brain metabolites the basis lacks (e.g. Gly, "
                          "Glc, Ala; in its units, with --fit-pulse's pulses), so that their signal is not given to "
                          "Ins and its neighbours")
    fit.add_argument("--n-jobs", type=int, default=2, help="worker processes (default 2)")
    add_preprocessing(fit)
    add_water(fit)
    fit.add_argument("--plot", default=None, help="plotly HTML of the first spectrum's fit")
    fit.add_argument("--report", default=None,
                     help="self-contained HTML report: warnings, each fit, one row per metabolite with its CRLB")
    fit.add_argument("--overwrite", action="store_true")
    qnt = sub.add_parser("quantify", help="quantify spectra with a trained network into a CSV table")
    qnt.add_argument("data", nargs="+", help="NIfTI-MRS (.nii.gz), LCModel .RAW or jMRUI text files")
    qnt.add_argument("--model", default=None,
                     help="quantifier folder (default: the shipped network that serves the scans: "
                          "saved_models/press3t_te30 for its own protocol, 123.2 MHz, TE 30 ms, 2048 points at 4 kHz, "
                          "where it is the more accurate; saved_models/press3t_short_te for any other 3 T short-TE "
                          "PRESS scan, 123.2-127.8 MHz, TE 20-40 ms, >= 1 kHz, 1024-8192 points)")
    qnt.add_argument("--out", required=True, help="output CSV: one row per spectrum")
    qnt.add_argument("--field-mhz", type=float, default=None, help="for .RAW data without a header")
    qnt.add_argument("--bandwidth-hz", type=float, default=None, help="for .RAW data without a header")
    add_water(qnt)
    qnt.add_argument("--method", choices=["network", "hybrid", "quest"], default="network",
                     help="network (default, --model); hybrid: the network's answer starts a short fit of QUEST's "
                          "model with --basis (or the model's training basis), QUEST's columns with CRLBs; quest "
                          "(--basis; the same as mrs-tf fit)")
    qnt.add_argument("--basis", default=None,
                     help="with --method quest: the basis set to fit; with hybrid: the basis the fit uses; with the "
                          "network: the basis for the report's reconstruction and --reference (must hold every "
                          "metabolite the model quantifies)")
    add_omit(qnt, "QUEST, the hybrid's fit and the cross-check")
    add_preprocessing(qnt)
    qnt.add_argument("--water-ppm", type=float, nargs=2, default=[4.2, 5.2], metavar=("LOW", "HIGH"),
                     help="residual water removed in this band by HLSVD before the network (default 4.2 5.2)")
    qnt.add_argument("--no-water-removal", action="store_true", help="give the network the data as they are")
    qnt.add_argument("--reference", dest="reference", action="store_true", default=True,
                     help="(default) frequency-reference each spectrum on its metabolite peaks first (offsets up to "
                          "0.5 ppm, column reference_offset_ppm: + = the peaks sat at higher ppm)")
    qnt.add_argument("--no-reference", dest="reference", action="store_false",
                     help="give the network the spectra at the frequency they were acquired")
    qnt.add_argument("--shift-average", type=int, default=1, metavar="N",
                     help="average the network's answer over N frequency offsets within +-0.04 ppm (default 1: one "
                          "pass; 5 is enough): a network's ratios move by 2-3 %% sd (simulated spectra) to 9 %% (real "
                          "scans) with the spectrum's exact position; the average is 2-9 %% closer to the truth on "
                          "simulations (benchmarks/RESULTS.md)")
    qnt.add_argument("--no-cross-check", dest="cross_check", action="store_false", default=True,
                     help="skip the check of the network's numbers against an in vivo fit of the same spectra with "
                          f"mrs-tf's basis (default: done for files of up to {CROSS_CHECK_MAX} spectra; a headline "
                          "ratio to tCr that differs beyond 20-25 %% is flagged fit_disagrees; 15-20 %% for a "
                          "network of train --basis, whose fit uses its own training basis)")
    qnt.add_argument("--fit-pulse", default="auto", choices=["auto", "ideal", *_pulse_names()],
                     help="protocol-general networks without --basis: the refocusing pulses of mrs-tf's basis for the "
                          f"hybrid fit and the cross-check. auto (default): {SCANNER_FIT_PULSE} (shaped, slice-"
                          "selective, voxel-averaged: closer to what a scanner's pulses do to coupled signals) for "
                          "scanner files, the pulses of the basis that made them for mrs-tf synth's files; ideal: "
                          "instantaneous pulses")
    qnt.add_argument("--resample", action="store_true",
                     help="resample data whose points/dwell differ from the model's (same field and TE)")
    qnt.add_argument("--report", default=None, help="self-contained HTML report (spectra, fits, warnings)")
    qnt.add_argument("--maps", default=None, help="MRSI: folder for one NIfTI map per metabolite (input affine)")
    qnt.add_argument("--mask", default=None, help="MRSI: NIfTI mask; voxels where it is 0 are not quantified")
    qnt.add_argument("--backend", choices=["keras", "litert"], default="keras",
                     help="run model.keras (default) or a TFLite file with the LiteRT interpreter")
    qnt.add_argument("--tflite", default="model.tflite",
                     help="with --backend litert: the .tflite file (as given if it exists, else in the model folder)")
    qnt.add_argument("--overwrite", action="store_true")


def _remove_water(d: dict, band) -> dict:
    """HLSVD removal of residual water in ``band`` (ppm) from every non-zero, finite FID of ``d``."""
    from mrs_tf.preprocess.hlsvd import remove_band

    fids = d["fids"].astype(complex, copy=True)
    for i in np.flatnonzero(np.any(fids != 0, axis=1) & np.all(np.isfinite(fids), axis=1)):
        fids[i] = remove_band(fids[i], d["dwell_s"], d["field_mhz"], tuple(band))[0]
    return {**d, "fids": fids}


def _read_scan(args, path) -> dict:
    """Read one data file with the in vivo preprocessing asked for (coil combination, aligned averaging, ECC from
    --water); ``d["steps"]`` holds the per-row table columns that report what was done."""
    from mrs_tf.io import read_data

    first = getattr(args, "restore_first_point", True)
    d = read_data(path, field_mhz=args.field_mhz, dwell_s=dwell_s_from(args), combine=args.combine, align=args.align,
                  restore_first_point=first)
    if getattr(args, "conjugate", False):
        d = {**d, "fids": np.conj(d["fids"])}
    if d.get("sequence") is None:
        print(f"mrs-tf: {path} does not name its sequence ({d.get('sequence_name')!r} in its header; LCModel .RAW "
              f"and jMRUI text files carry none): it cannot be checked against the model's or the basis's, and a scan "
              f"of another sequence gets wrong numbers that look plausible (sLASER TE 30 read by the PRESS network: "
              f"Ins/tCr +22 %); column sequence = unknown", file=sys.stderr)
    pre = d.get("preprocessing", {})
    n = len(d["fids"])
    steps = {"coils_combined": np.full(n, pre.get("coils", 1)), "transients_averaged": np.full(n, pre.get(
        "transients", 1)), "align_max_hz": np.full(n, pre.get("align_max_hz", np.nan)),
        "first_point_restored": np.full(n, int(bool(pre.get("first_point_restored", False)))),
        "sequence": np.full(n, d.get("sequence") or "unknown", dtype=object)}
    ecc = bool(args.water) if args.ecc is None else bool(args.ecc)
    steps["ecc"] = np.full(n, int(ecc))
    if ecc:
        if not args.water:
            raise MRSError("--ecc needs the water reference: --water FILE")
        from mrs_tf.preprocess.spectra import eddy_current_correction, singlet_shape
        from mrs_tf.fitting.water import check_water_protocol

        water = read_data(args.water, field_mhz=args.field_mhz, dwell_s=dwell_s_from(args), combine=True, role="water",
                          restore_first_point=first)
        if getattr(args, "conjugate", False):
            water = {**water, "fids": np.conj(water["fids"])}
        check_water_protocol(water, d)
        d["water"] = water  # read once: the water scaling uses it too
        if len(water["fids"]) not in (1, n):
            raise MRSError(f"{args.water}: {len(water['fids'])} water FIDs for {n} spectra")
        pick = np.minimum(np.arange(n), len(water["fids"]) - 1)  # each spectrum's water FID
        d = {**d, "fids": np.concatenate([eddy_current_correction(d["fids"][i:i + 1], water["fids"][pick[i]])
                                          for i in range(n)])}
        # the water line whose phase ECC puts on the metabolites: its width and asymmetry, for the user to judge the
        # correction by (NaN without ECC)
        width, skew = singlet_shape(water["fids"], water["dwell_s"], water["field_mhz"], ppm=(4.2, 5.1))
        steps["water_fwhm_hz"], steps["water_asymmetry"] = width[pick], skew[pick]
    else:
        steps["water_fwhm_hz"], steps["water_asymmetry"] = np.full(n, np.nan), np.full(n, np.nan)
    d["steps"] = steps
    return d


def _load_fit_basis(path, scans, way_out: str = "", omit=None):
    """The basis file ``path`` read for fitting ``scans`` (``(data path, data dict)`` pairs; the first's field): refused
    when its echo time differs from a scan's by more than 0.5 ms or its sequence from a scan's
    (:func:`~mrs_tf.physics.protocols.basis_mismatch`, each with its way out; ``way_out``: one more), the signals
    ``omit`` left out (said on stderr), missing brain signals warned about."""
    from mrs_tf.physics.basis import BasisSet
    from mrs_tf.physics.protocols import basis_mismatch

    basis = BasisSet.load(path, field_mhz=scans[0][1]["field_mhz"], unknown="keep")
    if omit:
        basis = basis.without(omit)
        print(f"mrs-tf: basis: left out {basis.protocol['omitted']}", file=sys.stderr)
    for data_path, d in scans:
        problems = basis_mismatch(basis.protocol, d)
        if problems:
            if way_out:
                problems.append(way_out)
            raise ProtocolError(f"basis {path} does not suit {data_path}: {'; '.join(problems)}")
    _warn_missing_metabolites(basis, path)
    return basis


def _own_basis(args, path, d):
    """``mrs-tf fit`` without ``--basis``: mrs-tf's basis (20 metabolites + MM) for the scan's field and echo time,
    at its points and dwell time, with the refocusing pulses of ``--fit-pulse`` (:func:`fit_pulse_for`); only for
    the 3 T short-TE PRESS space (:data:`~mrs_tf.physics.protocols.SHORT_TE_PRESS_3T`), else the way out."""
    from mrs_tf.core.errors import ProtocolError
    from mrs_tf.physics.protocols import protocol_basis

    from mrs_tf.physics.protocols import SEQUENCE_LABELS
    from mrs_tf.quantify.protocol import SEQUENCE_EFFECT

    if d.get("sequence") not in (None, "press"):
        raise ProtocolError(f"{path}: a {SEQUENCE_LABELS[d['sequence']]} scan ({d.get('sequence_name')!r} in its "
                            f"header), and mrs-tf's own basis is PRESS ({SEQUENCE_EFFECT}): give a basis for this "
                            f"sequence (--basis; mrs-tf basis simulate --sequence {d['sequence']} --field-mhz ... "
                            f"--te-ms ... --out basis.BASIS writes one)")
    te = d.get("te_ms") if d.get("te_ms") is not None else getattr(args, "te_ms", None)
    pulse = fit_pulse_for(getattr(args, "fit_pulse", "auto"), d)
    try:
        basis = protocol_basis(d["field_mhz"], te, n_points=d["fids"].shape[1], dwell_s=d["dwell_s"],
                               refocusing=pulse)
    except ProtocolError as exc:
        raise ProtocolError(f"{path}: no --basis, and mrs-tf's own basis covers 3 T short-TE PRESS only: {exc}; give "
                            f"a basis for this protocol (--basis, or mrs-tf basis simulate ... --out basis.BASIS)"
                            ) from None
    print(f"{path}: fitted with mrs-tf's basis for {d['field_mhz']:.2f} MHz, TE {te:g} ms ({pulse} refocusing pulses; "
          f"--basis for your own)", file=sys.stderr)
    return basis


def _warn_missing_metabolites(basis, source) -> None:
    missing = [n for n in _EXPECTED if n not in basis.names]
    for name in missing:
        print(f"mrs-tf: warning: {source} has no {name}: its signal goes to its neighbours ({_EXPECTED[name]}), "
              f"which come out too high", file=sys.stderr)


#: frequency referencing looks for the metabolite peaks within +-SEARCH_PPM of where they belong (ppm)
SEARCH_PPM = REFERENCE_SEARCH_PPM


def offset_flags(offsets_ppm, corrected: bool, training_ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """``status`` and ``message`` per spectrum of the network path from the frequency offset measured on the
    metabolite peaks (ppm, NaN where not measured). Corrected (``--reference``): an offset at the edge of the search
    (within 10 % of +-SEARCH_PPM) may be a wrong match, ``offset_at_search_limit``. Not corrected: an offset beyond
    the network's training range biases every number (+0.3 ppm: NAA -19 %), ``offset_out_of_range``."""
    off = np.asarray(offsets_ppm, float)
    status = np.full(len(off), "ok", dtype=object)
    message = np.full(len(off), "", dtype=object)
    for i, v in enumerate(off):
        if not np.isfinite(v):
            continue
        if corrected and abs(v) >= 0.9 * SEARCH_PPM:
            status[i] = "offset_at_search_limit"
            message[i] = (f"frequency offset {v:+.2f} ppm at the edge of the +-{SEARCH_PPM:g} ppm search: the "
                          f"referencing may have matched the wrong peaks; check the spectrum")
        elif not corrected and abs(v) > training_ppm:
            status[i] = "offset_out_of_range"
            message[i] = (f"frequency offset {v:+.2f} ppm beyond the network's training range (+-{training_ppm:g} "
                          f"ppm): its numbers are biased; quantify without --no-reference")
    return status, message


def _warn_rows(table, rows, what: str, prefix: str = "") -> None:
    """The first five of ``rows`` on stderr with their message, then how many more (the status column has all)."""
    for i in rows[:5]:
        print(f"mrs-tf: warning: {table['spectrum'][i]}: {prefix}{table['message'][i]}", file=sys.stderr)
    if len(rows) > 5:
        print(f"mrs-tf: warning: {len(rows) - 5} more {what} (status column)", file=sys.stderr)


def _warn_flagged(table) -> None:
    """The network's flagged spectra on stderr."""
    status = np.asarray(table["status"])
    _warn_rows(table, np.flatnonzero((status != "ok") & (status != "not_quantified")), "flagged spectra")


def _warn_poor_fits(table) -> None:
    _warn_rows(table, np.flatnonzero(np.asarray(table["status"]) == "poor_fit"), "poor fits", "poor fit: ")


def _fit(args) -> None:
    from mrs_tf.fitting import quest
    from mrs_tf.core.table import ResultTable

    refuse_existing(args, args.out, args.plot, getattr(args, "report", None))
    omit = omitted(args)
    if args.water and len(args.data) > 1:
        raise MRSError("--water scales one data file: run one fit per file with its own water reference")
    options = fit_options(args)
    datasets = [_read_scan(args, p) for p in args.data]
    first = datasets[0]
    for path, d in zip(args.data[1:], datasets[1:]):
        if d["fids"].shape[1] != first["fids"].shape[1] or abs(d["dwell_s"] - first["dwell_s"]) > 1e-9:
            raise MRSError(f"{path}: points/dwell differ from {args.data[0]}; fit them in separate runs")
    if args.basis is None:
        basis = _own_basis(args, args.data[0], first)
    else:
        basis = _load_fit_basis(args.basis, [(args.data[0], first)], omit=omit)
    from mrs_tf.fitting.basis_prep import prepare_basis

    hygiene = not args.no_basis_hygiene  # without it, only the resampling to the data
    complete = bool(getattr(args, "complete_basis", False)) and args.basis is not None
    pulse = fit_pulse_for(getattr(args, "fit_pulse", "auto"), first) if complete else None
    basis = prepare_basis(basis, n_points=first["fids"].shape[1], dwell_s=first["dwell_s"],
                          remove_references=hygiene, reference=hygiene, add_mm=hygiene, complete=complete,
                          refocusing_pulse=pulse, free_mm=hygiene).basis
    from mrs_tf.fitting.water import basis_amplitude_per_proton

    per_proton = basis_norm(args, lambda: basis_amplitude_per_proton(basis))  # before the fits: fail early
    fids = np.concatenate([d["fids"] for d in datasets])
    labels = [lab for d in datasets for lab in d["labels"]]
    offsets = np.full(len(fids), np.nan)
    if options.water_ppm is not None:
        # the residual-water band is in ppm: on a spectrum whose peaks sit off their ppm it would cut metabolite
        # signal (+0.3 ppm: Ins/tCr of a volunteer 0.38 instead of 0.83, status ok); such spectra are referenced on
        # their metabolite peaks first, as mrs-tf quantify does
        from mrs_tf.preprocess.spectra import frequency_reference

        # the offset measured with the water removed where it was acquired (else water dominates the match); the
        # fit then removes it again, from the referenced data
        dry = _remove_water({**first, "fids": fids}, options.water_ppm)["fids"]
        _, shifts = frequency_reference(dry, basis, search_ppm=SEARCH_PPM)
        offsets = -shifts / first["field_mhz"]
        moved = np.abs(offsets) > 0.05
        t = np.arange(fids.shape[1]) * first["dwell_s"]
        turn = np.exp(-2j * np.pi * shifts[:, None] * t[None, :])
        fids = np.where(moved[:, None], fids * turn, fids)
        dry = np.where(moved[:, None], dry * turn, dry)
    else:
        dry = fids
    table = quest.fit(fids, basis, n_jobs=args.n_jobs, options=options, dwell_s=first["dwell_s"],
                      field_mhz=first["field_mhz"], check_inputs=False)  # flagged below, with the offsets
    _flag_fit_inputs(table, dry, basis, offsets, options.shift_reach_ppm(basis.field_mhz))
    table = ResultTable({"spectrum": np.array(labels, dtype=object), **table, "reference_offset_ppm": offsets})
    for key in first["steps"]:
        table[key] = np.concatenate([d["steps"][key] for d in datasets])
    table["water_removed_ppm"] = np.array([("%g-%g" % tuple(options.water_ppm)) if options.water_ppm else ""]
                                          * len(labels), dtype=object)
    from mrs_tf.fitting.crlb import combination_rows

    names = list(basis.names) + list(combination_rows(basis.names))
    water_scale(args, table, names, {**first, "fids": fids}, basis.protocol.get("te_ms"), per_proton)
    table.to_csv(args.out, overwrite=args.overwrite)
    counts = {s: int(np.sum(table["status"] == s)) for s in dict.fromkeys(table["status"])}
    print(f"wrote {args.out}: {spectra_count(len(fids))}, status {counts}")
    _warn_poor_fits(table)
    flagged = np.isin(np.asarray(table["status"]), ["lipid_contamination", "offset_at_search_limit",
                                                    "offset_out_of_range", "broad_lines", "no_metabolite_pattern",
                                                    "implausible_mM"])
    _warn_rows(table, np.flatnonzero(flagged), "flagged spectra")
    if args.plot:
        write_plot(quest.fit_one(fids[0], basis, options).figure(title=f"QUEST fit of {labels[0]}"), args.plot,
                    args.overwrite)
    if getattr(args, "report", None):
        from mrs_tf.reporting.report import fit_report

        fit_report(args.report, table, fids, labels, basis, options, overwrite=args.overwrite)
        print(f"wrote {args.report}")


def _flag_fit_inputs(table, dry, basis, offsets, reach_ppm: float) -> None:
    """Status and message (in place) of the spectra of a fit whose numbers cannot be trusted whatever they look like,
    from :func:`~mrs_tf.preprocess.spectra.input_scores` on ``dry`` (the FIDs as fitted, residual water removed):
    ``lipid_contamination`` (the 1.3 ppm band taller than :data:`~mrs_tf.quantify.tables.LIPID_LIMIT` times NAA's: no
    lipid model of a fit holds lipids that tall, and the numbers look plausible: ``ok`` on 93 % of such spectra),
    ``offset_at_search_limit`` (``offsets``, ppm, at the edge of the referencing's search: the peaks matched may be the
    wrong ones; a Philips water reference given as the data was moved by +0.497 ppm and fitted ``ok``),
    ``broad_lines`` (a poor shim), ``offset_out_of_range`` (peaks still further from the basis's than the fit's
    shift reaches, ``reach_ppm``),
    ``no_metabolite_pattern`` (:func:`~mrs_tf.preprocess.spectra.lacks_pattern`). A basis without NAA is not
    scored."""
    from mrs_tf.core.table import status_columns
    from mrs_tf.preprocess.input_flags import flag_fit_inputs, set_flag

    flag_fit_inputs(table, dry, basis, reach_ppm)  # lipids, offset, no pattern (a basis without NAA: not scored)
    status, message = status_columns(table, len(dry))
    edge_status, edge_message = offset_flags(offsets, True, 0.0)
    for i in np.flatnonzero(edge_status != "ok"):
        set_flag(status, message, i, edge_status[i], edge_message[i])
    table["status"], table["message"] = status, message


def _quantify(args) -> None:
    from mrs_tf.quantify.quantifier import Quantifier
    from mrs_tf.core.table import ResultTable

    refuse_existing(args, args.out)
    omit = omitted(args)
    if args.water and len(args.data) > 1:  # said before any file is read or the network loads
        raise MRSError("--water scales one data file: run one quantify per file with its own water reference")
    if args.method == "quest":
        if not args.basis:
            raise MRSError("--method quest needs --basis BASIS")
        flags = (("--maps", args.maps), ("--mask", args.mask), ("--resample", args.resample),
                 ("--backend litert", args.backend != "keras"))
        unsupported = [flag for flag, on in flags if on]
        if unsupported:
            raise MRSError(f"{', '.join(unsupported)} apply to the network; with --method quest use mrs-tf fit's "
                           f"options (--preset, --water-ppm, --ppm-range, --background)")
        fit_args = _fit_args(["fit", "--basis", args.basis, *args.data, "--out", args.out])
        fit_args.report = args.report  # QUEST's report: warnings, the fits, the metabolites' rows
        for key in ("water", "water_conc_mm", "metab_relax_factor", "tr_ms", "te_ms", "tissue", "overwrite",
                    "field_mhz", "bandwidth_hz", "basis_amplitude_per_proton", "combine", "align", "ecc",
                    "no_water_removal", "omit"):
            setattr(fit_args, key, getattr(args, key))
        fit_args.water_ppm = args.water_ppm
        return _fit(fit_args)
    if (args.maps or args.mask) and len(args.data) != 1:
        raise MRSError("--maps/--mask take one MRSI file")
    if args.shift_average < 1:
        raise MRSError(f"--shift-average must be 1 or more (1: one pass of the network), got {args.shift_average}")
    refuse_existing(args, args.maps, args.report)
    # every file read and checked against the model's protocol before TensorFlow and the network load
    scans, mask_rows = [], None
    for path in args.data:
        d = _read_scan(args, path)
        if d.get("te_ms") is None and args.te_ms is not None:  # formats without the echo time (.RAW, jMRUI)
            d["te_ms"] = args.te_ms
        scans.append((path, d))
        # nothing to quantify (all zero or NaN, or masked out) and a mask that does not fit: said before the network loads
        keep = np.any(d["fids"] != 0, axis=1) & np.all(np.isfinite(d["fids"]), axis=1)
        if args.mask:  # one MRSI file (checked above): its mask rows, read once
            mask_rows = _mask_rows(args.mask, d)
            keep &= mask_rows
        if not keep.any():
            raise MRSError(f"{path}: no voxel to quantify (all zero, NaN or masked out)")
    if args.model is None:
        args.model = choose_model(scans, args.resample)
    meta_only = Quantifier.read_meta(args.model)
    for path, d in scans:
        mismatch = meta_only.protocol_mismatch(d["fids"].shape[1], d["dwell_s"], d["field_mhz"], d.get("te_ms"),
                                               resample=args.resample, sequence=d.get("sequence"))
        if mismatch:
            from mrs_tf.core.errors import ProtocolError

            raise ProtocolError(f"{path}: model {args.model}: {mismatch}")
    # a general network with --basis: the scan's own basis is the hybrid's and the cross-check's (prepared per scan:
    # resampled, hygiene, MM/lipids added; it may lack signals the network quantifies), not the network's
    fit_basis = None
    if args.basis and meta_only.general and args.method in ("network", "hybrid"):
        fit_basis = _load_fit_basis(args.basis, scans, "or give no --basis: mrs-tf's is simulated for the scan",
                                    omit=omit)
    user_basis = args.basis
    if omit and fit_basis is None:  # the basis with the signals left out, for QUEST or the reconstruction
        user_basis = _load_fit_basis(args.basis, scans, omit=omit)
    q = Quantifier.load(args.model, backend=args.backend, tflite=args.tflite,
                        basis=None if fit_basis is not None else user_basis)
    if (args.report or args.reference) and not q.general:
        q.basis()  # a training basis file that changed since training is refused now, before anything is written
    per_proton = basis_norm(args, q.amplitude_per_proton)
    from mrs_tf.quantify import crosscheck

    rows, labels, voxels, all_fids = [], [], [], []
    for path, d in scans:
        if args.resample and not q.general and (d["fids"].shape[1] != q.n_points or
                                                abs(d["dwell_s"] - q.dwell_s) > 1e-9):
            from mrs_tf.preprocess.spectra import resample_fids

            print(f"{path}: resampling {d['fids'].shape[1]} points at {1 / d['dwell_s']:g} Hz to {q.n_points} at "
                  f"{1 / q.dwell_s:g} Hz")
            d = {**d, "fids": resample_fids(d["fids"], d["dwell_s"], q.dwell_s, q.n_points), "dwell_s": q.dwell_s}
        as_read = d
        if not args.no_water_removal:
            d = _remove_water(d, args.water_ppm)
        d["steps"]["water_removed_ppm"] = np.array([("" if args.no_water_removal else "%g-%g" % tuple(
            args.water_ppm))] * len(d["fids"]), dtype=object)
        finite = np.all(np.isfinite(d["fids"]), axis=1)  # a NaN sample spoils its voxel, not the file
        keep = np.any(d["fids"] != 0, axis=1) & finite  # MRSI: voxels outside the excitation hold zeros
        basis = q.basis_for(d["fids"].shape[1], d["dwell_s"], d["field_mhz"], d.get("te_ms"))  # this scan's
        _refuse_mirrored(path, d["fids"][keep], basis)
        offsets = np.full(len(keep), np.nan)
        from mrs_tf.preprocess.spectra import frequency_reference

        fixed, shifts = frequency_reference(d["fids"][keep], basis, search_ppm=SEARCH_PPM)
        offsets[keep] = -shifts / d["field_mhz"]  # ppm where the peaks sat, + = higher ppm (as shift_ppm)
        if args.reference:
            d = {**d, "fids": d["fids"].copy()}
            d["fids"][keep] = fixed
            # the water band was cut where the spectrum sat: shifted by 0.3 ppm, Cr's 3.92 ppm CH2 lay inside it
            # (Cr+PCr -28 %); redo the removal on the referenced data, where water is back at 4.65 ppm
            moved = np.flatnonzero(keep)[np.abs(offsets[keep]) > 0.05]
            if len(moved) and not args.no_water_removal:
                hz = np.zeros(len(keep))
                hz[keep] = shifts
                t = np.arange(d["fids"].shape[1]) * d["dwell_s"]
                again = as_read["fids"][moved] * np.exp(-2j * np.pi * hz[moved, None] * t[None, :])
                d["fids"][moved] = _remove_water({**d, "fids": again}, args.water_ppm)["fids"]
        if mask_rows is not None:
            keep &= mask_rows
        if not keep.any():  # (water removal can spoil a voxel too)
            raise MRSError(f"{path}: no voxel to quantify (all zero, NaN or masked out)")
        # hybrid on scanner data: the in vivo model (spline baseline, 0.2-4.0 ppm; QUEST's default time-domain model
        # put Ins/tCr at 0.14 on a Philips volunteer, status ok)
        options = crosscheck.fit_options() if args.method == "hybrid" else None
        fit_pulse = fit_pulse_for(args.fit_pulse, d)
        scan_basis = None
        if fit_basis is not None:
            from mrs_tf.fitting.basis_prep import prepare_basis

            scan_basis = prepare_basis(fit_basis, n_points=d["fids"].shape[1], dwell_s=d["dwell_s"]).basis
        # the fits' basis (hybrid, cross-check, the report's reconstruction): the scan's own, else mrs-tf's for the
        # protocol with free MM components in place of its one MM signal, which lipid lines drive into Cr, Ins, Glu
        fitted_basis = q.cross_check_basis(d["fids"].shape[1], d["dwell_s"], d["field_mhz"], d.get("te_ms"), fit_pulse,
                                           scan_basis)
        try:
            part = q.quantify(d["fids"][keep], dwell_s=d["dwell_s"], field_mhz=d["field_mhz"], te_ms=d.get("te_ms"),
                              method=args.method, options=options,
                              basis=fitted_basis if args.method == "hybrid" else scan_basis, fit_pulse=fit_pulse,
                              shift_average=args.shift_average)
        except MRSError as exc:  # name the file: with several inputs, "data have 1021 points" alone is a riddle
            raise type(exc)(f"{path}: {exc}") from None
        full = {k: _padded(v, keep) for k, v in part.items()}
        full["reference_offset_ppm" if args.reference else "frequency_offset_ppm"] = offsets
        if args.method == "network":
            own = full["status"].copy(), full["message"].copy()  # the network's table's flags (e.g. mirrored)
            full["status"], full["message"] = offset_flags(offsets, args.reference, q.training_shift_ppm())
            flagged = keep & (own[0] != "ok") & (full["status"] == "ok")  # the file's own reasons first
            full["status"][flagged], full["message"][flagged] = own[0][flagged], own[1][flagged]
            full["status"][~keep] = "not_quantified"
            full["status"][~finite] = "nan_input"
            full["message"][~finite] = "the FID contains NaN or Inf"
            if args.cross_check and keep.sum() <= CROSS_CHECK_MAX:
                fit = q.quantify(d["fids"][keep], dwell_s=d["dwell_s"], field_mhz=d["field_mhz"],
                                 te_ms=d.get("te_ms"), method="hybrid", options=crosscheck.fit_options(),
                                 basis=fitted_basis,
                                 fit_pulse=fit_pulse, shift_average=args.shift_average)
                checked = crosscheck.cross_check(ResultTable({k: v[keep] for k, v in full.items()}), fit,
                                                 basis_label=q.fit_basis_label(
                                                     Path(args.basis).name if scan_basis is not None else None),
                                                 own_basis=q.fits_with_training_basis(scan_basis is not None))
                for k, v in checked.items():  # the kept rows' values; the others keep theirs (not_quantified)
                    if k in full:
                        full[k][keep] = v
                    else:
                        full[k] = _padded(v, keep)
            elif args.cross_check:
                print(f"{path}: {int(keep.sum())} spectra: the network's numbers are not cross-checked by a fit "
                      f"(done for up to {CROSS_CHECK_MAX}; mrs-tf quantify --method hybrid fits every one)",
                      file=sys.stderr)
        full.update(d["steps"])
        rows.append(full)
        all_fids.append(d["fids"])
        labels += d["labels"]
        voxels.append(d.get("voxels", np.full((len(keep), 3), -1)))
    table = ResultTable({"spectrum": np.array(labels, dtype=object)})
    vox = np.concatenate(voxels)
    if d.get("grid") and np.prod(d["grid"]) > 1:
        table["x"], table["y"], table["z"] = vox[:, 0], vox[:, 1], vox[:, 2]
    for key in rows[0]:
        if key != "index":
            table[key] = np.concatenate([r[key] for r in rows])
    if args.water:
        from mrs_tf.fitting.crlb import combination_rows

        if len(args.data) > 1:
            raise MRSError("--water scales one data file: run one quantify per file with its own water reference")
        te = d.get("te_ms") if q.general else q.meta.get("protocol", {}).get("te_ms")  # the basis's echo time
        water_scale(args, table, q.names + list(combination_rows(q.names)), d, te, per_proton)
    table.to_csv(args.out, overwrite=args.overwrite)
    done = (int(np.sum(~np.isin(np.asarray(table["status"]), ["not_quantified", "nan_input"]))) if "status" in table
            else len(labels))
    skipped = f" ({len(labels) - done} not quantified: status column)" if done < len(labels) else ""
    print(f"wrote {args.out}: {spectra_count(done)} quantified{skipped}" if skipped else
          f"wrote {args.out}: {spectra_count(len(labels))}")
    if args.method == "network":
        _warn_flagged(table)
    if args.maps:
        written = _write_maps(args.maps, table, q.names + ["NAA+NAAG", "Cr+PCr", "GPC+PCh", "Glu+Gln"], d,
                              args.overwrite)
        print(f"wrote {len(written)} maps to {args.maps}")
    if args.report:
        from mrs_tf.reporting.report import scan_report

        from mrs_tf.fitting.quest import QuestOptions

        # the reconstruction's fit: the in vivo settings, on the FIDs the network saw (water already removed)
        n_fig = min(len(labels), 8)
        print(f"mrs-tf: report: fitting {n_fig} spectr{'um' if n_fig == 1 else 'a'} for the figures ...",
              file=sys.stderr, flush=True)
        # the hybrid's own basis (its rows are the table's columns); the network's: its basis
        shown = fitted_basis if args.method == "hybrid" and fitted_basis is not None else basis
        scan_report(args.report, table, np.concatenate(all_fids), labels, q, shown, overwrite=args.overwrite,
                    fit_options=QuestOptions.in_vivo(water_ppm=None))
        print(f"wrote {args.report}")


def _padded(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A column for every row of a file from ``values`` of its ``keep`` rows: "" (text) or NaN in the others."""
    out = np.full(len(keep), "" if values.dtype == object else np.nan,
                  dtype=values.dtype if values.dtype == object else float)
    out[keep] = values
    return out


#: the shipped networks ``mrs-tf quantify`` chooses from, in order of preference where both serve a file that
#: mrs-tf simulated itself (:func:`made_by_mrs_tf`)
SHIPPED_MODELS = ("saved_models/press3t_te30", "saved_models/press3t_short_te")
#: the order for scanner files: press3t_te30 reads its spectrum up to 4.2 ppm, where scans carry the water
#: suppression's and the water removal's traces (a line of 0.2 NAA heights at 4.1 ppm moved its Ins/tCr by 41-47 %,
#: tNAA by 23-24 %; press3t_short_te's by <= 2 %: it reads up to 4.0 ppm)
SCANNER_MODELS = ("saved_models/press3t_short_te", "saved_models/press3t_te30")


def choose_model(scans, resample: bool = False) -> str:
    """The first shipped network whose protocol serves every scan (``(path, data dict)`` pairs), said on stderr:
    of :data:`SHIPPED_MODELS` where every file is one of ``mrs-tf synth`` from mrs-tf's basis, else of
    :data:`SCANNER_MODELS`; a :class:`ProtocolError` naming each model's mismatches when none does."""
    from mrs_tf.core.errors import ProtocolError
    from mrs_tf.quantify.quantifier import Quantifier

    simulated = all(made_by_mrs_tf(d) for _, d in scans)
    order = SHIPPED_MODELS if simulated else SCANNER_MODELS
    problems = {}
    for model in order:
        meta = Quantifier.read_meta(model)
        for path, d in scans:
            mismatch = meta.protocol_mismatch(d["fids"].shape[1], d["dwell_s"], d["field_mhz"], d.get("te_ms"),
                                              resample=resample)
            if mismatch:
                problems[model] = (path, mismatch)
                break
        else:
            if model != order[0]:
                print(f"mrs-tf: model {model} ({meta.protocol_text()}; {order[0]} does not serve "
                      f"{problems[order[0]][0]})", file=sys.stderr)
            elif not simulated:
                print(f"mrs-tf: model {model} ({meta.protocol_text()}; for scanner files: it reads the spectrum up "
                      f"to 4.0 ppm, where the water suppression and its removal leave traces)", file=sys.stderr)
            return model
    raise ProtocolError("no shipped network serves these scans: " + "; ".join(
        f"{model}: {path}: {text}" for model, (path, text) in problems.items()) + "; train one for your protocol: "
        "mrs-tf train --basis YOUR_BASIS --protocol-from YOUR_SCAN")


def _refuse_mirrored(path, fids, basis) -> None:
    """MRSError when the spectra match the basis far better conjugated than as they are (the file's frequency sign
    convention is the other one): quantified as they are, every number would be nonsense (NAA -90 %)."""
    from mrs_tf.preprocess.spectra import looks_mirrored, mirror_scores

    if not len(fids):
        return
    as_is, conj = mirror_scores(fids, basis)
    mirrored = looks_mirrored(as_is, conj)
    if mirrored.any():
        raise MRSError(f"{path}: {int(mirrored.sum())} of {len(fids)} spectra look frequency-mirrored (their magnitude "
                       f"spectrum matches the basis {np.median(conj[mirrored]):.2f} conjugated against "
                       f"{np.median(as_is[mirrored]):.2f} as they are: peaks at 2 x 4.65 ppm - their place, NAA near "
                       f"7.3 ppm); the file uses the other frequency sign convention: run again with --conjugate (unless it "
                       f"is a water reference, unsuppressed water, given as the data: that goes to --water)")


def _mask_rows(mask_path, d) -> np.ndarray:
    import nibabel as nib

    try:
        mask = np.asarray(nib.load(str(mask_path)).get_fdata())
    except Exception as exc:
        raise MRSError(f"{mask_path}: cannot read the mask ({type(exc).__name__}: {exc})") from None
    mask = mask.reshape(mask.shape[:3]) if mask.ndim > 3 and mask.size == np.prod(mask.shape[:3]) else mask
    if mask.shape[:3] != tuple(d.get("grid", ())):
        raise MRSError(f"{mask_path}: mask grid {mask.shape[:3]} differs from the data grid {d.get('grid')}")
    v = d["voxels"]
    return mask[v[:, 0], v[:, 1], v[:, 2]] != 0


def _write_maps(folder, table, names, d, overwrite: bool = False) -> list:
    """One float32 NIfTI per column ``name`` (and ``name_mM`` when present) on the data's grid and affine; NaN
    where no voxel was quantified. Written into a new folder, renamed into place at the end."""
    import nibabel as nib

    from mrs_tf.core.files import atomic_output, safe_filename

    written = []
    for name in names:
        safe_filename(name, "metabolite name")
    with atomic_output(folder, overwrite=overwrite, directory=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        v = d["voxels"]
        for name in names:
            for col in (name, f"{name}_mM"):
                if col not in table:
                    continue
                vol = np.full(d["grid"], np.nan, np.float32)
                vol[v[:, 0], v[:, 1], v[:, 2]] = np.asarray(table[col], float)  # the last row per voxel wins
                nib.save(nib.Nifti1Image(vol, d["affine"]), str(Path(tmp) / f"{col}.nii.gz"))
                written.append(col)
    return written


def _fit_args(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed as ``mrs-tf fit`` would (``quantify --method quest`` runs the fit command)."""
    parser = argparse.ArgumentParser(prog="mrs-tf")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)

"""Command line: ``mrs-tf basis simulate|info``, ``synth``, ``fit``, ``train``, ``tune``,
``quantify``, ``evaluate``, ``export``, ``data build``.
Parses arguments, calls the library."""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import MRSError


def _add_protocol(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sequence", default="press", help="press (default), steam, slaser, spin_echo or fid")
    p.add_argument("--field-mhz", type=float, default=123.2, help="proton frequency in MHz (default 123.2 = 3 T)")
    p.add_argument("--te-ms", type=float, default=None, help="echo time (ms)")
    p.add_argument("--te1-ms", type=float, default=None, help="PRESS first sub-echo time (ms)")
    p.add_argument("--te2-ms", type=float, default=None, help="PRESS second sub-echo time (ms)")
    p.add_argument("--tm-ms", type=float, default=None, help="STEAM mixing time (ms)")
    p.add_argument("--n-refocus", type=int, default=4, help="semi-LASER refocusing pulses (default 4)")
    p.add_argument("--points", type=int, default=2048, help="complex points (default 2048)")
    p.add_argument("--bandwidth-hz", type=float, default=4000.0, help="spectral width in Hz (default 4000)")


def _add_water(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("water scaling (adds <metabolite>_mM columns; see mrs_tf.water)")
    g.add_argument("--water", default=None, help="unsuppressed water reference (same protocol as the data)")
    g.add_argument("--water-conc-mm", type=float, default=None,
                   help="relaxation- and tissue-corrected water concentration (mM); overrides the tissue model")
    g.add_argument("--metab-relax-factor", type=float, default=None,
                   help="metabolite relaxation correction (>= 1); overrides T1/T2 of the metabolites")
    g.add_argument("--tr-ms", type=float, default=2000.0, help="repetition time for the relaxation model")
    g.add_argument("--te-ms", type=float, default=None, help="echo time (default: the file's or the protocol's)")
    g.add_argument("--tissue", type=float, nargs=3, default=None, metavar=("GM", "WM", "CSF"),
                   help="volume fractions of the voxel (default 0.6 0.4 0)")
    g.add_argument("--basis-amplitude-per-proton", type=float, default=None,
                   help="the basis's FID amplitude at t = 0 per proton per unit concentration (default: measured "
                        "on its Cr/PCr/NAA CH3 singlets; 1 for mrs-tf's basis)")


def _basis_norm(args, measure) -> float | None:
    """With --water: the basis's FID amplitude per proton per unit concentration (--basis-amplitude-per-proton, or
    ``measure()`` -> (value, per-metabolite dict)); printed, so that a wrong normalisation is visible."""
    if not args.water:
        return None
    if args.basis_amplitude_per_proton is not None:
        if not args.basis_amplitude_per_proton > 0:
            raise MRSError(f"--basis-amplitude-per-proton must be > 0, got {args.basis_amplitude_per_proton}")
        return float(args.basis_amplitude_per_proton)
    value, parts = measure()
    detail = ", ".join(f"{k} {v:.4g}" for k, v in parts.items())
    print(f"basis normalisation: {value:.4g} FID units per proton per unit concentration ({detail})")
    if max(parts.values()) > 1.1 * min(parts.values()):
        print(f"mrs-tf: warning: the basis's reference singlets disagree ({detail}): its metabolites seem normalised "
              f"one by one, so absolute concentrations are only as right as that normalisation", file=sys.stderr)
    return value


def _water_scale(args, table, names, data: dict, te_ms: float | None, per_proton: float = 1.0) -> None:
    """Add <name>_mM columns when --water is given (one water FID for all spectra, or one per spectrum);
    ``per_proton``: the basis normalisation of :func:`_basis_norm`."""
    if not args.water:
        return
    from mrs_tf.io import read_data
    from mrs_tf.fitting.water import WaterScaling, check_water_protocol, scale_table, water_amplitude

    water = data.get("water") or read_data(args.water, field_mhz=args.field_mhz, dwell_s=_dwell(args), combine=True,
                                           role="water")  # what the data got, no more
    check_water_protocol(water, data)
    n = len(data["fids"])
    if len(water["fids"]) not in (1, n):
        raise MRSError(f"{args.water} holds {len(water['fids'])} water FIDs for {n} spectra; give one, or one per "
                       f"spectrum")
    amp = water_amplitude(water["fids"], water["dwell_s"], water["field_mhz"])
    te = args.te_ms if args.te_ms is not None else (data.get("te_ms") or te_ms)
    if te is None:
        raise MRSError("water scaling needs the echo time: give --te-ms")
    gm, wm, csf = args.tissue if args.tissue else (0.6, 0.4, 0.0)
    scaling = WaterScaling(te_s=te * 1e-3, tr_s=args.tr_ms * 1e-3, f_gm=gm, f_wm=wm, f_csf=csf,
                           water_conc_mm=args.water_conc_mm, metab_relax_factor=args.metab_relax_factor)
    scale_table(table, names, amp if len(amp) == n else amp[0], scaling, basis_protons=per_proton)


def _add_preprocessing(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("in vivo preprocessing (on by default; each step is reported in the table)")
    g.add_argument("--no-combine", dest="combine", action="store_false", default=True,
                   help="keep coils and transients (NIfTI-MRS DIM_COIL/DIM_DYN) as separate rows")
    g.add_argument("--combine", dest="combine", action="store_true", help="(default) combine coils, average "
                   "transients")
    g.add_argument("--no-align", dest="align", action="store_false", default=True,
                   help="average transients without frequency/phase alignment (spectral registration)")
    g.add_argument("--ecc", dest="ecc", action="store_true", default=None,
                   help="eddy-current (and zero-order phase) correction from the --water reference (Klose; the "
                        "default when --water is given)")
    g.add_argument("--no-ecc", dest="ecc", action="store_false", help="no eddy-current correction")
    g.add_argument("--conjugate", action="store_true",
                   help="the file uses the other frequency sign convention (peaks mirrored about the carrier): "
                        "conjugate the FIDs (and the --water reference) first")


def _fit_options(args):
    """QuestOptions from --preset and the flags given."""
    from mrs_tf.fitting.quest import QuestOptions

    opts = QuestOptions.in_vivo() if args.preset == "in-vivo" else QuestOptions()
    changes = {}
    if args.background:
        changes["background"] = args.background
    if args.truncate_ms is not None:
        changes["truncate_ms"] = args.truncate_ms
    if args.water_ppm:
        changes["water_ppm"] = tuple(args.water_ppm)
    if args.no_water_removal:
        changes["water_ppm"] = None
    if args.ppm_range:
        changes["ppm_range"] = tuple(sorted(args.ppm_range))
    if args.nonnegative is not None:
        changes["nonnegative"] = args.nonnegative
    if args.baseline_stiffness is not None:
        changes["baseline_stiffness"] = args.baseline_stiffness
    return opts.with_(**changes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrs-tf", description="Deep-learning quantification of 1H MRS.")
    sub = parser.add_subparsers(dest="command", required=True)
    basis = sub.add_parser("basis", help="simulate or inspect basis sets").add_subparsers(dest="action",
                                                                                          required=True)
    sim = basis.add_parser("simulate", help="simulate a basis set with the density-matrix simulator")
    _add_protocol(sim)
    sim.add_argument("--metabolites", nargs="+", default=None, help="names (default: the 20 metabolites + MM)")
    sim.add_argument("--out", required=True, help="output: .BASIS, .nii.gz, .txt (jMRUI) or a folder (FSL-MRS)")
    sim.add_argument("--plot", default=None, help="also write a plotly HTML figure of every basis spectrum")
    sim.add_argument("--overwrite", action="store_true", help="replace existing output files")
    info = basis.add_parser("info", help="list a basis set's metabolites, field, dwell and points")
    info.add_argument("path")
    info.add_argument("--field-mhz", type=float, default=None, help="for .RAW files without a header")
    info.add_argument("--bandwidth-hz", type=float, default=None, help="for .RAW files without a header")
    info.add_argument("--unknown", choices=["error", "keep", "drop"], default="keep",
                      help="names that are not mrs-tf metabolites (default: keep)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.add_argument("--plot", default=None, help="write a plotly HTML figure of every basis spectrum")
    info.add_argument("--overwrite", action="store_true")
    syn = sub.add_parser("synth", help="synthesise in vivo-like spectra with ground truth")
    syn.add_argument("--basis", default=None, help="basis file (default: simulate the default protocol)")
    syn.add_argument("--n", type=int, default=100)
    syn.add_argument("--snr", type=float, nargs="+", default=[10.0, 100.0], help="one value or LOW HIGH")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--out", required=True, help="NIfTI-MRS (.nii.gz) of shape (n, 1, 1, points)")
    syn.add_argument("--truth", default=None, help="CSV of every ground-truth parameter (default: OUT stem + .csv)")
    syn.add_argument("--plot", default=None, help="plotly HTML of the first spectra")
    syn.add_argument("--overwrite", action="store_true")
    fit = sub.add_parser("fit", help="quantify spectra (QUEST with CRLBs) into a CSV table")
    fit.add_argument("data", nargs="+", help="NIfTI-MRS (.nii.gz), LCModel .RAW or jMRUI text (.txt) files")
    fit.add_argument("--method", choices=["quest"], default="quest", help="quantification method (default quest)")
    fit.add_argument("--basis", required=True, help="basis set file (.BASIS, .nii.gz, .txt, FSL-MRS folder)")
    fit.add_argument("--out", required=True, help="output CSV: one row per spectrum")
    fit.add_argument("--field-mhz", type=float, default=None, help="for .RAW data without a header")
    fit.add_argument("--bandwidth-hz", type=float, default=None, help="for .RAW data without a header")
    fit.add_argument("--resample-basis", action="store_true",
                     help="(always done now: a basis of other points/dwell is resampled to the data)")
    fit.add_argument("--preset", choices=["in-vivo", "classic"], default="in-vivo",
                     help="in-vivo (default): residual water removed, 0.2-4.0 ppm with a spline baseline, amplitudes "
                          ">= 0; classic: QUEST's time-domain fit with HLSVD background subtraction")
    fit.add_argument("--background", choices=["subtract", "include", "truncate", "none", "spline"], default=None,
                     help="background handling (default: the preset's; spline for in-vivo, subtract for classic)")
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
    fit.add_argument("--n-jobs", type=int, default=2, help="worker processes (default 2)")
    _add_preprocessing(fit)
    _add_water(fit)
    fit.add_argument("--plot", default=None, help="plotly HTML of the first spectrum's fit")
    fit.add_argument("--overwrite", action="store_true")
    trn = sub.add_parser("train", help="train a network on spectra synthesised on the fly")
    trn.add_argument("--out", required=True, help="output folder (model.keras, quantifier.json, log.csv)")
    trn.add_argument("--config", default=None,
                     help="TrainConfig JSON (e.g. best_config.json of mrs-tf tune); flags given override it")
    trn.add_argument("--basis", default=None,
                     help="train for your own basis set (.BASIS, NIfTI-MRS, jMRUI text, FSL-MRS folder)")
    trn.add_argument("--protocol-from", default=None,
                     help="a data file whose points, dwell, field and TE the basis is matched to (with --basis)")
    trn.add_argument("--test-size", type=int, default=1024, help="fresh test spectra for metrics.json/model card")
    trn.add_argument("--model", default=None, help="seed_cnn (default), resnet_cnn or dilated_cnn")
    trn.add_argument("--model-kwargs", default=None, help='builder keywords as JSON, e.g. \'{"kernel_size": 7}\'')
    trn.add_argument("--epochs", type=int, default=None, help="default 40")
    trn.add_argument("--steps-per-epoch", type=int, default=None, help="default 200")
    trn.add_argument("--batch-size", type=int, default=None, help="default 128")
    trn.add_argument("--learning-rate", type=float, default=None, help="default 1e-3")
    trn.add_argument("--seed", type=int, default=None, help="default 0")
    trn.add_argument("--no-uncertainty", action="store_true", help="plain MSE, no sigma output")
    trn.add_argument("--tfds", default=None, help="train on mrs_brain_sim/CONFIG instead of streaming")
    trn.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    trn.add_argument("--overwrite", action="store_true", help="replace a finished model in --out")
    trn.add_argument("--strategy", choices=["mirrored", "multiworker"], default=None,
                     help="tf.distribute strategy (GPUs / several machines; multiworker reads TF_CONFIG)")
    trn.add_argument("--tensorboard", action="store_true")
    tun = sub.add_parser("tune", help="architecture search with keras-tuner (Hyperband or Bayesian optimisation)")
    tun.add_argument("--out", required=True, help="search folder (trials, best_config.json)")
    tun.add_argument("--algorithm", choices=["hyperband", "bayesian"], default="hyperband")
    tun.add_argument("--max-trials", type=int, default=20, help="bayesian: number of trials")
    tun.add_argument("--max-epochs", type=int, default=20, help="epochs per trial at most (Hyperband's budget)")
    tun.add_argument("--steps-per-epoch", type=int, default=100)
    tun.add_argument("--batch-size", type=int, default=128)
    tun.add_argument("--val-size", type=int, default=1024)
    tun.add_argument("--seed", type=int, default=0)
    tun.add_argument("--resume", action="store_true", help="continue the search in --out")
    tun.add_argument("--overwrite", action="store_true", help="discard the search in --out and start again")
    qnt = sub.add_parser("quantify", help="quantify spectra with a trained network into a CSV table")
    qnt.add_argument("data", nargs="+", help="NIfTI-MRS (.nii.gz), LCModel .RAW or jMRUI text files")
    qnt.add_argument("--model", default="saved_models/press3t_te30", help="quantifier folder")
    qnt.add_argument("--out", required=True, help="output CSV: one row per spectrum")
    qnt.add_argument("--field-mhz", type=float, default=None, help="for .RAW data without a header")
    qnt.add_argument("--bandwidth-hz", type=float, default=None, help="for .RAW data without a header")
    _add_water(qnt)
    qnt.add_argument("--method", choices=["network", "hybrid", "quest"], default="network",
                     help="network (default, --model); hybrid: the network's answer starts a short fit of QUEST's "
                          "model with --basis (or the model's training basis), QUEST's columns with CRLBs; quest "
                          "(--basis; the same as mrs-tf fit)")
    qnt.add_argument("--basis", default=None,
                     help="with --method quest: the basis set to fit; with hybrid: the basis the fit uses; with the "
                          "network: the basis for the report's reconstruction and --reference (must hold every "
                          "metabolite the model quantifies)")
    _add_preprocessing(qnt)
    qnt.add_argument("--water-ppm", type=float, nargs=2, default=[4.2, 5.2], metavar=("LOW", "HIGH"),
                     help="residual water removed in this band by HLSVD before the network (default 4.2 5.2)")
    qnt.add_argument("--no-water-removal", action="store_true", help="give the network the data as they are")
    qnt.add_argument("--reference", dest="reference", action="store_true", default=True,
                     help="(default) frequency-reference each spectrum on its metabolite peaks first (offsets up to "
                          "0.5 ppm, column reference_offset_ppm: + = the peaks sat at higher ppm)")
    qnt.add_argument("--no-reference", dest="reference", action="store_false",
                     help="give the network the spectra at the frequency they were acquired")
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
    evl = sub.add_parser("evaluate", help="network vs QUEST vs CRLB on a test set: metrics CSV and an HTML report")
    evl.add_argument("--model", default="saved_models/press3t_te30", help="quantifier folder")
    evl.add_argument("--n", type=int, default=2000, help="fresh test spectra to synthesise (default 2000)")
    evl.add_argument("--snr", type=float, nargs=2, default=[10.0, 100.0], metavar=("LOW", "HIGH"))
    evl.add_argument("--seed", type=int, default=0)
    evl.add_argument("--data", nargs="+", default=None,
                     help="instead of fresh spectra: tfds:CONFIG[:SPLIT], or data files with --truth")
    evl.add_argument("--truth", default=None, help="ground-truth CSV of --data files (mrs-tf synth writes one)")
    evl.add_argument("--report", default=None, help="self-contained HTML report")
    evl.add_argument("--out", default=None, help="metrics CSV (default: the report's name with .csv)")
    evl.add_argument("--no-quest", action="store_true", help="network only (no QUEST fits)")
    evl.add_argument("--n-jobs", type=int, default=2, help="QUEST worker processes")
    evl.add_argument("--overwrite", action="store_true")
    exp = sub.add_parser("export", help="export a trained quantifier to TFLite/LiteRT or a SavedModel")
    exp.add_argument("model", help="quantifier folder (model.keras + quantifier.json)")
    exp.add_argument("--format", choices=["tflite", "saved_model"], default="tflite")
    exp.add_argument("--quantize", choices=["none", "float16", "dynamic", "int8"], default="none",
                     help="tflite: float32 (none), float16 weights, int8 weights (dynamic), or int8 (calibrated)")
    exp.add_argument("--out", required=True, help="output .tflite file or SavedModel folder")
    exp.add_argument("--seed", type=int, default=0, help="seed of int8's representative spectra")
    exp.add_argument("--overwrite", action="store_true")
    data = sub.add_parser("data", help="TFDS data sets").add_subparsers(dest="action", required=True)
    build = data.add_parser("build", help="generate mrs_brain_sim/CONFIG offline")
    build.add_argument("config", help="e.g. tiny, press3t_te30_snr10-100, press7t_te30_snr10-100")
    build.add_argument("--data-dir", default=None, help="TFDS data dir (default: TFDS's, ~/tensorflow_datasets)")
    return parser


def _refuse_existing(args, *targets) -> None:
    """Check every output before any work, so that a refused run writes nothing."""
    for target in targets:
        if target and Path(target).exists() and not args.overwrite:
            raise MRSError(f"{target} already exists; refusing to overwrite it (use --overwrite)")
        parent = Path(target).parent if target else None
        if parent is not None and not parent.is_dir():  # found now, not after the first output was written
            raise MRSError(f"cannot write {target}: folder {parent} does not exist")


def _dwell(args) -> float | None:
    """Dwell time (s) from --bandwidth-hz, for .RAW files whose header lacks it."""
    return 1.0 / args.bandwidth_hz if args.bandwidth_hz else None


def _write_plot(fig, path, overwrite):
    from mrs_tf.reporting.plots import write_html

    write_html(fig, path, overwrite=overwrite)
    print(f"wrote {path}")


def _basis_simulate(args) -> None:
    from mrs_tf.physics.basis import simulate_basis
    from mrs_tf.reporting.plots import basis_figure

    _refuse_existing(args, args.out, args.plot)
    basis = simulate_basis(sequence=args.sequence, field_mhz=args.field_mhz, te_ms=args.te_ms, te1_ms=args.te1_ms,
                           te2_ms=args.te2_ms, tm_ms=args.tm_ms, n_refocus=args.n_refocus, n_points=args.points,
                           bandwidth_hz=args.bandwidth_hz, metabolites=args.metabolites)
    basis.save(args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {basis.n_metabolites} signals, {basis.field_mhz:g} MHz, {basis.n_points} points, "
          f"dwell {basis.dwell_s * 1e6:.1f} us")
    if args.plot:
        _write_plot(basis_figure(basis), args.plot, args.overwrite)


def _basis_info(args) -> None:
    from mrs_tf.physics.basis import BasisSet
    from mrs_tf.reporting.plots import basis_figure

    dwell = _dwell(args)  # .RAW: the missing dwell; else: resample
    basis = BasisSet.load(args.path, field_mhz=args.field_mhz, dwell_s=dwell, unknown=args.unknown)
    info = basis.summary()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(f"file:        {args.path}")
        print(f"metabolites: {len(basis.names)}: {' '.join(basis.names)}")
        print(f"field:       {basis.field_mhz:.4f} MHz ({basis.field_mhz / 42.577478:.3f} T)")
        print(f"dwell:       {basis.dwell_s:.6g} s (bandwidth {basis.bandwidth_hz:.1f} Hz)")
        print(f"points:      {basis.n_points}")
        proto = {k: v for k, v in basis.protocol.items() if k not in ("loaded_from",)}
        print(f"protocol:    {json.dumps(proto, default=str)}")
    if args.plot:
        _write_plot(basis_figure(basis), args.plot, args.overwrite)


def _synth(args) -> None:
    from mrs_tf.physics.basis import BasisSet, simulate_basis
    from mrs_tf.formats import nifti
    from mrs_tf.core.files import atomic_output
    from mrs_tf.reporting.plots import spectrum_figure
    from mrs_tf.physics.synth import synthesize

    truth_path = Path(args.truth) if args.truth else Path(str(args.out).replace(".nii.gz", "").replace(".nii", "")
                                                          + "_truth.csv")
    _refuse_existing(args, args.out, truth_path, args.plot)
    if len(args.snr) not in (1, 2):
        raise MRSError("--snr takes one value or LOW HIGH")
    basis = BasisSet.load(args.basis) if args.basis else simulate_basis()
    snr = args.snr[0] if len(args.snr) == 1 else tuple(args.snr)
    fids, truth = synthesize(basis, n=args.n, snr=snr, seed=args.seed)
    nifti.write(args.out, fids.reshape(args.n, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz,
                te_s=(basis.protocol.get("te_ms") or 0) * 1e-3 or None, overwrite=args.overwrite)
    with atomic_output(truth_path, args.overwrite) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            keys = list(truth)
            writer.writerow(["index"] + keys)
            for i in range(args.n):
                writer.writerow([i] + [f"{float(truth[k][i]):.8g}" for k in keys])
    print(f"wrote {args.out} ({args.n} spectra) and {truth_path}")
    if args.plot:
        _write_plot(spectrum_figure(fids[:5], basis.ppm, title="Synthesised spectra"), args.plot, args.overwrite)


def _remove_water(d: dict, band) -> dict:
    """HLSVD removal of residual water in ``band`` (ppm) from every non-zero FID of ``d``."""
    from mrs_tf.preprocess.hlsvd import remove_band

    fids = d["fids"].astype(complex, copy=True)
    for i in np.flatnonzero(np.any(fids != 0, axis=1)):
        fids[i] = remove_band(fids[i], d["dwell_s"], d["field_mhz"], tuple(band))[0]
    return {**d, "fids": fids}


def _read_scan(args, path) -> dict:
    """Read one data file with the in vivo preprocessing asked for (coil combination, aligned averaging, ECC from
    --water); ``d["steps"]`` holds the per-row table columns that report what was done."""
    from mrs_tf.io import read_data

    d = read_data(path, field_mhz=args.field_mhz, dwell_s=_dwell(args), combine=args.combine, align=args.align)
    if getattr(args, "conjugate", False):
        d = {**d, "fids": np.conj(d["fids"])}
    pre = d.get("preprocessing", {})
    n = len(d["fids"])
    steps = {"coils_combined": np.full(n, pre.get("coils", 1)), "transients_averaged": np.full(n, pre.get(
        "transients", 1)), "align_max_hz": np.full(n, pre.get("align_max_hz", np.nan))}
    ecc = bool(args.water) if args.ecc is None else bool(args.ecc)
    if ecc:
        if not args.water:
            raise MRSError("--ecc needs the water reference: --water FILE")
        from mrs_tf.preprocess.spectra import eddy_current_correction
        from mrs_tf.fitting.water import check_water_protocol

        water = read_data(args.water, field_mhz=args.field_mhz, dwell_s=_dwell(args), combine=True, role="water")
        if getattr(args, "conjugate", False):
            water = {**water, "fids": np.conj(water["fids"])}
        check_water_protocol(water, d)
        d["water"] = water  # read once: the water scaling uses it too
        if len(water["fids"]) not in (1, n):
            raise MRSError(f"{args.water}: {len(water['fids'])} water FIDs for {n} spectra")
        d = {**d, "fids": np.concatenate([eddy_current_correction(d["fids"][i:i + 1],
                                                                  water["fids"][min(i, len(water["fids"]) - 1)])
                                          for i in range(n)])}
    steps["ecc"] = np.full(n, int(ecc))
    d["steps"] = steps
    return d


#: signals of a brain spectrum whose absence from a basis biases its neighbours (what takes their signal)
_EXPECTED = {"NAA": "NAAG, the baseline", "Cr": "PCr, MM", "Glu": "Gln, GABA, GSH", "Gln": "Glu, GABA, GSH",
             "Ins": "Gly, Tau", "GPC": "PCh", "PCh": "GPC"}


def _warn_missing_metabolites(basis, source) -> None:
    missing = [n for n in _EXPECTED if n not in basis.names]
    for name in missing:
        print(f"mrs-tf: warning: {source} has no {name}: its signal goes to its neighbours ({_EXPECTED[name]}), "
              f"which come out too high", file=sys.stderr)


def _warn_poor_fits(table) -> None:
    status = np.asarray(table["status"])
    bad = np.flatnonzero(status == "poor_fit")
    for i in bad[:5]:
        print(f"mrs-tf: warning: {table['spectrum'][i]}: poor fit: {table['message'][i]}", file=sys.stderr)
    if len(bad) > 5:
        print(f"mrs-tf: warning: {len(bad) - 5} more poor fits (status column)", file=sys.stderr)


def _fit(args) -> None:
    from mrs_tf.fitting import quest
    from mrs_tf.physics.basis import BasisSet
    from mrs_tf.core.table import ResultTable

    _refuse_existing(args, args.out, args.plot)
    if args.water and len(args.data) > 1:
        raise MRSError("--water scales one data file: run one fit per file with its own water reference")
    options = _fit_options(args)
    datasets = [_read_scan(args, p) for p in args.data]
    first = datasets[0]
    for path, d in zip(args.data[1:], datasets[1:]):
        if d["fids"].shape[1] != first["fids"].shape[1] or abs(d["dwell_s"] - first["dwell_s"]) > 1e-9:
            raise MRSError(f"{path}: points/dwell differ from {args.data[0]}; fit them in separate runs")
    basis = BasisSet.load(args.basis, field_mhz=first["field_mhz"], unknown="keep")
    te_data = first.get("te_ms")
    te_basis = basis.protocol.get("te_ms")
    if te_data and te_basis and abs(float(te_data) - float(te_basis)) > 0.5:
        raise MRSError(f"{args.basis} is for TE {float(te_basis):g} ms, {args.data[0]} has TE {float(te_data):g} ms: "
                       f"simulate a basis for the data's TE (mrs-tf basis simulate --te-ms {float(te_data):g} ...)")
    _warn_missing_metabolites(basis, args.basis)
    from mrs_tf.fitting.basis_prep import prepare_basis

    hygiene = not args.no_basis_hygiene  # without it, only the resampling to the data
    basis = prepare_basis(basis, n_points=first["fids"].shape[1], dwell_s=first["dwell_s"],
                          remove_references=hygiene, reference=hygiene, add_mm=hygiene).basis
    from mrs_tf.fitting.water import basis_amplitude_per_proton

    per_proton = _basis_norm(args, lambda: basis_amplitude_per_proton(basis))  # before the fits: fail early
    fids = np.concatenate([d["fids"] for d in datasets])
    labels = [lab for d in datasets for lab in d["labels"]]
    table = quest.fit(fids, basis, n_jobs=args.n_jobs, options=options, dwell_s=first["dwell_s"],
                      field_mhz=first["field_mhz"])
    table = ResultTable({"spectrum": np.array(labels, dtype=object), **table})
    for key in first["steps"]:
        table[key] = np.concatenate([d["steps"][key] for d in datasets])
    table["water_removed_ppm"] = np.array([("%g-%g" % tuple(options.water_ppm)) if options.water_ppm else ""]
                                          * len(labels), dtype=object)
    from mrs_tf.fitting.crlb import combination_rows

    names = list(basis.names) + list(combination_rows(basis.names))
    _water_scale(args, table, names, {**first, "fids": fids}, basis.protocol.get("te_ms"), per_proton)
    table.to_csv(args.out, overwrite=args.overwrite)
    counts = {s: int(np.sum(table["status"] == s)) for s in dict.fromkeys(table["status"])}
    print(f"wrote {args.out}: {len(fids)} spectra, status {counts}")
    _warn_poor_fits(table)
    if args.plot:
        _write_plot(quest.fit_one(fids[0], basis, options).figure(title=f"QUEST fit of {labels[0]}"), args.plot,
                    args.overwrite)


def _train(args) -> None:
    import dataclasses

    from mrs_tf.nn.train import TrainConfig, train

    settings = {}
    if args.config:
        try:
            settings = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MRSError(f"--config {args.config}: cannot read a JSON TrainConfig ({exc})") from None
        unknown = set(settings) - {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown:
            raise MRSError(f"--config {args.config}: unknown TrainConfig keys {sorted(unknown)}")
    if args.model_kwargs:
        try:
            settings["model_kwargs"] = json.loads(args.model_kwargs)
        except json.JSONDecodeError as exc:
            raise MRSError(f"--model-kwargs is not JSON ({exc})") from None
    for key in ("model", "epochs", "steps_per_epoch", "batch_size", "learning_rate", "seed"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.no_uncertainty:
        settings["uncertainty"] = False
    if args.tfds:
        settings["tfds_config"] = args.tfds
    if args.tensorboard:
        settings["tensorboard"] = True
    if args.protocol_from and not args.basis:
        raise MRSError("--protocol-from matches a basis set to data: give --basis too")
    if args.basis:
        settings["basis_path"], settings["protocol_from"] = str(args.basis), args.protocol_from
    cfg = TrainConfig(**settings)
    _, history = train(cfg, args.out, resume=args.resume, strategy=args.strategy, overwrite=args.overwrite)
    meta = json.loads((Path(args.out) / "quantifier.json").read_text())
    print(f"wrote {args.out}/model.keras after {meta['training']['epochs_run']} epochs "
          f"(best val_loss {min(history['val_loss']):.4f})")
    _card(args, history)


def _hardware() -> str:
    """The machine in words, for model cards: CPU cores and the GPUs TensorFlow sees."""
    import os
    import platform

    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, " + (", ".join(gpus) if gpus else "no GPU")


def _card(args, history) -> None:
    """metrics.json and model_card.md for a freshly trained folder."""
    from mrs_tf.reporting import model_card
    from mrs_tf.physics.basis import simulate_basis
    from mrs_tf.nn.train import TrainConfig, load_training_basis, logged_run

    cfg = TrainConfig(**json.loads((Path(args.out) / "train_config.json").read_text()))
    basis = (load_training_basis(cfg.basis_path, cfg.protocol_from) if cfg.basis_path
             else simulate_basis(**cfg.protocol))
    done = json.loads((Path(args.out) / "quantifier.json").read_text())["training"]
    best = logged_run(args.out)["best_val_loss"]  # log.csv spans every resumed part
    argv = [a for a in sys.argv[1:] if a != "--resume"]  # the card's command reproduces the whole run
    training = {"minutes": done["seconds"] / 60, "epochs": done["epochs_run"], "steps_per_epoch": cfg.steps_per_epoch,
                "batch_size": cfg.batch_size,
                "final_val_loss": best if best is not None else float(min(history["val_loss"])),
                "hardware": _hardware(),
                "command": "mrs-tf " + " ".join(argv) if sys.argv[0].endswith("mrs-tf") else "mrs-tf train"}
    summary = model_card.measure(args.out, basis, cfg, args.test_size, training)
    problems = model_card.not_learned(summary)
    if problems:
        from mrs_tf.core.errors import TrainingError

        out = Path(args.out)
        for name in ("model.keras", "quantifier.json", "metrics.json", "best.keras"):
            if (out / name).exists():
                os.replace(out / name, out / f"rejected_{name}")
        raise TrainingError(f"the network did not learn ({'; '.join(problems)}); nothing was kept as a model in "
                            f"{out} (its files are renamed rejected_*). Check the basis (units, MM, reference), the "
                            f"protocol, or train longer")
    card = model_card.write(args.out)
    naa = summary["metrics"].get("NAA", {}).get("mape_pct")
    print(f"wrote {card}" + (f" (test NAA MAPE {naa:.1f} %)" if naa is not None else ""))


def _tune(args) -> None:
    from mrs_tf.nn.train import TrainConfig
    from mrs_tf.nn.tuning import tune

    cfg = TrainConfig(steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, val_size=args.val_size,
                      seed=args.seed)
    _, best = tune(args.out, args.algorithm, cfg, max_trials=args.max_trials, max_epochs=args.max_epochs,
                   resume=args.resume, overwrite=args.overwrite)
    print(f"best: {best.model} {json.dumps(best.model_kwargs)} learning rate {best.learning_rate:.2g}\n"
          f"train it: mrs-tf train --config {Path(args.out) / 'best_config.json'} --out MODEL_DIR")


def _evaluate(args) -> None:
    from mrs_tf.reporting import report
    from mrs_tf.quantify.quantifier import Quantifier

    out = args.out or (str(Path(args.report).with_suffix(".csv")) if args.report else None)
    if out is None:
        raise MRSError("give --report REPORT.html and/or --out METRICS.csv")
    _refuse_existing(args, out, args.report)
    q = Quantifier.load(args.model)
    if args.data:
        basis, fids, truth = report.load_test_data(q, args.data, args.truth)
        what = f"data {' '.join(args.data)}"
    else:
        basis, fids, truth = report.test_set(q, args.n, args.snr, args.seed)
        what = f"{args.n} fresh spectra, SNR {args.snr[0]:g}-{args.snr[1]:g}, seed {args.seed}"
    comp = report.compare(q, basis, fids, truth, n_jobs=args.n_jobs, quest=not args.no_quest,
                          description=f"Model {args.model} ({q.protocol_text()}) on {what}.")
    comp.metrics.to_csv(out, overwrite=args.overwrite)
    for r in report.summary_rows(comp):
        if r["metabolite"] in ("NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins"):
            quest_part = f", QUEST {r['QUEST_mape_pct']:.2f} %" if "QUEST_mape_pct" in r else ""
            print(f"{r['metabolite']:8s} MAPE network {r['network_mape_pct']:.2f} %{quest_part}; "
                  f"network RMSE / CRLB {r['network_efficiency']:.2f}")
    print(f"wrote {out}")
    if args.report:
        report.write_report(comp, args.report, overwrite=args.overwrite)
        print(f"wrote {args.report}")


def _export(args) -> None:
    from mrs_tf.nn import export

    if args.format == "tflite":
        path = export.to_tflite(args.model, args.out, quantize=args.quantize, seed=args.seed, overwrite=args.overwrite)
    else:
        if args.quantize != "none":
            raise MRSError("--quantize applies to --format tflite only")
        path = export.to_saved_model(args.model, args.out, overwrite=args.overwrite)
    size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"wrote {path} ({size / 1024:.0f} KiB)")


def _quantify(args) -> None:
    from mrs_tf.quantify.quantifier import Quantifier
    from mrs_tf.core.table import ResultTable

    _refuse_existing(args, args.out)
    if args.method == "quest":
        if not args.basis:
            raise MRSError("--method quest needs --basis BASIS")
        flags = (("--maps", args.maps), ("--mask", args.mask), ("--resample", args.resample),
                 ("--backend litert", args.backend != "keras"))
        unsupported = [flag for flag, on in flags if on]
        if unsupported:
            raise MRSError(f"{', '.join(unsupported)} apply to the network; with --method quest use mrs-tf fit's "
                           f"options (--preset, --water-ppm, --ppm-range, --background)")
        fit_args = _parser().parse_args(["fit", "--basis", args.basis, *args.data, "--out", args.out])
        fit_args.plot = args.report  # QUEST's report: the fit of the first spectrum, self-contained HTML
        for key in ("water", "water_conc_mm", "metab_relax_factor", "tr_ms", "te_ms", "tissue", "overwrite",
                    "field_mhz", "bandwidth_hz", "basis_amplitude_per_proton", "combine", "align", "ecc",
                    "no_water_removal"):
            setattr(fit_args, key, getattr(args, key))
        fit_args.water_ppm = args.water_ppm
        return _fit(fit_args)
    if (args.maps or args.mask) and len(args.data) != 1:
        raise MRSError("--maps/--mask take one MRSI file")
    _refuse_existing(args, args.maps, args.report)
    # every file read and checked against the model's protocol before TensorFlow and the network load
    meta_only = Quantifier.read_meta(args.model)
    scans = []
    for path in args.data:
        d = _read_scan(args, path)
        mismatch = meta_only.protocol_mismatch(d["fids"].shape[1], d["dwell_s"], d["field_mhz"], d.get("te_ms"),
                                               resample=args.resample)
        if mismatch:
            from mrs_tf.core.errors import ProtocolError

            raise ProtocolError(f"{path}: model {args.model}: {mismatch}")
        scans.append((path, d))
    q = Quantifier.load(args.model, backend=args.backend, tflite=args.tflite, basis=args.basis)
    if args.report or args.reference:
        q.basis()  # a training basis file that changed since training is refused now, before anything is written
    per_proton = _basis_norm(args, q.amplitude_per_proton)
    rows, labels, voxels, all_fids = [], [], [], []
    for path, d in scans:
        if args.resample and (d["fids"].shape[1] != q.n_points or abs(d["dwell_s"] - q.dwell_s) > 1e-9):
            from mrs_tf.preprocess.spectra import resample_fids

            print(f"{path}: resampling {d['fids'].shape[1]} points at {1 / d['dwell_s']:g} Hz to {q.n_points} at "
                  f"{1 / q.dwell_s:g} Hz")
            d = {**d, "fids": resample_fids(d["fids"], d["dwell_s"], q.dwell_s, q.n_points), "dwell_s": q.dwell_s}
        if not args.no_water_removal:
            d = _remove_water(d, args.water_ppm)
        d["steps"]["water_removed_ppm"] = np.array([("" if args.no_water_removal else "%g-%g" % tuple(
            args.water_ppm))] * len(d["fids"]), dtype=object)
        keep = np.any(d["fids"] != 0, axis=1)  # MRSI: voxels outside the excitation hold zeros
        _refuse_mirrored(path, d["fids"][keep], q.basis())
        offsets = np.full(len(keep), np.nan)
        if args.reference:
            from mrs_tf.preprocess.spectra import frequency_reference

            fixed, shifts = frequency_reference(d["fids"][keep], q.basis())
            d = {**d, "fids": d["fids"].copy()}
            d["fids"][keep] = fixed
            offsets[keep] = -shifts / d["field_mhz"]  # ppm where the peaks sat, + = higher ppm (as shift_ppm)
        if args.mask:
            keep &= _mask_rows(args.mask, d)
        if not keep.any():
            raise MRSError(f"{path}: no voxel to quantify (all zero or masked out)")
        try:
            part = q.quantify(d["fids"][keep], dwell_s=d["dwell_s"], field_mhz=d["field_mhz"], te_ms=d.get("te_ms"),
                              method=args.method)
        except MRSError as exc:  # name the file: with several inputs, "data have 1021 points" alone is a riddle
            raise type(exc)(f"{path}: {exc}") from None
        full = {k: np.full(len(keep), "" if v.dtype == object else np.nan, dtype=v.dtype if v.dtype == object
                           else float) for k, v in part.items()}
        for k, v in part.items():
            full[k][keep] = v
        if args.reference:
            full["reference_offset_ppm"] = offsets
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
        _water_scale(args, table, q.names + list(combination_rows(q.names)), d,
                     q.meta.get("protocol", {}).get("te_ms"), per_proton)
    table.to_csv(args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {len(labels)} spectra")
    if args.maps:
        written = _write_maps(args.maps, table, q.names + ["NAA+NAAG", "Cr+PCr", "GPC+PCh", "Glu+Gln"], d,
                              args.overwrite)
        print(f"wrote {len(written)} maps to {args.maps}")
    if args.report:
        from mrs_tf.reporting.report import scan_report

        from mrs_tf.fitting.quest import QuestOptions

        # the reconstruction's fit: the in vivo settings, on the FIDs the network saw (water already removed)
        scan_report(args.report, table, np.concatenate(all_fids), labels, q, q.basis(), overwrite=args.overwrite,
                    fit_options=QuestOptions.in_vivo(water_ppm=None))
        print(f"wrote {args.report}")


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
                       f"7.3 ppm); the file uses the other frequency sign convention: run again with --conjugate")


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


def _data_build(args) -> None:
    from mrs_tf.nn.data import build

    builder = build(args.config, args.data_dir)
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f"built mrs_brain_sim/{args.config} in {builder.data_dir}: {splits}")


#: (command, action) -> handler
_COMMANDS = {("basis", "simulate"): _basis_simulate, ("basis", "info"): _basis_info, ("synth", None): _synth,
             ("fit", None): _fit, ("train", None): _train, ("tune", None): _tune, ("evaluate", None): _evaluate,
             ("export", None): _export, ("quantify", None): _quantify, ("data", "build"): _data_build}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("train", "tune", "evaluate", "export") or (args.command, getattr(args, "action", None)) == (
            "data", "build"):
        from mrs_tf.core.quiet import import_tensorflow

        import_tensorflow()  # these load TensorFlow anyway: without its start-up lines on stderr
    try:
        _COMMANDS[(args.command, getattr(args, "action", None))](args)
    except MRSError as exc:
        print(f"mrs-tf: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

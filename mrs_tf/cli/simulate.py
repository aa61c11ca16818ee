"""``mrs-tf basis simulate|info``, ``mrs-tf synth`` and ``mrs-tf data build``: basis sets, synthetic spectra, TFDS data sets."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from mrs_tf.cli.common import add_protocol, dwell_s_from, refuse_existing, spectra_count, write_plot
from mrs_tf.core.errors import MRSError


def add_parsers(sub) -> None:
    """The group's sub-commands on ``sub`` (argparse sub-parsers)."""
    basis = sub.add_parser("basis", help="simulate or inspect basis sets").add_subparsers(dest="action",
                                                                                          required=True)
    sim = basis.add_parser("simulate", help="simulate a basis set with the density-matrix simulator")
    add_protocol(sim)
    sim.add_argument("--metabolites", nargs="+", default=None, help="names (default: the 20 metabolites + MM)")
    sim.add_argument("--refocusing-pulse", default=None,
                     help="PRESS/spin echo with shaped, slice-selective refocusing pulses (signal averaged over the "
                          "voxel) instead of ideal ones: sinc_4.0ms_1600hz, sinc_5.2ms_1200hz or sinc_6.9ms_900hz "
                          "(mrs_tf.physics.pulses.REFOCUSING_PULSES); closer to a vendor's basis for coupled signals")
    sim.add_argument("--carrier-ppm", type=float, default=3.0, help="the shaped pulses' transmit frequency (ppm)")
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
    data = sub.add_parser("data", help="TFDS data sets").add_subparsers(dest="action", required=True)
    build = data.add_parser("build", help="generate mrs_brain_sim/CONFIG offline")
    build.add_argument("config", help="e.g. tiny, press3t_te30_snr10-100, press7t_te30_snr10-100")
    build.add_argument("--data-dir", default=None, help="TFDS data dir (default: TFDS's, ~/tensorflow_datasets)")


def _basis_simulate(args) -> None:
    from mrs_tf.physics.basis import simulate_basis
    from mrs_tf.reporting.plots import basis_figure

    refuse_existing(args, args.out, args.plot)
    basis = simulate_basis(sequence=args.sequence, field_mhz=args.field_mhz, te_ms=args.te_ms, te1_ms=args.te1_ms,
                           te2_ms=args.te2_ms, tm_ms=args.tm_ms, n_refocus=args.n_refocus, n_points=args.points,
                           bandwidth_hz=args.bandwidth_hz, metabolites=args.metabolites,
                           refocusing_pulse=args.refocusing_pulse, carrier_ppm=args.carrier_ppm)
    basis.save(args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {basis.n_metabolites} signals, {basis.field_mhz:g} MHz, {basis.n_points} points, "
          f"dwell {basis.dwell_s * 1e6:.1f} us")
    if args.plot:
        write_plot(basis_figure(basis), args.plot, args.overwrite)


def _basis_info(args) -> None:
    from mrs_tf.physics.basis import BasisSet
    from mrs_tf.reporting.plots import basis_figure

    dwell = dwell_s_from(args)  # .RAW: the missing dwell; else: resample
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
        write_plot(basis_figure(basis), args.plot, args.overwrite)


def _synth(args) -> None:
    from mrs_tf.physics.basis import BasisSet, simulate_basis
    from mrs_tf.formats import nifti
    from mrs_tf.core.files import atomic_output
    from mrs_tf.reporting.plots import spectrum_figure
    from mrs_tf.physics.synth import synthesize

    truth_path = Path(args.truth) if args.truth else Path(str(args.out).replace(".nii.gz", "").replace(".nii", "")
                                                          + "_truth.csv")
    refuse_existing(args, args.out, truth_path, args.plot)
    if len(args.snr) not in (1, 2):
        raise MRSError("--snr takes one value or LOW HIGH")
    basis = BasisSet.load(args.basis) if args.basis else simulate_basis()
    snr = args.snr[0] if len(args.snr) == 1 else tuple(args.snr)
    fids, truth = synthesize(basis, n=args.n, snr=snr, seed=args.seed)
    # provenance: mrs-tf quantify fits its own synthesis with the pulses that made it (--fit-pulse auto)
    made = {"basis_source": str(basis.protocol.get("source", args.basis or "")),
            "refocusing": str(basis.protocol.get("refocusing", "ideal")), "seed": args.seed}
    nifti.write(args.out, fids.reshape(args.n, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz,
                te_s=(basis.protocol.get("te_ms") or 0) * 1e-3 or None, overwrite=args.overwrite,
                sequence=basis.protocol.get("sequence"),
                user={"mrs_tf_synthesis": (json.dumps(made), "mrs-tf synth: the basis and pulses of these spectra")})
    with atomic_output(truth_path, args.overwrite) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            keys = list(truth)
            writer.writerow(["index"] + keys)
            for i in range(args.n):
                writer.writerow([i] + [f"{float(truth[k][i]):.8g}" for k in keys])
    print(f"wrote {args.out} ({spectra_count(args.n)}) and {truth_path}")
    if args.plot:
        write_plot(spectrum_figure(fids[:5], basis.ppm, title="Synthesised spectra"), args.plot, args.overwrite)


def _data_build(args) -> None:
    from mrs_tf.nn.data import build

    builder = build(args.config, args.data_dir)
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    print(f"built mrs_brain_sim/{args.config} in {builder.data_dir}: {splits}")

"""How long `mrs-tf train --basis USER_BASIS --protocol-from DATA` takes, end to end, and what the model it makes
is worth.

    python benchmarks/train_own_basis.py                 # the command's defaults: 40 epochs x 200 steps x 128
    python benchmarks/train_own_basis.py --fast          # CI: 12 epochs x 40 steps of 64

The "user's" basis stands in for one from elsewhere: PRESS TE 35 ms (TE1 12, TE2 23) at 3 T, 4096 points at 5 kHz,
no macromolecules, scaled to 0.2 FID units per proton, written as an LCModel .BASIS; the "scan" is 32 spectra of
that protocol at 2048 points and 4 kHz (SNR 20-60, the healthy-brain priors). The script runs the command through
``mrs_tf.cli.main`` exactly as a user would, times its phases (training, sigma calibration + model card), then
quantifies the scan with the new model and prints the per-metabolite errors against the scan's truth.
Prints figures; asserts nothing. Hardware: printed (GPU name where TensorFlow sees one).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fast", action="store_true", help="12 epochs x 40 steps of 64 (CI; enough to learn)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the command's (40)")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="default: the command's (200)")
    parser.add_argument("--work", default=None, help="folder for the files (default: a temporary one)")
    args = parser.parse_args()

    from mrs_tf import BasisSet, Quantifier, simulate_basis, synthesize
    from mrs_tf.cli import main as cli
    from mrs_tf.io import nifti
    from mrs_tf.train import TRAINING_SYNTHESIS, healthy_priors

    work = Path(args.work or tempfile.mkdtemp(prefix="mrs_tf_own_basis_"))
    work.mkdir(parents=True, exist_ok=True)
    from mrs_tf.nn.train import training_hardware

    hardware = training_hardware()

    t0 = time.perf_counter()
    theirs = simulate_basis(te1_ms=12.0, te2_ms=23.0, n_points=4096, bandwidth_hz=5000)
    keep = [n for n in theirs.names if n != "MM"]
    foreign = BasisSet(keep, theirs.fids[[theirs.index(n) for n in keep]] * 0.2, theirs.dwell_s, theirs.field_mhz,
                       theirs.ref_ppm, {"te_ms": 35.0})
    foreign.save(work / "their_press_te35.BASIS", overwrite=True)
    scan_basis = simulate_basis(te1_ms=12.0, te2_ms=23.0)  # the scanner's own protocol, 2048 points at 4 kHz
    fids, truth = synthesize(scan_basis, 32, snr=(20, 60), seed=np.random.SeedSequence([7, 35]),
                             config=healthy_priors(TRAINING_SYNTHESIS))
    fids = fids * 0.2  # the scan in the foreign basis's units
    nifti.write(work / "scan.nii.gz", fids.reshape(32, 1, 1, -1).astype(np.complex128), scan_basis.dwell_s,
                scan_basis.field_mhz, te_s=0.035, overwrite=True)
    setup_s = time.perf_counter() - t0

    out = work / "their_press"
    cmd = ["train", "--basis", str(work / "their_press_te35.BASIS"), "--protocol-from", str(work / "scan.nii.gz"),
           "--out", str(out), "--overwrite"]
    if args.fast:
        cmd += ["--epochs", "12", "--steps-per-epoch", "40", "--batch-size", "64", "--test-size", "256"]
    else:
        cmd += [f"--epochs={args.epochs}"] if args.epochs else []
        cmd += [f"--steps-per-epoch={args.steps_per_epoch}"] if args.steps_per_epoch else []
    t0 = time.perf_counter()
    if cli(cmd) != 0:
        raise SystemExit("mrs-tf train failed")
    total_s = time.perf_counter() - t0
    meta = json.loads((out / "quantifier.json").read_text())
    train_s, seen = meta["training"]["seconds"], meta["training"]["spectra_seen"]

    q = Quantifier.load(out)
    table = q.quantify(fids, scan_basis.dwell_s, scan_basis.field_mhz, te_ms=35.0)
    print(f"\nhardware: {hardware}")
    print(f"setup (simulate the foreign basis and the scan): {setup_s:.0f} s")
    print(f"mrs-tf train --basis: {total_s / 60:.1f} min in all; training {train_s / 60:.1f} min "
          f"({meta['training']['epochs_run']} epochs, {seen:,} spectra, {seen / train_s:,.0f} spectra/s), "
          f"sigma calibration + test set + model card {(total_s - train_s) / 60:.1f} min")
    print(f"basis normalisation stored: {meta.get('basis_amplitude_per_proton')} FID units per proton (0.2 made)")
    print(f"{'':9s} {'scan MAPE %':>11s} {'test MAPE %':>11s}")
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    for name in ("NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins"):
        true = sum(truth[p] for p in name.split("+"))
        mape = 100 * np.mean(np.abs(np.asarray(table[name]) - true) / true)
        print(f"{name:9s} {mape:11.2f} {metrics[name]['mape_pct']:11.2f}")
    print(f"files in {work}")


if __name__ == "__main__":
    main()

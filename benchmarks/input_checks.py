"""The network path's input checks (``Quantifier.quantify``'s ``status``): how often each flag fires on the network's
own distribution (false flags), how often on the inputs it exists for (detection), and what the network's numbers
are worth there.

    python benchmarks/input_checks.py                  # saved_models/press3t_short_te, 2,048 spectra per row
    python benchmarks/input_checks.py --fast           # 128 spectra per row, two protocols (CI)
    python benchmarks/input_checks.py --method hybrid --fast --n 32   # the network-initialised fit's statuses

Per protocol, the same kind of draws (the general network's evaluation nuisance: Lorentzian 1-12 Hz, Gaussian 2-14 Hz,
water <= 2x and lipids <= 0.3 of NAA's height, baselines, shifts +-0.2 ppm; SNR 5-100) rendered as:

* ``in range``: as drawn (every flag here is a false one);
* ``conjugated``: the other frequency sign convention (``mirrored``);
* ``moved 0.3 ppm`` / ``moved 0.6 ppm`` / ``moved 1.0 ppm``: every peak that far up or down
  (``offset_out_of_range``; the networks learnt +-0.2, the hybrid fit reaches +-0.30; 1.0 ppm is beyond
  frequency_reference's default +-0.5 ppm search, where the checks' had aliased);
* ``water 10x`` / ``water 20x``: residual water that tall (``residual_water``; learnt up to 2x);
* ``Lorentzian 25-35 Hz``: a poor shim (``broad_lines``);
* ``lipids 1.5x`` / ``lipids 5x``: lipid lines (0.9, 1.3, 2.0 ppm) that many NAA heights, a voxel near the skull
  (``lipid_contamination``; learnt up to 0.3x);
* ``noise``: complex white noise alone (``no_signal``).

Prints, per row, the share of each status and the MAPE % of tNAA / tCho / Ins / Glu over tCr (against the truth; not
for noise), over all spectra and over those ``ok`` (the numbers a user is told to trust); then, where
``../shared/data/osprey`` is there, the two Philips volunteers as read and with their water removed; then the cost of
the checks against the network's prediction on 8,192 FIDs. Asserts nothing.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

PROTOCOLS = ((127.75, 35.0, 2048, 2000.0), (123.2, 30.0, 2048, 4000.0), (127.7, 35.0, 1024, 1000.0),
             (123.2, 20.0, 8192, 5000.0))
RATIOS = ("NAA+NAAG", "GPC+PCh", "Ins", "Glu")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "osprey" / "invivo_philips_press35"


def _rows(basis, n: int, seed: int):
    """(label, fids, truth or None) of every row for one protocol."""
    import mrs_tf
    from mrs_tf.nn.general import GENERAL_SYNTHESIS
    from mrs_tf.train import evaluation_synthesis

    syn = evaluation_synthesis(GENERAL_SYNTHESIS)
    draw = lambda cfg, k: mrs_tf.synthesize(basis, n, snr=(5.0, 100.0),  # noqa: E731
                                            seed=np.random.SeedSequence([seed, k]), config=cfg)
    fids, truth = draw(syn, 1)
    yield "in range", fids, truth
    yield "conjugated", np.conj(fids), truth
    t = np.arange(basis.n_points) * basis.dwell_s
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    yield "moved 0.3 ppm", fids * np.exp(-2j * np.pi * 0.3 * sign[:, None] * basis.field_mhz * t), truth
    yield "moved 0.6 ppm", fids * np.exp(-2j * np.pi * 0.6 * sign[:, None] * basis.field_mhz * t), truth
    yield "moved 1.0 ppm", fids * np.exp(-2j * np.pi * 1.0 * sign[:, None] * basis.field_mhz * t), truth
    for amp in (10.0, 20.0):
        yield (f"water {amp:g}x", *draw(syn.with_(water_amp=(amp, amp)), 2))
    yield ("Lorentzian 25-35 Hz", *draw(syn.with_(lorentz_hz=(25.0, 35.0)), 3))
    for amp in (1.5, 5.0):
        yield (f"lipids {amp:g}x", *draw(syn.with_(lipid_amp=(amp, amp)), 5))
    rng = np.random.default_rng([seed, 4])
    yield "noise", rng.normal(size=(n, basis.n_points)) + 1j * rng.normal(size=(n, basis.n_points)), None


def _mape(table, truth, rows=None) -> str:
    """MAPE % of each of RATIOS over tCr against the truth, over ``rows`` (a mask; all where None)."""
    if truth is None:
        return ""
    from mrs_tf.evaluate import truth_value

    rows = np.ones(len(table["status"]), bool) if rows is None else np.asarray(rows, bool)
    if not rows.any():
        return "-"
    tcr = truth_value(truth, "Cr+PCr")[rows]
    out = []
    for name in RATIOS:
        true = truth_value(truth, name)[rows] / tcr
        out.append(100 * np.mean(np.abs(np.asarray(table[f"{name}_over_tCr"], float)[rows] / true - 1)))
    return " / ".join(f"{v:.1f}" for v in out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="saved_models/press3t_short_te")
    parser.add_argument("--n", type=int, default=None, help="spectra per row (default 2,048; --fast 128)")
    parser.add_argument("--fast", action="store_true", help="128 spectra per row, two protocols")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--method", choices=["network", "hybrid"], default="network",
                        help="whose statuses and MAPE: the network's (default) or the network-initialised fit's")
    args = parser.parse_args()
    n = args.n or (128 if args.fast else 2048)

    import mrs_tf
    from mrs_tf.physics.protocols import protocol_basis
    from mrs_tf.preprocess.spectra import input_scores

    q = mrs_tf.Quantifier.load(args.model)
    protocols = [p for p in PROTOCOLS if not q.protocol_mismatch(p[2], 1 / p[3], p[0], p[1])]
    protocols = protocols[:2] if args.fast else protocols
    if not protocols:
        raise SystemExit(f"{args.model} serves none of the protocols {PROTOCOLS}")
    print(f"{args.model} ({args.method}): {n} spectra per row, seed {args.seed}; share of each status (%), and MAPE % "
          f"of {' / '.join(RATIOS)} over tCr")
    for field, te, points, bw in protocols:
        basis = protocol_basis(field, te, n_points=points, dwell_s=1 / bw)
        print(f"\n{field:g} MHz, TE {te:g} ms, {points} points at {bw:g} Hz")
        for label, fids, truth in _rows(basis, n, args.seed):
            table = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=te, method=args.method)
            status = np.asarray(table["status"])
            shares = ", ".join(f"{s} {100 * np.mean(status == s):.1f}" for s in sorted(set(status)))
            print(f"  {label:20s} {shares:60s} {_mape(table, truth)}; ok only {_mape(table, truth, status == 'ok')}",
                  flush=True)

    if SHARED.exists() and args.method == "network":
        from mrs_tf.hlsvd import remove_band
        from mrs_tf.io import read_data

        print("\nthe Philips volunteers (Ins/tCr; LCModel 0.86 / 0.79)")
        scans = [read_data(SHARED / f"{sub}_PRESS_35_act.sdat") for sub in ("sub-01", "sub-02")]
        d = scans[0]
        fids = np.concatenate([s["fids"] for s in scans])
        dry = np.stack([remove_band(f, d["dwell_s"], d["field_mhz"], (4.2, 5.2))[0] for f in fids])
        for label, x in (("as read", fids), ("water removed", dry)):
            table = q.quantify(x, dwell_s=d["dwell_s"], field_mhz=d["field_mhz"], te_ms=35.0)
            scores = input_scores(x, q.basis_for(x.shape[1], d["dwell_s"], d["field_mhz"], 35.0))
            print(f"  {label:14s} status {list(table['status'])}, Ins/tCr {np.round(table['Ins_over_tCr'], 3)}, "
                  f"water/NAA {np.round(scores.water_to_naa, 1)}, lipid/NAA {np.round(scores.lipid_to_naa, 2)}, "
                  f"line {scores.line_hz} Hz")

    field, te, points, bw = protocols[0]
    basis = protocol_basis(field, te, n_points=points, dwell_s=1 / bw)
    fids = np.resize(next(_rows(basis, 512, args.seed))[1], (8192, points))
    fit_basis = q.basis_for(points, basis.dwell_s, field, te)
    q.predict(fids, basis.dwell_s, field, te_ms=te)  # the graph traced for this shape
    checks, network = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        input_scores(fids, fit_basis)
        checks.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        q.predict(fids, basis.dwell_s, field, te_ms=te)
        network.append(time.perf_counter() - t0)
    print(f"\ncost on 8,192 FIDs ({points} points at {bw:g} Hz), median of 3: checks {np.median(checks):.3f} s, the "
          f"network's prediction {np.median(network):.3f} s")


if __name__ == "__main__":
    main()

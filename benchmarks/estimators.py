"""Network, hybrid, QUEST and LCModel on the same fresh spectra, against the truth and the Cramér–Rao bound.

    python benchmarks/estimators.py                          # 200 spectra per set (~15 min with LCModel here)
    python benchmarks/estimators.py --fast                   # 24 spectra per set, no LCModel unless given (CI)
    python benchmarks/estimators.py --lcmodel /path/lcmodel  # LCModel beside them ($LCMODEL or PATH also work)
    python benchmarks/estimators.py --peer                   # the issue's FSL-MRS conditions: no baseline, ...

Two sets of spectra, the default protocol (3 T PRESS, 2048 points, 4000 Hz), SNR uniform 10–100, the shipped
model's evaluation nuisance ranges (Voigt lines, ±0.2 ppm, any zero-order phase, ±5°/ppm, broad baseline up to ±0.15
of the NAA height, per-metabolite shifts ±1 Hz), healthy-brain concentrations:

* ``mrs-tf basis``: synthesised from mrs-tf's own basis (the one the shipped network was trained on);
* ``foreign basis``: synthesised from Osprey's Siemens PRESS TE 35 basis (``../shared/data/osprey/basis/``, a
  vendor-pulse simulation by another project, 123.2 MHz), resampled and given mrs-tf's parametric MM. The shipped
  network never saw it (and was trained for TE 30); hybrid, QUEST and LCModel fit with the basis that made the data.

Per ratio to tCr (tNAA, tCho, Glu, Ins): MAPE %, bias %, slope, and RMSE / CRLB with three bounds: the whole FID with
the baseline known (``crlb.from_truth`` with ``background="none"``: an oracle's bound, tighter than any estimator that
must find the baseline can reach), the exact model of the spectra (the whole FID, the synthesis' broad baseline
lines with their amplitudes, frequencies and widths as unknowns: ``baseline="unknown"``; the issue's target) and the
FID from 7.5 ms on (the hybrid's own model); then spectra per second (wall, 2 cores). LCModel 6.3 runs with the same basis
written as .BASIS (NSIMUL=0: the MM is in the basis), fit range 0.2–4.2 ppm, its default spline baseline. Prints the
issue-20 targets with the measured figure and "met"/"MISSED". Asserts nothing.

QUEST runs three ways: its default ``background="auto"`` (HLSVD's broad background as fixed columns of a whole-FID
fit, dropped where leaving it out raises chi2 by < 25), the published QUEST's HLSVD subtraction of a broad
background (10 ms) and truncation at 7.5 ms. The hybrid runs with its default model and the other of ``truncate``
(the FID from 7.5 ms) and ``auto`` (that, then the whole FID where its first 7.5 ms show no background). ``--peer`` synthesises both sets under the conditions in which the issue measured
FSL-MRS (no baseline, Voigt lines, shifts +-5 Hz, zero-order phase +-20 deg, no first-order phase, SNR 15-80; the
exact model's bound is then the whole FID's) so that QUEST's MAPE over the MAPE at the bound compares like for like
with the peer's 0.94 / 1.15 / 1.06 / 1.09.
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

SHARED = Path(__file__).resolve().parents[2] / "shared"
FOREIGN = SHARED / "data" / "osprey" / "basis" / "3T_PRESS_Siemens_35ms_noMM.BASIS"
RATIOS = ("NAA+NAAG", "GPC+PCh", "Glu", "Ins")
LABELS = {"NAA+NAAG": "tNAA", "GPC+PCh": "tCho", "Glu": "Glu", "Ins": "Ins"}
HYBRID_VARIANT = {"auto": "truncate", "truncate": "auto"}  # the hybrid's other model, measured beside its default


def foreign_basis(like):
    """Osprey's Siemens basis on ``like``'s points and dwell time, mrs-tf's parametric MM added in its units."""
    from mrs_tf import BasisSet
    from mrs_tf.basis_prep import parametric_mm, prepare_basis

    raw = BasisSet.load(FOREIGN, unknown="keep")
    basis = prepare_basis(raw, n_points=like.n_points, dwell_s=like.dwell_s, add_mm=False, log=lambda line: None).basis
    return BasisSet(list(basis.names) + ["MM"], np.vstack([basis.fids, parametric_mm(basis)]), basis.dwell_s,
                    basis.field_mhz, basis.ref_ppm, dict(basis.protocol))


def truth_ratio(truth, name):
    from mrs_tf.evaluate import truth_value

    return truth_value(truth, name) / (truth["Cr"] + truth["PCr"])


def metrics(estimate, truth, bounds):
    out = {}
    for name in RATIOS:
        ref = truth_ratio(truth, name)
        est = np.asarray(estimate[f"{name}_over_tCr"], float)
        ok = np.isfinite(est)
        rel = est[ok] / ref[ok] - 1
        rmse = float(np.sqrt(np.mean((est[ok] - ref[ok]) ** 2)))
        out[name] = {"mape_pct": 100 * float(np.mean(np.abs(rel))), "bias_pct": 100 * float(np.mean(rel)),
                     "slope": float(np.polyfit(ref[ok], est[ok], 1)[0]), "n": int(ok.sum()),
                     **{f"rmse_over_crlb_{k}": rmse / float(np.sqrt(np.mean(b[f"{name}_over_tCr"][ok] ** 2)))
                        for k, b in bounds.items()},
                     # MAPE over the MAPE that an estimator at the bound would have (|N(0, crlb)| has mean
                     # sqrt(2/pi) crlb): the measure of the peers (FSL-MRS 0.94 / 1.15 / 1.06 / 1.09)
                     **{f"mape_over_crlb_{k}": float(np.mean(np.abs(rel))) / float(
                         np.mean(np.sqrt(2 / np.pi) * b[f"{name}_over_tCr"][ok] / ref[ok])) for k, b in bounds.items()}}
    return out


def run_lcmodel(exe, fids, basis, work: Path):
    from mrs_tf import lcmodel
    from mrs_tf.crlb import combination_rows

    basis_file = basis.save(work / "basis.BASIS", overwrite=True)
    rows = []
    for fid in fids:
        res = lcmodel.run(fid, basis_file, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, binary=exe,
                          ppm_range=(0.2, 4.2), extra={"NSIMUL": 0})
        rows.append(res.concentrations)
    table = {}
    names = list(basis.names)
    for nm in names:
        table[nm] = np.array([r.get(nm, np.nan) for r in rows], float)
    for combo, idx in combination_rows(names).items():
        table[combo] = sum(table[names[i]] for i in idx)
    tcr = table["Cr"] + table["PCr"]
    failed = ~(tcr > 0.1 * np.nanmedian(tcr))  # tCr near 0 (or missing): a failed fit, not a ratio
    for key in list(table):
        table[f"{key}_over_tCr"] = np.where(failed, np.nan, table[key] / np.where(failed, 1.0, tcr))
    table["failed"] = failed
    return table


def one_set(label, basis, fids, truth, q, exe, work, n_jobs, quest_too=True, baseline="unknown"):
    from mrs_tf import hybrid, quest
    from mrs_tf.crlb import from_truth

    bounds = {"whole": from_truth(basis, truth, quest.QuestOptions(background="none")),
              "exact": from_truth(basis, truth, quest.QuestOptions(background="none"), baseline=baseline),
              "from7.5ms": from_truth(basis, truth, hybrid.HYBRID_OPTIONS)}
    estimates, rate = {}, {}
    q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)  # build the graph once, for this batch shape
    t0 = time.perf_counter()
    net = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    rate["network"] = len(fids) / (time.perf_counter() - t0)
    estimates["network"] = net
    mean, _ = q.predict(fids[:8], basis.dwell_s, basis.field_mhz)  # warm, as the network's graph above: the first
    hybrid.fit(fids[:8], basis, n_jobs=n_jobs, initial=np.stack(  # call in a process pays one-off costs
        [mean[:, q.names.index(n)] if n in q.names else np.zeros(len(mean)) for n in basis.names], 1))
    t0 = time.perf_counter()
    mean, _ = q.predict(fids, basis.dwell_s, basis.field_mhz)
    initial = np.stack([mean[:, q.names.index(n)] if n in q.names else np.zeros(len(mean)) for n in basis.names], 1)
    estimates["hybrid"] = hybrid.fit(fids, basis, initial=initial, n_jobs=n_jobs)
    rate["hybrid"] = len(fids) / (time.perf_counter() - t0)
    other = HYBRID_VARIANT[hybrid.HYBRID_OPTIONS.background]
    t0 = time.perf_counter()
    estimates[f"hybrid {other}"] = hybrid.fit(fids, basis, initial=initial, n_jobs=n_jobs,
                                              options=hybrid.HYBRID_OPTIONS.with_(background=other))
    rate[f"hybrid {other}"] = len(fids) / (time.perf_counter() - t0)
    for name, opts in (("QUEST (default: auto)", quest.QuestOptions()),
                       ("QUEST subtract (published)", quest.QuestOptions(background="subtract")),
                       ("QUEST truncate 7.5 ms", quest.QuestOptions(background="truncate", truncate_ms=7.5))
                       )[:3 * quest_too]:
        t0 = time.perf_counter()
        estimates[name] = quest.fit(fids, basis, n_jobs=n_jobs, options=opts, progress=False)
        rate[name] = len(fids) / (time.perf_counter() - t0)
    if exe is not None:
        t0 = time.perf_counter()
        estimates["LCModel 6.3"] = run_lcmodel(exe, fids, basis, work)
        rate["LCModel 6.3"] = len(fids) / (time.perf_counter() - t0)
        print(f"LCModel: {int(estimates['LCModel 6.3']['failed'].sum())} of {len(fids)} fits with tCr near 0 "
              f"(< 0.1 x the median) left out of its figures")
    out = {name: metrics(est, truth, bounds) for name, est in estimates.items()}
    fallback = int(np.sum(estimates["hybrid"]["method"] == "quest_fallback"))
    print(f"\n## {label}: {len(fids)} spectra (hybrid: {fallback} fell back to QUEST; statuses "
          f"{dict(zip(*np.unique(estimates['hybrid']['status'], return_counts=True)))})")
    head = " | ".join(f"{LABELS[r]} MAPE / bias / slope / RMSE÷CRLB known baseline, exact, 7.5ms" for r in RATIOS)
    print(f"| estimator | {head} | spectra/s |")
    for name, m in out.items():
        cells = " | ".join(f"{m[r]['mape_pct']:.1f} / {m[r]['bias_pct']:+.1f} / {m[r]['slope']:.2f} / "
                           f"{m[r]['rmse_over_crlb_whole']:.2f}, {m[r]['rmse_over_crlb_exact']:.2f}, "
                           f"{m[r]['rmse_over_crlb_from7.5ms']:.2f}"
                           for r in RATIOS)
        print(f"| {name} | {cells} | {rate[name]:,.1f} |")
    return {"metrics": out, "spectra_per_s": rate, "hybrid_fallbacks": fallback}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="saved_models/press3t_te30")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--snr", type=float, nargs=2, default=None, help="SNR range (default 10 100; --peer: 15 80)")
    parser.add_argument("--peer", action="store_true",
                        help="the issue's FSL-MRS conditions: no baseline, +-5 Hz, +-20 deg, SNR 15-80")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--no-quest", action="store_true",
                        help="network and hybrid only (e.g. --n 1000 --no-quest: RMSE/CRLB with less sampling noise)")
    parser.add_argument("--fast", action="store_true", help="24 spectra per set; LCModel only when given")
    parser.add_argument("--lcmodel", default=None, help="LCModel binary (default: $LCMODEL or lcmodel on the PATH)")
    parser.add_argument("--json", default=None, help="write every figure here")
    args = parser.parse_args()
    n = 24 if args.fast else args.n
    args.snr = args.snr or ([15.0, 80.0] if args.peer else [10.0, 100.0])

    from mrs_tf import lcmodel, report, synthesize
    from mrs_tf.quantify import Quantifier
    from mrs_tf.train import evaluation_synthesis

    q = Quantifier.load(args.model)
    exe = lcmodel.find_binary(args.lcmodel) if (args.lcmodel or not args.fast) and not args.no_quest else None
    print(f"{q.protocol_text()}; SNR {args.snr[0]:g}-{args.snr[1]:g}, seed {args.seed}; LCModel: "
          f"{exe or 'not found (give --lcmodel)'}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.peer:
            from mrs_tf.synth import SynthesisConfig

            basis = q.basis()
            shift = 5.0 / basis.field_mhz
            syn = SynthesisConfig(baseline_components=0, shift_ppm=(-shift, shift), phase0_deg=(-20.0, 20.0),
                                  phase1_deg_per_ppm=(0.0, 0.0), metab_shift_hz=0.0)
            fids, truth = synthesize(basis, n, snr=tuple(args.snr), seed=np.random.SeedSequence([args.seed, 4001]),
                                     config=syn)
            baseline = "known"  # there is none: the exact model's bound is the whole FID's
        else:
            basis, fids, truth = report.test_set(q, n, args.snr, args.seed)
            syn = evaluation_synthesis(q.train_config().synthesis_config())
            baseline = "unknown"
        results["mrs-tf basis"] = one_set("mrs-tf basis", basis, fids, truth, q, exe, Path(tmp), args.n_jobs,
                                          not args.no_quest, baseline)
        if FOREIGN.exists():
            fb = foreign_basis(basis)
            ffids, ftruth = synthesize(fb, n, snr=tuple(args.snr), seed=np.random.SeedSequence([args.seed, 4002]),
                                       config=syn)
            results["foreign basis"] = one_set(f"foreign basis ({FOREIGN.name})", fb, ffids, ftruth, q, exe,
                                               Path(tmp), args.n_jobs, not args.no_quest, baseline)
        else:
            print(f"\n(no {FOREIGN}: the foreign set is skipped)")
    print("\ntargets (issue 20), hybrid:")
    for label, res in results.items():
        h = res["metrics"]["hybrid"]
        for r in RATIOS:
            eff, oracle, bias = h[r]["rmse_over_crlb_exact"], h[r]["rmse_over_crlb_whole"], h[r]["bias_pct"]
            print(f"  {label:13s} {LABELS[r]:5s} RMSE/CRLB of the exact model {eff:.2f} (<= 1.2: "
                  f"{'met' if eff <= 1.2 else 'MISSED'}; baseline known: {oracle:.2f}), "
                  f"|bias| {abs(bias):.1f} % (<= 2: {'met' if abs(bias) <= 2 else 'MISSED'})" +
                  (f", MAPE vs LCModel {h[r]['mape_pct']:.1f} / {res['metrics']['LCModel 6.3'][r]['mape_pct']:.1f}"
                   if "LCModel 6.3" in res["metrics"] else ""))
        for est in ("QUEST (default: auto)", "QUEST subtract (published)", "QUEST truncate 7.5 ms"):
            if est in res["metrics"]:
                cells = ", ".join(f"{LABELS[r]} {res['metrics'][est][r]['mape_over_crlb_exact']:.2f}" for r in RATIOS)
                print(f"  {label:13s} {est}: MAPE / MAPE at the exact model's bound {cells} (best peer, FSL-MRS in "
                      f"the issue: 0.94, 1.15, 1.06, 1.09)")
        rate = res["spectra_per_s"]["hybrid"]
        print(f"  {label:13s} speed {rate:.0f} spectra/s (>= 100: {'met' if rate >= 100 else 'MISSED'})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

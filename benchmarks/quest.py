"""QUEST figures on synthesized spectra of the default protocol: speed, bias, CRLB honesty, convergence.

    python benchmarks/quest.py            # full: 1,000 spectra at SNR 10-200, 400 at SNR 100-200, 300 robustness
    python benchmarks/quest.py --fast     # CI: 60 / 60 / 30

Prints measured figures; asserts nothing. "z" is (estimate - truth) / CRLB: its standard deviation is 1 when the
CRLB is an honest error bar. "CRLB/bound" compares QUEST's CRLB at its solution with the bound at the true
parameters (:func:`mrs_tf.crlb.from_truth`; the subtract approach's bound is that of the truncated FID).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

NAMES = ["NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins", "NAA+NAAG", "Glu+Gln", "Cr", "PCr", "Gln", "GABA", "GSH", "Tau",
         "Lac", "MM"]


def _truth(truth, name):
    return sum(np.asarray(truth[p]) for p in name.split("+"))


def report(label, table, truth) -> None:
    print(f"\n{label}: {table.n_rows} spectra, status "
          f"{ {s: int(np.sum(table['status'] == s)) for s in dict.fromkeys(table['status'])} }")
    print(f"{'':10s} {'bias %':>8s} {'rel sd %':>9s} {'z mean':>7s} {'z sd':>6s} {'CRLB %':>7s}")
    for name in NAMES:
        tr = _truth(truth, name)
        err = table[name] - tr
        z = err / table[f"{name}_crlb"]
        print(f"{name:10s} {100 * np.mean(err / tr):+8.2f} {100 * np.std(err / tr):9.2f} {np.mean(z):+7.2f} "
              f"{np.std(z):6.2f} {np.median(table[f'{name}_crlb_pct']):7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fast", action="store_true", help="small sizes (CI)")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    n_wide, n_high, n_robust = (60, 60, 30) if args.fast else (1000, 400, 300)

    from mrs_tf import SynthesisConfig, simulate_basis, synthesize
    from mrs_tf import quest
    from mrs_tf.crlb import from_truth

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    basis = simulate_basis()

    fids, truth = synthesize(basis, n_wide, snr=(10, 200), seed=2001)
    t0 = time.perf_counter()
    subtract = quest.QuestOptions(background="subtract")  # the published QUEST (the default is "auto")
    table = quest.fit(fids, basis, n_jobs=args.n_jobs, progress=False, options=subtract)
    wall = time.perf_counter() - t0
    print(f"QUEST (subtract), default protocol, 20 metabolites + MM, 2048 points: median {np.median(table['seconds']):.3f}"
          f" s/spectrum for one fit on one core (p90 {np.percentile(table['seconds'], 90):.3f} s); "
          f"{wall / n_wide:.3f} s/spectrum wall with n_jobs={args.n_jobs} ({n_wide / wall:.1f} spectra/s)")
    report("SNR 10-200", table, truth)
    snr = truth["snr"]
    for lo, hi in ((10, 30), (30, 100), (100, 200)):
        sel = (snr >= lo) & (snr < hi)
        z = {nm: np.std((table[nm][sel] - _truth(truth, nm)[sel]) / table[f"{nm}_crlb"][sel])
             for nm in ("NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins")}
        print(f"  SNR {lo}-{hi} ({sel.sum()} spectra) z sd: " + ", ".join(f"{k} {v:.2f}" for k, v in z.items()))
    rows = np.arange(min(n_wide, 100))
    bound = from_truth(basis, truth, subtract, rows=rows)
    ratio = {nm: np.median(table[f"{nm}_crlb"][rows] / bound[nm]) for nm in ("NAA", "Cr+PCr", "Glu", "Ins")}
    print("  CRLB at the solution / bound at the truth (median): "
          + ", ".join(f"{k} {v:.3f}" for k, v in ratio.items()))

    fids, truth = synthesize(basis, n_high, snr=(100, 200), seed=2002)
    report("SNR 100-200", quest.fit(fids, basis, n_jobs=args.n_jobs, progress=False, options=subtract), truth)

    for mode in ("auto", "truncate", "include", "none"):
        fids, truth = synthesize(basis, max(n_high // 4, 30), snr=(100, 200), seed=2003)
        tab = quest.fit(fids, basis, n_jobs=args.n_jobs, progress=False, background=mode)
        figs = []
        for nm in ("NAA", "Cr+PCr", "Glu"):
            err = tab[nm] - _truth(truth, nm)
            figs.append(f"{nm} bias {100 * np.mean(err / _truth(truth, nm)):+.1f}% z sd "
                        f"{np.std(err / tab[f'{nm}_crlb']):.2f}")
        print(f"background={mode:8s} (SNR 100-200, {tab.n_rows}): " + "; ".join(figs))

    config = SynthesisConfig(phase0_deg=(-180, 180), shift_ppm=(-0.1, 0.1), lorentz_hz=(2, 15), gauss_hz=(0, 3))
    fids, truth = synthesize(basis, n_robust, snr=(20, 200), seed=2004, config=config)
    tab = quest.fit(fids, basis, n_jobs=args.n_jobs, progress=False)
    good = tab["status"] == "ok"
    for nm in ("NAA", "Cr+PCr", "Glu"):
        good &= np.abs((tab[nm] - _truth(truth, nm)) / tab[f"{nm}_crlb"]) < 5
    print(f"\nrobustness (phase0 +-180 deg, shift +-0.1 ppm, Lorentzian 2-15 Hz, SNR 20-200, {n_robust} spectra): "
          f"{100 * good.mean():.1f} % converge (status ok and NAA, Cr+PCr, Glu within 5 CRLB)")


if __name__ == "__main__":
    main()

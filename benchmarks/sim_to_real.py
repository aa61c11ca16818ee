"""How much a trained network degrades on spectra that its training simulator never produced (the sim-to-real gap).

    python benchmarks/sim_to_real.py                      # saved_models/press3t_te30, 2,048 spectra per scenario
    python benchmarks/sim_to_real.py --fast               # 256 spectra (CI; the cross-check study 16 per set)

The same draws (concentrations, linewidths, shifts, phases, baseline, noise; SNR 10-100, seed fixed) are rendered
five ways, so that differences between rows come from the signal model alone:

* ``in-distribution``: the training simulator's ranges with mrs-tf's MM at its nominal shape (the test set of
  ``mrs-tf evaluate`` and the model card);
* ``varied MM``: the MM shape drawn per spectrum as in training since the MM-shape change (component amplitudes
  +-30 %, positions +-0.04 ppm, widths +-25 %, Gaussian to Lorentzian; ``TRAINING_SYNTHESIS``);
* ``foreign MM``: the macromolecule signal from another parametrisation (Lorentzian instead of Gaussian components,
  positions moved by up to 0.05 ppm, other relative amplitudes, an extra 2.3/3.9 ppm component), scaled to the same
  integral so that "MM" still means the same amount of signal;
* ``asymmetric lines``: every line convolved with a skewed lineshape (25 % of the signal in a shoulder 4 Hz
  downfield, broadened by 3 Hz: a poorly shimmed voxel), FID(0) unchanged so the areas are the same;
* ``both``.

Prints MAPE, bias and slope per metabolite (the five headline signals and the rest) and the ratio of each scenario's
MAPE to the in-distribution MAPE; ``--json`` writes them. Asserts nothing.

Foreign basis sets (issue 18; every basis in ``../shared/data/osprey/basis/`` that is there): spectra synthesised from
vendor-pulse simulations that mrs-tf never saw (Osprey's GE PRESS TE 30 at 127.7 MHz with its own MM and lipid
signals; GE, Philips and Siemens PRESS TE 35 with LCModel-style MM09-MM20 and Lip09-Lip20 added in the basis's own
units by :func:`mrs_tf.basis_prep.prepare_basis`), sampled as the scanners do (2,048 points at 2 or 2.5 kHz at
127.7 MHz, 4 kHz at 123.2 MHz), quantified by the model where its protocol allows, beside the same draws from
mrs-tf's own basis for the same protocol (the in-distribution reference), and, where a foreign basis lacks brain
metabolites that mrs-tf simulates (Gly, Glc, Ala in the TE 35 sets), the same draws from the foreign basis with
mrs-tf's signals of those added in its units (a brain spectrum carries them; without them about 6 points of the
network's Ins/tCr bias there came from their absence, not from the basis). Per ratio to tCr (tNAA, tCho, Glu, Ins):
MAPE, bias, slope, and MAPE / in-distribution MAPE.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

#: the second MM parametrisation: (ppm, FWHM ppm, relative amplitude), Lorentzian components
FOREIGN_MM = ((0.89, 0.10, 3.0), (1.20, 0.12, 2.4), (1.39, 0.13, 1.6), (1.63, 0.12, 1.5), (2.04, 0.12, 1.8),
              (2.29, 0.15, 0.7), (3.00, 0.15, 0.6), (3.22, 0.12, 0.3), (3.91, 0.18, 1.0))


def foreign_mm_basis(basis):
    """``basis`` with its MM row replaced by :data:`FOREIGN_MM` (Lorentzian lines), scaled to the same integral
    (FID(0)) as mrs-tf's own MM."""
    t = basis.time
    fid = np.zeros(basis.n_points, complex)
    for ppm, fwhm_ppm, amp in FOREIGN_MM:
        nu = (basis.ref_ppm - ppm) * basis.field_mhz
        fid += amp * np.exp(2j * np.pi * nu * t - np.pi * fwhm_ppm * basis.field_mhz * t)
    row = basis.index("MM")
    fids = basis.fids.copy()
    fids[row] = fid * (basis.fids[row][0].real / fid[0].real)
    return dataclasses.replace(basis, fids=fids.astype(basis.fids.dtype))


def asymmetric(fids, dwell_s, weight=0.25, offset_hz=4.0, broadening_hz=3.0):
    """Every line convolved with a skewed lineshape (:func:`mrs_tf.nn.general.skewed`)."""
    from mrs_tf.nn.general import skewed

    return skewed(fids, dwell_s, weight, offset_hz, broadening_hz)


SHARED_BASES = Path(__file__).resolve().parents[2] / "shared" / "data" / "osprey" / "basis"
RATIOS = ("NAA+NAAG", "GPC+PCh", "Glu", "Ins")
#: concentration priors of the foreign bases' macromolecule and lipid signals (basis units, i.e. mM of protons
#: groups as prepare_basis scales them): MM at brain levels, lipids low (a clean healthy voxel)
FOREIGN_PRIORS = {"MM09": (2.0, 5.0), "MM12": (1.0, 3.0), "MM14": (2.0, 5.0), "MM17": (1.0, 3.0),
                  "MM20": (3.0, 7.0), "Lip09": (0.0, 1.0), "Lip13": (0.0, 1.5), "Lip20": (0.0, 1.0)}


def load_osprey_mat(path):
    """Osprey's MATLAB basis read by ``BasisSet.load`` (:mod:`mrs_tf.formats.osprey`: conjugated, re-referenced from
    the receiver's 3.0 ppm to 4.65 ppm, the halved first points doubled back, CrCH2 left out), keeping the signals
    mrs-tf knows and its MM and lipid components (not Cit, EtOH, H2O, ...: a brain spectrum holds little of them)."""
    from mrs_tf import BasisSet
    from mrs_tf.physics.metabolites import METABOLITES

    basis = BasisSet.load(path)
    return basis.subset([n for n in basis.names if n in METABOLITES or n in FOREIGN_PRIORS])


def foreign_sets():
    """(label, prepared basis at the scanner's sampling) for each Osprey basis that is there."""
    from mrs_tf import BasisSet
    from mrs_tf.basis_prep import prepare_basis

    out = []
    for path in sorted(SHARED_BASES.glob("*")):
        if path.suffix == ".mat":
            raw, bw = load_osprey_mat(path), 2500.0
            add_mm = False
        elif path.suffix.lower() == ".basis":
            raw = BasisSet.load(path, unknown="keep")
            bw, add_mm = (4000.0 if raw.field_mhz < 125 else 2000.0), True
        else:
            continue
        prepared = prepare_basis(raw, n_points=2048, dwell_s=1 / bw, add_mm=add_mm, log=lambda line: None).basis
        label = f"{path.stem} ({prepared.field_mhz:.1f} MHz, TE {raw.protocol['te_ms']:g}, 2048 @ {bw:g} Hz)"
        out.append((label, prepared))
    return out


def with_missing_brain_signals(foreign, own):
    """``foreign`` with mrs-tf's signals (from ``own``, the same protocol) of the brain metabolites that it lacks
    (Osprey's TE 35 bases have no Gly, Glc or Ala; a brain has ~1 mM of each), in the foreign basis's units: scaled by
    the ratio of the two Cr signals' norms (5 Hz line broadening, so that a reference offset does not enter). Without
    them the spectra lack signal that every brain spectrum carries under Ins (3.55 ppm) and tCho, and a network
    trained on brains splits that region as it learnt to."""
    from mrs_tf import BasisSet
    from mrs_tf.basis_prep import missing_brain_metabolites

    missing = missing_brain_metabolites(foreign.names)
    if not missing:
        return foreign, missing
    w = np.exp(-np.pi * 5.0 * own.time)
    scale = np.linalg.norm(foreign.fids[foreign.index("Cr")] * w) / np.linalg.norm(own.fids[own.index("Cr")] * w)
    fids = np.vstack([foreign.fids, scale * own.fids[[own.index(n) for n in missing]]])
    return BasisSet(list(foreign.names) + missing, fids, foreign.dwell_s, foreign.field_mhz, foreign.ref_ppm,
                    dict(foreign.protocol)), missing


def ratio_metrics(table, truth):
    from mrs_tf.evaluate import metrics as all_metrics, truth_value

    tcr = truth["Cr"] + truth["PCr"]
    out = {}
    for name in RATIOS:
        m = all_metrics(np.asarray(table[f"{name}_over_tCr"], float), truth_value(truth, name) / tcr)
        out[name] = {k: m[k] for k in ("mape_pct", "bias_pct", "slope")}
    return out


def foreign_bases(q, n: int, seed: int) -> dict:
    """The model on spectra from each foreign basis and, for the same protocol, from mrs-tf's own basis."""
    from mrs_tf import synthesize
    from mrs_tf.physics.protocols import protocol_basis
    from mrs_tf.nn.general import GENERAL_SYNTHESIS
    from mrs_tf.train import evaluation_synthesis

    results = {}
    syn = evaluation_synthesis(GENERAL_SYNTHESIS).with_(water_amp=(0.0, 0.5), lipid_amp=(0.0, 0.0))
    for label, foreign in foreign_sets():
        te = float(foreign.protocol["te_ms"])
        problem = q.protocol_mismatch(foreign.n_points, foreign.dwell_s, foreign.field_mhz, te)
        if problem:
            print(f"\n{label}: refused by the model ({problem[:120]}...)")
            continue
        own = protocol_basis(foreign.field_mhz, te, te / 2, n_points=foreign.n_points, dwell_s=foreign.dwell_s)
        row = {}
        completed, missing = with_missing_brain_signals(foreign, own)
        kinds = [("in-distribution (mrs-tf basis)", own), ("foreign basis", foreign)]
        if missing:
            kinds.append((f"foreign basis + mrs-tf's {'/'.join(missing)}", completed))
        for kind, basis in kinds:
            cfg = syn.with_(priors={k: v for k, v in FOREIGN_PRIORS.items() if k in basis.names})
            fids, truth = synthesize(basis, n, snr=(10, 100), seed=np.random.SeedSequence([seed, 5001]), config=cfg)
            table = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=te)
            row[kind] = ratio_metrics(table, truth)
        results[label] = row
        print(f"\n{label}: ratio to tCr, MAPE % / bias % / slope (MAPE / in-distribution MAPE)")
        for name in RATIOS:
            a, b = row["in-distribution (mrs-tf basis)"][name], row["foreign basis"][name]
            line = (f"  {name:9s} own {a['mape_pct']:5.2f} / {a['bias_pct']:+6.2f} / {a['slope']:4.2f}   foreign "
                    f"{b['mape_pct']:5.2f} / {b['bias_pct']:+6.2f} / {b['slope']:4.2f}  ({b['mape_pct'] / a['mape_pct']:.2f}x)")
            if missing:
                c = row[kinds[2][0]][name]
                line += (f"   + {'/'.join(missing)} {c['mape_pct']:5.2f} / {c['bias_pct']:+6.2f} / {c['slope']:4.2f}  "
                         f"({c['mape_pct'] / a['mape_pct']:.2f}x)")
            print(line)
    return results


def cross_check_study(q, n: int, seed: int, n_sigma: float | None = None,
                      fit_bases=("mrs-tf's", "shaped", "the true")) -> dict:
    """How often the network's cross-check (:mod:`mrs_tf.quantify.crosscheck`) flags spectra, in distribution and on
    each foreign basis, and whether it flags the ones the network got wrong: per set the fraction flagged, and among
    the spectra with a headline ratio off the truth by more than the tolerance and by more than 2.5 of the network's
    own sigma (its silent nonsense) the fraction flagged; the fit once with mrs-tf's basis for the protocol (what
    ``mrs-tf quantify`` does without ``--basis``), once with mrs-tf's basis simulated with shaped refocusing pulses
    (``--fit-pulse``), once with the basis that made the spectra (``--basis`` with the scan's own basis). The foreign
    sets carry mrs-tf's Gly/Glc/Ala where their basis lacks them (brain-like spectra)."""
    from mrs_tf import synthesize
    from mrs_tf.evaluate import truth_value
    from mrs_tf.fitting import hybrid
    from mrs_tf.nn.general import GENERAL_SYNTHESIS
    from mrs_tf.physics.protocols import protocol_basis
    from mrs_tf.cli.fit import SCANNER_FIT_PULSE
    from mrs_tf.quantify import crosscheck
    from mrs_tf.train import evaluation_synthesis

    syn = evaluation_synthesis(GENERAL_SYNTHESIS).with_(water_amp=(0.0, 0.0), lipid_amp=(0.0, 0.0))
    sets = []
    for label, foreign in foreign_sets():
        te = float(foreign.protocol["te_ms"])
        if q.protocol_mismatch(foreign.n_points, foreign.dwell_s, foreign.field_mhz, te):
            continue
        if not sets:
            sets.append(("mrs-tf basis (" + label.split("(")[1],
                         protocol_basis(foreign.field_mhz, te, te * 0.4, n_points=foreign.n_points,
                                        dwell_s=foreign.dwell_s), te))
        # brain-like spectra: the foreign basis with mrs-tf's Gly/Glc/Ala where it lacks them (see foreign_bases)
        own = protocol_basis(foreign.field_mhz, te, te / 2, n_points=foreign.n_points, dwell_s=foreign.dwell_s)
        completed, missing = with_missing_brain_signals(foreign, own)
        sets.append((f"{label.split(' (')[0]} + {'/'.join(missing)}" if missing else label, completed, te))
    out = {}
    print(f"\ncross-check of the network by an in vivo fit with mrs-tf's basis ({n} spectra per set, SNR 10-100; "
          f"tolerances {crosscheck.TOLERANCE})")
    for label, basis, te in sets:
        cfg = syn.with_(priors={k: v for k, v in FOREIGN_PRIORS.items() if k in basis.names})
        fids, truth = synthesize(basis, n, snr=(10, 100), seed=np.random.SeedSequence([seed, 7001]), config=cfg)
        net = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=te)
        tcr = truth["Cr"] + truth["PCr"]
        wrong = np.zeros(n, bool)
        for name, tol in crosscheck.TOLERANCE.items():  # nonsense: off beyond the tolerance and its own 2.5 sigma
            err = np.asarray(net[f"{name}_over_tCr"], float) / (truth_value(truth, name) / tcr) - 1
            wrong |= (np.abs(err) > tol) & (np.abs(err) > 2.5 * crosscheck.ratio_rel_sd(net, name, "_sd"))
        mean, _ = q.predict(fids, basis.dwell_s, basis.field_mhz, te_ms=te)
        for fit_basis in fit_bases:
            if fit_basis in ("mrs-tf's", "shaped"):  # as the cross-check fits: free MM components (fit_basis)
                pulse = SCANNER_FIT_PULSE if fit_basis == "shaped" else None  # shaped refocusing for the protocol
                fit = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=te, method="hybrid",
                                 options=crosscheck.fit_options(), fit_pulse=pulse,
                                 basis=q.cross_check_basis(basis.n_points, basis.dwell_s, basis.field_mhz, te, pulse))
            else:  # the basis that made the spectra, as a user with the scan's own basis gives it (--basis)
                initial = np.stack([mean[:, q.names.index(m)] if m in q.names else np.zeros(n)
                                    for m in basis.names], axis=1)
                fit = hybrid.fit(fids, basis, initial=initial, options=crosscheck.fit_options())
            checked = crosscheck.cross_check(net, fit, n_sigma=n_sigma) if n_sigma is not None else \
                crosscheck.cross_check(net, fit)
            flagged = np.asarray(checked["status"]) == "fit_disagrees"
            row = {"flagged_pct": 100 * flagged.mean(), "wrong_pct": 100 * wrong.mean(),
                   "wrong_flagged_pct": 100 * flagged[wrong].mean() if wrong.any() else float("nan"),
                   "right_flagged_pct": 100 * flagged[~wrong].mean() if (~wrong).any() else float("nan"),
                   "fit_ok_pct": 100 * float(np.mean(np.asarray(fit["status"]) == "ok"))}
            out[f"{label}, fit with {fit_basis} basis"] = row
            print(f"  {label[:44]:44s} fit: {fit_basis:9s} basis: flagged {row['flagged_pct']:5.1f} %; network off by "
                  f"more than the tolerance and 2.5 sigma {row['wrong_pct']:5.1f} %, of those flagged "
                  f"{row['wrong_flagged_pct']:5.1f} %, of the rest {row['right_flagged_pct']:5.1f} %; fits ok "
                  f"{row['fit_ok_pct']:5.1f} %", flush=True)
    return out


def metrics(pred, truth):
    from mrs_tf.evaluate import metrics as all_metrics

    m = all_metrics(pred, truth)
    return {k: m[k] for k in ("mape_pct", "bias_pct", "slope")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="saved_models/press3t_te30")
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--fast", action="store_true", help="256 spectra (the cross-check study: 16 per set)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--cross-check", action="store_true",
                        help="general models: also measure the cross-check's flag rates (up to 256 spectra per set)")
    args = parser.parse_args()
    n = 256 if args.fast else args.n

    from mrs_tf import simulate_basis, synthesize
    from mrs_tf.crlb import COMBINATIONS
    from mrs_tf.quantify import Quantifier
    from mrs_tf.train import TrainConfig

    q = Quantifier.load(args.model)
    if q.general:  # a protocol-general model: the foreign basis sets are its test (issue 18)
        foreign = foreign_bases(q, n, args.seed)
        # fast (CI): 16 spectra and the default fits only (mrs-tf's shaped-pulse basis, the true basis): the in vivo
        # fits run at ~2 spectra/s (most take QUEST's nonnegative search), 64 spectra per set took 5.4 of CI's minutes
        bases = ("shaped", "the true") if args.fast else ("mrs-tf's", "shaped", "the true")
        check = (cross_check_study(q, 16 if args.fast else min(n, 256), args.seed, fit_bases=bases)
                 if args.cross_check else None)
        if args.json:
            tmp = args.json + ".tmp"
            with open(tmp, "w") as fh:
                json.dump({"n": n, "seed": args.seed, "foreign": foreign, "cross_check": check}, fh, indent=1)
            os.replace(tmp, args.json)
        return
    cfg_path = os.path.join(args.model, "train_config.json")
    cfg = TrainConfig.from_saved(json.load(open(cfg_path))) if os.path.exists(cfg_path) else TrainConfig()
    from mrs_tf.train import TRAINING_SYNTHESIS, evaluation_synthesis

    syn = evaluation_synthesis(cfg.synthesis_config())  # healthy-brain concentrations, nominal MM shape
    varied = syn.with_(**{k: getattr(TRAINING_SYNTHESIS, k) for k in ("mm_amp_spread", "mm_ppm_spread",
                                                                      "mm_width_spread", "mm_lorentz_fraction")})
    basis = simulate_basis()
    def seed():  # a fresh SeedSequence each time: spawning children changes a used one
        return np.random.SeedSequence([args.seed, 3001])

    noisy, truth = synthesize(basis, n, snr=(10, 100), seed=seed(), config=syn)
    clean, truth_clean = synthesize(basis, n, snr=None, seed=seed(), config=syn)
    assert np.array_equal(truth["NAA"], truth_clean["NAA"]), "noise-free draw differs from the noisy one"
    noise = noisy - clean
    clean_mm, _ = synthesize(foreign_mm_basis(basis), n, snr=None, seed=seed(), config=syn)
    clean_varied, truth_varied = synthesize(basis, n, snr=None, seed=seed(), config=varied)
    assert np.array_equal(truth["NAA"], truth_varied["NAA"]), "the varied-MM draw differs from the others"
    scenarios = {"in-distribution": noisy, "varied MM": clean_varied + noise, "foreign MM": clean_mm + noise,
                 "asymmetric lines": asymmetric(clean, basis.dwell_s) + noise,
                 "both": asymmetric(clean_mm, basis.dwell_s) + noise}
    headline = ["NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins"]
    names = headline + [m for m in basis.names if m not in ("Cr", "PCr", "GPC", "PCh")] + ["NAA+NAAG", "Glu+Gln"]
    names = list(dict.fromkeys(names))
    results = {}
    for label, fids in scenarios.items():
        table = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
        results[label] = {nm: metrics(table[nm], sum(truth[p] for p in nm.split("+"))) for nm in names}
    print(f"{q.protocol_text()}; {n} spectra per scenario, SNR 10-100, seed {args.seed}\n")
    print(f"{'MAPE %':10s}" + "".join(f"{s:>18s}" for s in scenarios))
    for nm in names:
        base = results["in-distribution"][nm]["mape_pct"]
        cells = [f"{results[s][nm]['mape_pct']:7.2f} ({results[s][nm]['mape_pct'] / base:4.1f}x)" for s in scenarios]
        print(f"{nm:10s}" + "".join(f"{c:>18s}" for c in cells))
    print(f"\n{'bias % / slope':14s}" + "".join(f"{s:>18s}" for s in scenarios))
    for nm in headline + ["MM"]:
        print(f"{nm:14s}" + "".join(f"{results[s][nm]['bias_pct']:+8.2f} / {results[s][nm]['slope']:5.2f}"
                                    .rjust(18) for s in scenarios))
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"n": n, "seed": args.seed, "combinations": list(COMBINATIONS), "results": results}, fh, indent=1)
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""A model card (Markdown) for a trained quantifier folder, from its ``quantifier.json``, ``train_config.json`` and
the test metrics (``metrics.json`` as written by ``benchmarks/train_model.py``)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["render", "write", "measure", "SNR_BANDS"]

SNR_BANDS = ((10, 30), (30, 60), (60, 100))

HEADLINE = ("NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins")


def _metrics(pred, truth, sd) -> dict:
    """The card's columns of :func:`mrs_tf.evaluate.metrics` (within_1sd_pct only for a model with sigma)."""
    from mrs_tf.reporting.evaluate import metrics

    m = metrics(pred, truth, sd)
    keys = ("mape_pct", "mae", "bias", "slope", "rmse") + (("within_1sd_pct",) if sd is not None else ())
    return {k: m[k] for k in keys}


def measure(folder, basis, config, n_test: int = 2048, training: dict | None = None) -> dict:
    """Test a trained quantifier folder on ``n_test`` fresh spectra (SNR 10-100, the training's nuisance ranges,
    the default concentration priors where the basis has them, seed ``[config.seed, 2001]``); writes
    ``metrics.json`` (atomic) and returns it. ``training``: minutes, epochs, ... for the card."""
    import numpy as np

    from mrs_tf.fitting.crlb import COMBINATIONS
    from mrs_tf.quantify.quantifier import Quantifier
    from mrs_tf.physics.synth import synthesize

    q = Quantifier.load(folder)
    from mrs_tf.nn.train import evaluation_synthesis

    fids, truth = synthesize(basis, n_test, snr=(10, 100), seed=np.random.SeedSequence([config.seed, 2001]),
                             config=evaluation_synthesis(config.synthesis_config()))
    table = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    snr = truth["snr"]
    results = {}
    combos = [c for c in COMBINATIONS if all(p in basis.names for p in COMBINATIONS[c])]
    for name in list(basis.names) + combos:
        tr_val = sum(truth[p] for p in name.split("+"))
        sd = table.get(f"{name}_sd")
        results[name] = _metrics(table[name], tr_val, sd)
        # what knowing nothing gives: every spectrum quantified as the test set's median concentration
        results[name]["prior_mape_pct"] = float(100 * np.mean(np.abs(np.median(tr_val) - tr_val) / np.abs(tr_val)))
        if f"{name}_sd_vs_prior" in table:  # how much the spectra told it beyond its training prior (tables.py)
            results[name]["sd_vs_prior_median"] = float(np.nanmedian(np.asarray(table[f"{name}_sd_vs_prior"],
                                                                                float)))
        results[name]["by_snr"] = {f"{lo}-{hi}": _metrics(table[name][sel], tr_val[sel],
                                                          None if sd is None else sd[sel])
                                   for lo, hi in SNR_BANDS for sel in [(snr >= lo) & (snr < hi)]}
    x = np.resize(fids, (max(n_test, 8192), fids.shape[1]))
    q.quantify(x[:1024], basis.dwell_s, basis.field_mhz)
    t0 = time.perf_counter()
    q.quantify(x, basis.dwell_s, basis.field_mhz)
    rate = len(x) / (time.perf_counter() - t0)
    summary = {"test_set": {"n": n_test, "snr": [10, 100], "seed": [config.seed, 2001],
                            "protocol": q.protocol_text()},
               "training": training or {}, "predict_spectra_per_s": rate, "metrics": results}
    path = Path(folder) / "metrics.json"
    tmp = path.with_name(".metrics.json.tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, path)
    return summary


#: outputs that a trained network must have learned, and how well at least
LEARNED = {"names": ("NAA", "Cr+PCr"), "min_slope": 0.5}


def not_learned(summary: dict) -> list[str]:
    """Why a measured model has not learned (empty: it has): for the major outputs of :data:`LEARNED`, a slope of
    estimate on truth below ``min_slope`` or a MAPE no better than quoting the median concentration."""
    out = []
    for name in LEARNED["names"]:
        m = summary["metrics"].get(name)
        if m is None:
            continue
        if not m["slope"] >= LEARNED["min_slope"]:
            out.append(f"{name}: slope {m['slope']:.2f} < {LEARNED['min_slope']}")
        if "prior_mape_pct" in m and not m["mape_pct"] < m["prior_mape_pct"]:
            out.append(f"{name}: MAPE {m['mape_pct']:.1f} % is no better than the median's {m['prior_mape_pct']:.1f} %")
    return out


def _row(name: str, m: dict) -> str:
    within = m.get("within_1sd_pct")
    within = f"{within:.1f}" if within is not None else "-"
    return (f"| {name} | {m['mape_pct']:.2f} | {m['mae']:.3f} | {m['bias']:+.3f} | {m['slope']:.3f} | "
            f"{m['rmse']:.3f} | {within} |")


def _prior_line(res: dict) -> str:
    """The card's line on the outputs that are mostly the training prior: measured on the test set where the metrics
    have it (median ``<met>_sd_vs_prior`` at or above the table's threshold), else the usual suspects."""
    from mrs_tf.quantify.tables import PRIOR_DOMINATED_RATIO

    measured = {n: m["sd_vs_prior_median"] for n, m in res.items() if "sd_vs_prior_median" in m}
    if not measured:
        return ("- Small signals (Ala, Asc, Asp, GABA, Glc, Gly, Lac, PE, Scyllo, Tau, PCh, NAAG) are poorly "
                "determined at this SNR: their estimates lean on the training prior (slope well below 1); use the sums "
                "and the five headline signals, and read each `_sd`.")
    prior = [f"{n} ({v:.2f})" for n, v in sorted(measured.items(), key=lambda kv: -kv[1])
             if v >= PRIOR_DOMINATED_RATIO]
    return ("- Mostly its training prior on its own test spectra (median relative sd over the prior's, "
            f"`<met>_sd_vs_prior`, at {PRIOR_DOMINATED_RATIO:g} or more; `quantify` lists them per spectrum in "
            "`prior_dominated`): " + (", ".join(prior) if prior else "none") + ". Use the sums and the five headline "
            "signals, and read each `_sd`.")


def render(meta: dict, config: dict, metrics: dict, notes: str = "", folder_hint: str = "MODEL_FOLDER") -> str:
    """The card's Markdown text."""
    syn = config.get("synthesis", {})
    test = metrics["test_set"]
    training = metrics["training"]
    res = metrics["metrics"]
    lines = [
        f"# Model card: {meta.get('model', 'network')} for {test['protocol']}",
        "",
        "## What it does",
        f"Regresses the amplitudes of {len(meta['names'])} signals ({', '.join(meta['names'])}) in mM of mrs-tf's "
        "basis (MM in its model's units) and a standard deviation per output (Gaussian NLL), plus NAA+NAAG, Cr+PCr, "
        "GPC+PCh and Glu+Gln with their own sigma, from a single-voxel FID. Input: "
        f"{meta['n_points']} complex points, dwell {meta['dwell_s']:.6g} s, {meta['field_mhz']:g} MHz, NIfTI-MRS sign "
        f"convention; the network sees the spectrum cropped to {meta['ppm_range'][0]}-{meta['ppm_range'][1]} ppm "
        f"({meta['input_points']} points), phase-aligned by its integral and normalised by its RMS.",
        "",
        "```python",
        f"q = mrs_tf.Quantifier.load(\"{folder_hint}\")",
        f"table = q.quantify(fids, dwell_s={meta['dwell_s']:.6g}, field_mhz={meta['field_mhz']:g})",
        "```",
        "",
        "## Training data",
        ("Only spectra synthesised by mrs-tf from its own density-matrix basis set (spin systems after Govindaraju "
         "et al. 2000 / Govind et al. 2015) and its own parametric MM model; no basis set or spectrum from "
         "elsewhere." if not config.get("basis_path") else
         f"Spectra synthesised by mrs-tf from the basis set `{config['basis_path']}`"
         + (f", matched to the protocol of `{config['protocol_from']}`" if config.get("protocol_from") else "")
         + (", completed with mrs-tf's simulation of the brain metabolites it lacks" if config.get("complete_basis")
            else "")
         + (f", without {', '.join(config['omit'])}" if config.get("omit") else "")
         + " (mrs-tf's parametric MM added where it had none).") + " Fresh spectra every step (no epoch repeats).",
        f"- SNR (NAA height / noise sd) uniform {config['snr'][0]:g}-{config['snr'][1]:g}",
        f"- Lorentzian FWHM {syn.get('lorentz_hz')} Hz, Gaussian FWHM {syn.get('gauss_hz')} Hz, global shift "
        f"{syn.get('shift_ppm')} ppm, per-metabolite shift +-{syn.get('metab_shift_hz')} Hz",
        f"- zero-order phase {syn.get('phase0_deg')} deg, first-order {syn.get('phase1_deg_per_ppm')} deg/ppm, "
        f"baseline {syn.get('baseline_components')} broad lines of amplitude {syn.get('baseline_amp')} x NAA height",
        "- concentrations uniform over the healthy-brain priors widened to [0.5 low, 1.3 high]" + _own_priors(syn),
        *_other_settings(syn),
        "",
        "## Training run",
        (f"An ensemble of {training['members']} networks of this recipe (seeds {config['seed']}-"
         f"{config['seed'] + training['members'] - 1}; `mrs_tf.nn.ensemble`: the mean of their answers, sigma "
         f"widened where they disagree), {', '.join(map(str, training.get('member_epochs') or []))} epochs; "
         f"in all " if training.get("members", 1) > 1 else "")
        + f"{training['epochs']} epochs x {training['steps_per_epoch']} steps x {training['batch_size']} spectra "
        f"({training['epochs'] * training['steps_per_epoch'] * training['batch_size']:,} spectra) in "
        f"{training['minutes']:.1f} min on {training['hardware']}; final validation loss "
        f"{training['final_val_loss']:.4f}; learning rate {float(config.get('learning_rate', 1e-3)):g}, "
        + ("annealed by a cosine to 2 % of it over the epochs" if config.get("lr_schedule", "plateau") == "cosine"
           else "halved whenever the validation loss stalled")
        + (f"; the input spectrum minus its Gaussian smoothing of {float(config['highpass_hz']):g} Hz FWHM "
           f"(`highpass_hz`)" if config.get("highpass_hz") else "")
        + f". Reproduce: `{training.get('command', 'benchmarks/train_model.py')}`.",
        "",
        f"## Test metrics ({test['n']} spectra, SNR uniform {test['snr'][0]}-{test['snr'][1]}, training's nuisance "
        f"ranges, healthy-brain priors, seed {test['seed']})",
        f"Prediction: {metrics['predict_spectra_per_s']:,.0f} spectra/s batched on the same CPU (FFT and crop "
        "included).",
        "",
        "| signal | MAPE % | MAE | bias | slope | RMSE | within 1 sd % |",
        "|---|---|---|---|---|---|---|",
    ]
    order = [n for n in HEADLINE if n in res] + [n for n in res if n not in HEADLINE]
    lines += [_row(n, res[n]) for n in order]
    bands = list(next(iter(res.values())).get("by_snr", {}))
    if bands:
        lines += ["", "MAPE % by SNR band:", "", "| signal | " + " | ".join(f"SNR {b}" for b in bands) + " |",
                  "|---|" + "---|" * len(bands)]
        lines += [f"| {n} | " + " | ".join(f"{res[n]['by_snr'][b]['mape_pct']:.2f}" for b in bands) + " |"
                  for n in order]
    lines += [
        "",
        "## Limitations",
        f"- One protocol only: {test['protocol']}; other data are refused, not guessed at.",
        _prior_line(res),
        "- Trained on simulation: real spectra with other MM backgrounds, lineshapes, lipid or water residuals "
        "degrade it (measured in benchmarks/sim_to_real.py). Check fits and residuals on your data.",
        "- Amplitudes are in basis units (no water scaling, relaxation or tissue correction).",
    ]
    top = max(meta.get("ppm_range") or [0.0])
    if top > 4.0:  # what real scans carry above 4.0 ppm (benchmarks/RESULTS.md, 2026-11-28)
        lines.append(f"- Reads the spectrum up to {top:g} ppm: above 4.0 ppm real scans carry the water suppression's "
                     f"and the water removal's traces, which it reads as metabolites (a line of 0.2 NAA heights at "
                     f"4.1 ppm moved press3t_te30's Ins/tCr by 41-47 %). For scanner files use a network that reads "
                     f"up to 4.0 ppm (`mrs-tf quantify` gives them press3t_short_te; `mrs-tf train --basis` reads "
                     f"0.2-4.0 ppm by default).")
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def write(folder: str | os.PathLike, notes: str = "") -> Path:
    """Render ``folder/model_card.md`` from the folder's JSON files (atomic write); returns its path."""
    folder = Path(folder)
    meta = json.loads((folder / "quantifier.json").read_text())
    config = json.loads((folder / "train_config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    path = folder / "model_card.md"
    tmp = folder / ".model_card.md.tmp"
    hint = f"saved_models/{folder.name}" if folder.parent.name == "saved_models" else str(folder)
    tmp.write_text(render(meta, config, metrics, notes, hint))
    os.replace(tmp, path)
    return path


def _own_priors(syn: dict) -> str:
    """The training priors that are not mrs-tf's widened healthy-brain defaults (``--prior``), as card text."""
    from mrs_tf.nn.config import TRAINING_SYNTHESIS, priors_text, same_setting

    default = TRAINING_SYNTHESIS.priors
    own = {k: v for k, v in (syn.get("priors") or {}).items() if k in default and not same_setting(v, default[k])}
    return ("; except " + priors_text(own)) if own else ""


#: SynthesisConfig fields the card's training-data lines state whatever their values
_STATED = ("lorentz_hz", "gauss_hz", "shift_ppm", "metab_shift_hz", "phase0_deg", "phase1_deg_per_ppm",
           "baseline_components", "baseline_amp", "priors")


def _other_settings(syn: dict) -> list[str]:
    """A card line naming the synthesis settings not stated above that differ from mrs-tf's training defaults
    (e.g. ``--config`` with ``first_points_amp`` or ``lipid_amp``), or none."""
    from dataclasses import asdict

    from mrs_tf.nn.config import TRAINING_SYNTHESIS, same_setting

    default = asdict(TRAINING_SYNTHESIS)
    other = [f"{k} {tuple(v) if isinstance(v, list) else v}" for k, v in syn.items()
             if k not in _STATED and k in default and not same_setting(v, default[k])]
    return [f"- also, unlike mrs-tf's training defaults: {', '.join(other)}"] if other else []

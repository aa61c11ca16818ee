"""Network against QUEST against the Cramér–Rao bound on the same spectra, and the HTML report of it
(``mrs-tf evaluate``).

:func:`compare` quantifies one test set with a trained network (batched Keras) and with QUEST (:func:`mrs_tf.quest.fit`),
computes the CRLB of every spectrum at its true parameters (:func:`mrs_tf.crlb.from_truth`, QUEST's model of the whole
FID with the baseline known: the physical limit of this signal model), and returns a :class:`Comparison` with the
tidy metrics table of :func:`mrs_tf.evaluate.evaluate` and the timings. :func:`write_report` turns it into one
self-contained HTML file (plotly embedded; opens offline).
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

import numpy as np

from mrs_tf.reporting.evaluate import HEADLINE, evaluate
from mrs_tf.core.table import ResultTable

__all__ = ["Comparison", "test_set", "load_test_data", "compare", "write_report", "summary_rows"]


@dataclass
class Comparison:
    """Everything one evaluation produced (arrays in the order of the test spectra)."""

    fids: np.ndarray = field(repr=False)
    truth: dict = field(repr=False)
    estimates: dict = field(repr=False)          # {"network": table, "QUEST": table}
    crlb: dict = field(repr=False)               # {<met>: bound per spectrum}
    metrics: ResultTable = field(repr=False)
    seconds: dict                                 # {"network": s per spectrum, "QUEST": s per spectrum (wall)}
    description: str
    basis: object = field(repr=False, default=None)
    quantifier: object = field(repr=False, default=None)


def test_set(quantifier, n: int = 2000, snr=(10.0, 100.0), seed: int = 0):
    """(basis, fids, truth): ``n`` fresh spectra for the model's protocol, with the model's training nuisance ranges
    (``train_config.json``; mrs-tf's defaults otherwise) and healthy-brain concentrations (the default priors)."""
    from mrs_tf.physics.synth import synthesize
    from mrs_tf.nn.train import TRAINING_SYNTHESIS, evaluation_synthesis

    basis = quantifier.basis()
    cfg = quantifier.train_config()
    syn = cfg.synthesis_config() if cfg is not None else TRAINING_SYNTHESIS
    fids, truth = synthesize(basis, n, snr=tuple(snr), seed=np.random.SeedSequence([seed, 4001]),
                             config=evaluation_synthesis(syn))
    return basis, fids, truth


def compare(quantifier, basis, fids, truth, n_jobs: int = 2, quest: bool = True, progress: bool = True,
            snr_bands=None, description: str = "") -> Comparison:
    """Run the network (and QUEST) on ``fids`` and evaluate both against ``truth`` and the CRLB."""
    from mrs_tf.fitting import quest as quest_mod
    from mrs_tf.fitting.crlb import from_truth
    from mrs_tf.reporting.evaluate import DEFAULT_SNR_BANDS
    from mrs_tf.fitting.quest import QuestOptions

    estimates, seconds = {}, {}
    quantifier.quantify(fids[:8], dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)  # build the graph once
    t0 = time.perf_counter()
    estimates["network"] = quantifier.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    seconds["network"] = (time.perf_counter() - t0) / len(fids)
    if quest:
        t0 = time.perf_counter()
        estimates["QUEST"] = quest_mod.fit(fids, basis, n_jobs=n_jobs, progress=progress)
        seconds["QUEST"] = (time.perf_counter() - t0) / len(fids)
    bounds = from_truth(basis, truth, QuestOptions(background="none"))
    table = evaluate(truth, estimates, names=list(basis.names) + [c for c in bounds if "+" in c and not c.endswith("_over_tCr")],
                     snr_bands=snr_bands or DEFAULT_SNR_BANDS, crlb=bounds)
    return Comparison(fids, truth, estimates, bounds, table, seconds, description, basis, quantifier)


def summary_rows(comp: Comparison, band: str = "all", quantity: str = "amplitude") -> list[dict]:
    """Per metabolite: MAPE, RMSE, slope of each method and the mean CRLB (one dict per metabolite)."""
    t = comp.metrics
    out = {}
    for i in range(t.n_rows):
        if t["snr_band"][i] != band or t["quantity"][i] != quantity:
            continue
        name, method = t["metabolite"][i], t["method"][i]
        row = out.setdefault(name, {"metabolite": name})
        for col in ("mape_pct", "rmse", "slope", "efficiency", "within_1sd_pct"):
            row[f"{method}_{col}"] = t[col][i]
        if name in comp.crlb:
            row["crlb_mean"] = float(np.mean(comp.crlb[name]))
    return list(out.values())


def _html_table(rows: list[dict], columns, fmt="{:.3g}") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"<td>{html.escape(fmt.format(v) if isinstance(v, (float, np.floating)) else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_report(comp: Comparison, path, overwrite: bool = False):
    """Self-contained HTML: summary, per-metabolite table, bars, scatter, error vs SNR with CRLB, Bland-Altman and
    one spectrum with both fits."""
    from mrs_tf.reporting import plots
    from mrs_tf.fitting import quest

    names = [n for n in HEADLINE if n in comp.basis.names or "+" in n]
    everything = list(comp.basis.names) + [c for c in comp.crlb if "+" in c]
    methods = list(comp.estimates)
    timing = ", ".join(f"{m}: {1 / s:,.0f} spectra/s ({1e3 * s:.3g} ms per spectrum)"
                       for m, s in comp.seconds.items())
    if "QUEST" in comp.seconds:
        timing += f"; the network is {comp.seconds['QUEST'] / comp.seconds['network']:,.0f}x faster"
    summary = (f"<p>{html.escape(comp.description)}</p><p>{len(comp.fids)} spectra, SNR "
               f"{np.min(comp.truth['snr']):.0f}-{np.max(comp.truth['snr']):.0f}. Timing: {html.escape(timing)}. "
               "CRLB: the bound at the true parameters for QUEST's model of the whole FID with the baseline known "
               "(the physical limit of this signal model). Efficiency = RMSE / mean CRLB.</p>")
    cols = ["metabolite"] + [f"{m}_{c}" for m in methods for c in ("mape_pct", "slope", "efficiency")] + \
        ["crlb_mean"] + [f"{m}_within_1sd_pct" for m in methods]
    sections = [("Summary", summary),
                ("Per metabolite (all SNR)", _html_table(summary_rows(comp), cols)),
                ("MAPE per metabolite", plots.method_bars_figure(comp.metrics, everything)),
                ("Estimated vs true", plots.scatter_figure(comp.truth, comp.estimates, names)),
                ("RMSE vs SNR with the CRLB", plots.error_vs_snr_figure(comp.metrics, names))]
    for name in ("NAA", "Glu"):
        if name in comp.basis.names:
            sections.append((f"Bland-Altman: {name}", plots.bland_altman_figure(comp.truth, comp.estimates, name)))
    result = quest.fit_one(comp.fids[0], comp.basis)
    nn = np.array([comp.estimates["network"][m][0] for m in comp.basis.names])
    sections.append(("Spectrum 0: data, QUEST fit, network reconstruction",
                     plots.comparison_spectrum_figure(result, nn)))
    ratio_cols = ["metabolite"] + [f"{m}_mape_pct" for m in methods]
    sections.append(("Ratios to Cr+PCr (all SNR)", _html_table(summary_rows(comp, quantity="ratio_tCr"), ratio_cols)))
    return plots.report_html(path, "mrs-tf evaluation: network vs QUEST vs CRLB", sections, overwrite=overwrite)


def load_test_data(quantifier, data, truth_csv=None, tfds_dir=None):
    """(basis, fids, truth) from ``data``: ``["tfds:CONFIG"]`` or ``["tfds:CONFIG:SPLIT"]`` (mrs_brain_sim,
    default split test), or data files (NIfTI-MRS, .RAW, jMRUI) with ``truth_csv`` (e.g. ``mrs-tf synth``'s
    ``*_truth.csv``: a column per metabolite and ``snr``, one row per spectrum in file order)."""
    from mrs_tf.core.errors import BasisError, MRSError
    from mrs_tf.io import read_data

    if len(data) == 1 and str(data[0]).startswith("tfds:"):
        from mrs_tf.nn.data import _builder, load

        parts = str(data[0])[5:].split(":")
        config, split = parts[0], (parts[1] if len(parts) > 1 else "test")
        ds = load(config, split, tfds_dir)
        meta = _builder(config, tfds_dir).info.metadata
        proto = dict(meta.get("protocol", {}))
        if proto:  # the data set's protocol, checked as any data file's is
            quantifier.check_protocol(int(proto["n_points"]), float(proto["dwell_s"]), float(proto["field_mhz"]),
                                      proto.get("te_ms"))
        names = list(meta.get("metabolite_names", quantifier.names))
        _require(quantifier.names, names, f"tfds:{config}")
        exs = list(ds.as_numpy_iterator())
        exs.sort(key=lambda e: int(e["index"]))
        fids = np.array([e["fid"][:, 0] + 1j * e["fid"][:, 1] for e in exs], np.complex64)
        conc = np.array([e["concentrations"] for e in exs], float)
        if conc.shape[1] != len(names):
            raise BasisError(f"tfds:{config}: {conc.shape[1]} concentrations per example for {len(names)} names")
        truth = {nm: conc[:, j] for j, nm in enumerate(names)}
        # every stored nuisance parameter (linewidths, shift, phases, noise): the CRLB at the truth needs them
        for key in exs[0]["nuisance"]:
            truth[key] = np.array([e["nuisance"][key] for e in exs], float)
        return quantifier.basis(), fids, truth
    if truth_csv is None:
        raise MRSError("evaluating files needs their ground truth: --truth TRUTH.csv (a column per metabolite and "
                       "snr, one row per spectrum)")
    fids = np.concatenate([read_data(p, field_mhz=quantifier.field_mhz, dwell_s=quantifier.dwell_s)["fids"]
                           for p in data])
    table = ResultTable.read_csv(truth_csv)
    truth = {k: np.asarray(v, float) for k, v in table.items() if np.asarray(v).dtype.kind in "fi"}
    if "snr" not in truth:
        raise MRSError(f"{truth_csv}: no snr column (needed for the SNR bands)")
    if len(truth["snr"]) != len(fids):
        raise MRSError(f"{truth_csv} has {len(truth['snr'])} rows for {len(fids)} spectra")
    _require(quantifier.names, list(truth), str(truth_csv))
    return quantifier.basis(), fids, truth


def _require(needed, present, source: str) -> None:
    """BasisError naming the metabolites of ``needed`` (the model's) that ``source`` has no truth for."""
    from mrs_tf.core.errors import BasisError

    missing = [n for n in needed if n not in present]
    if missing:
        raise BasisError(f"{source} has no ground truth for {', '.join(missing)}, which this model quantifies; "
                         f"evaluate it on data simulated with a basis holding all of {', '.join(needed)}")


def scan_warnings(result, training: dict | None = None) -> list[str]:
    """Warnings for one spectrum from its QUEST fit: low SNR, linewidths or shift outside the network's training
    ranges (``training``: the synthesis dict of ``train_config.json``), structured residual."""
    syn = training or {}
    out = []
    if result.snr < 10:
        out.append(f"SNR {result.snr:.1f} is below 10: expect large errors (see the sd columns)")
    lor = float(np.max(result.lorentz_hz))
    if syn.get("lorentz_hz") and lor > float(syn["lorentz_hz"][1]) * 1.1:
        out.append(f"Lorentzian linewidth {lor:.1f} Hz beyond the training range (up to {syn['lorentz_hz'][1]} Hz)")
    if syn.get("gauss_hz") and result.gauss_hz > float(syn["gauss_hz"][1]) * 1.1:
        out.append(f"Gaussian linewidth {result.gauss_hz:.1f} Hz beyond the training range "
                   f"(up to {syn['gauss_hz'][1]} Hz)")
    shift_ppm = -result.shift_hz / result.field_mhz  # + = the peaks sit at higher ppm (QUEST's shift_ppm column)
    if syn.get("shift_ppm") and abs(shift_ppm) > max(abs(v) for v in syn["shift_ppm"]):
        out.append(f"frequency offset {shift_ppm:+.2f} ppm beyond the training range")
    if result.chi2 > 1.5:
        out.append(f"reduced chi-square {result.chi2:.2f}: the residual has structure (lipids, water, artefacts?)")
    if result.status != "ok":
        out.append(f"QUEST fit status {result.status}: {result.message}")
    return out


def _num(v: float) -> str:
    """A value in a table, readable at any scale (basis units may be 1e-4 or 1e4): four significant digits."""
    return f"{v:.4g}" if np.isfinite(v) else "NaN"


def scan_report(path, table, fids, labels, quantifier, basis, overwrite: bool = False, max_spectra: int = 8,
                fit_options=None):
    """Self-contained HTML report of one quantification run: a table of every spectrum (amplitudes with sd, ratios
    to Cr+PCr, mM when water-scaled), warnings, and for the first ``max_spectra`` spectra the data with the
    network's reconstruction (its amplitudes on the lineshape, shifts and phases of a QUEST fit with
    ``fit_options``, the same preprocessing as the numbers: give the FIDs the network saw) and residual."""
    import json
    from pathlib import Path

    from mrs_tf.reporting import plots
    from mrs_tf.fitting import quest

    names = ["NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins", "Glu+Gln", "NAA+NAAG", "GABA", "Gln", "GSH", "MM"]
    names = [n for n in names if n in table]
    training = {}
    if getattr(quantifier, "folder", None) and (Path(quantifier.folder) / "train_config.json").exists():
        training = json.loads((Path(quantifier.folder) / "train_config.json").read_text()).get("synthesis", {})
    sections, rows, all_warnings = [], [], []
    figures = []
    for i in range(len(fids)):
        row = {"spectrum": labels[i]}
        for n in names:
            v = table[n][i]
            sd = table.get(f"{n}_sd")
            row[n] = _num(v) + (f" ± {_num(sd[i])}" if sd is not None else "")
            if f"{n}_over_tCr" in table and n != "Cr+PCr":
                row[f"{n}/tCr"] = f"{table[f'{n}_over_tCr'][i]:.3f}"
            if f"{n}_mM" in table:
                row[f"{n} mM"] = f"{table[f'{n}_mM'][i]:.2f}"
        if i < max_spectra and np.any(fids[i]):
            result = quest.fit_one(fids[i], basis, fit_options)
            warn = scan_warnings(result, training)
            all_warnings += [f"{labels[i]}: {w}" for w in warn]
            row["QUEST SNR"] = f"{result.snr:.1f}"
            nn = np.array([table[m][i] for m in basis.names])
            figures.append((f"{labels[i]}: data, network reconstruction, residual",
                            plots.comparison_spectrum_figure(result, nn, title=f"{labels[i]} (SNR {result.snr:.0f})")))
        rows.append(row)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    desc = (f"<p>Model: {html.escape(str(getattr(quantifier, 'folder', '')))} "
            f"({html.escape(quantifier.protocol_text())}). Amplitudes in basis units (mM of mrs-tf's basis; "
            "absolute mM only where a water reference was given), ± the network's sigma.</p>")
    sections.append(("Run", desc))
    warn_html = "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in all_warnings) + "</ul>" if all_warnings \
        else "<p>none</p>"
    sections.append(("Warnings", warn_html))
    sections.append(("Concentrations", _html_table(rows, columns)))
    sections += figures
    return plots.report_html(path, "mrs-tf quantification report", sections, overwrite=overwrite)

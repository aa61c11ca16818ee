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

__all__ = ["Comparison", "test_set", "load_test_data", "compare", "write_report", "summary_rows", "crosscheck_rows"]


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


def _html_table(rows: list[dict], columns, fmt="{:.3g}", table_id: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"<td>{html.escape(fmt.format(v) if isinstance(v, (float, np.floating)) else str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    ident = f" id='{table_id}'" if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _rate(seconds_per_spectrum: float) -> str:
    """Spectra per second, readable whether it is 20,000 or 0.4."""
    rate = 1 / seconds_per_spectrum
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.2g}"


def write_report(comp: Comparison, path, overwrite: bool = False):
    """Self-contained HTML: summary, per-metabolite table, bars, scatter, error vs SNR with CRLB, Bland-Altman and
    one spectrum with both fits."""
    from mrs_tf.reporting import plots
    from mrs_tf.fitting import quest

    names = [n for n in HEADLINE if n in comp.basis.names or "+" in n]
    everything = list(comp.basis.names) + [c for c in comp.crlb if "+" in c]
    methods = list(comp.estimates)
    timing = ", ".join(f"{m}: {_rate(s)} spectra/s ({1e3 * s:.3g} ms per spectrum)" for m, s in comp.seconds.items())
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


def metabolite_rows(table, i: int, names) -> list[dict]:
    """One row per metabolite of spectrum ``i`` (the LCModel/FSL-MRS habit): ``metabolite``, ``concentration``
    (basis units), the uncertainty the table has (``sd`` and ``sd %`` of a network, ``CRLB`` and ``CRLB %`` of a
    fit), a network's ``sd vs prior`` (its relative sd over its training prior's; marked where the value is mostly
    that prior), ``/tCr`` and ``mM`` when the table is water-scaled. ``names``: the metabolites and combinations, in
    order; those the table lacks are left out."""
    from mrs_tf.quantify.tables import PRIOR_DOMINATED_RATIO

    rows = []
    for n in names:
        if n not in table:
            continue
        v = float(table[n][i])
        row = {"metabolite": n, "concentration": _num(v)}
        for key, label in ((f"{n}_sd", "sd"), (f"{n}_crlb", "CRLB")):
            if key in table:
                unc = float(table[key][i])
                row[label] = _num(unc)
                row[f"{label} %"] = f"{100 * unc / abs(v):.0f}" if v and np.isfinite(unc) else "NaN"
        if f"{n}_sd_vs_prior" in table:  # a network's: how much the data told it beyond its training prior
            ratio = float(table[f"{n}_sd_vs_prior"][i])
            row["sd vs prior"] = (f"{ratio:.2f}" + (" (mostly the prior)" if ratio >= PRIOR_DOMINATED_RATIO else "")
                                    if np.isfinite(ratio) else "NaN")
        if f"{n}_over_tCr" in table:
            row["/tCr"] = f"{float(table[f'{n}_over_tCr'][i]):.3f}"
        if f"{n}_mM" in table:
            row["mM"] = f"{float(table[f'{n}_mM'][i]):.2f}"
        rows.append(row)
    return rows


def _warnings_html(warnings: list[str]) -> str:
    """Warnings first, in a box people notice (or a quiet line saying there are none)."""
    if not warnings:
        return "<p class='clean'>No warnings.</p>"
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f"<div class='warnings'><strong>{len(warnings)} warning(s)</strong><ul>{items}</ul></div>"


def scan_report(path, table, fids, labels, quantifier, basis, overwrite: bool = False, max_spectra: int = 8,
                fit_options=None):
    """Self-contained HTML report of one quantification run. Warnings come first (a coloured box). One spectrum (a
    single voxel): its figure (data, the network's reconstruction, QUEST's fit, baseline, residuals), then a table
    with one row per metabolite (concentration, sd or CRLB and its %, ratio to tCr, mM when water-scaled). Several
    spectra (batches, MRSI): a wide table, one row per spectrum, in a scrolling frame, then the figures of the first
    ``max_spectra``. The reconstruction puts the network's amplitudes on the lineshape, shifts and phases of a QUEST
    fit with ``fit_options`` (the same preprocessing as the numbers: give the FIDs the network saw)."""
    import json
    from pathlib import Path

    from mrs_tf.fitting import quest
    from mrs_tf.fitting.crlb import combination_rows
    from mrs_tf.reporting import plots

    wide = ["NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins", "Glu+Gln", "NAA+NAAG", "GABA", "Gln", "GSH", "MM"]
    wide = [n for n in wide if n in table]
    training = {}
    if getattr(quantifier, "folder", None) and (Path(quantifier.folder) / "train_config.json").exists():
        training = json.loads((Path(quantifier.folder) / "train_config.json").read_text()).get("synthesis", {})
    rows, all_warnings, figures = [], [], []
    for i in range(len(fids)):
        row = {"spectrum": labels[i]}
        for n in wide:
            v = table[n][i]
            sd = table.get(f"{n}_sd")
            row[n] = _num(v) + (f" ± {_num(sd[i])}" if sd is not None else "")
            if f"{n}_over_tCr" in table and n != "Cr+PCr":
                row[f"{n}/tCr"] = f"{table[f'{n}_over_tCr'][i]:.3f}"
            if f"{n}_mM" in table:
                row[f"{n} mM"] = f"{table[f'{n}_mM'][i]:.2f}"
        if "status" in table and str(table["status"][i]) != "ok":
            all_warnings.append(f"{labels[i]}: status {table['status'][i]}"
                                + (f" ({table['message'][i]})" if "message" in table else ""))
        if i < max_spectra and np.any(fids[i]):
            result = quest.fit_one(fids[i], basis, fit_options)
            warn = scan_warnings(result, training)
            all_warnings += [f"{labels[i]}: {w}" for w in warn]
            row["QUEST SNR"] = f"{result.snr:.1f}"
            nn = np.array([table[m][i] for m in basis.names])
            figures.append((f"{labels[i]}: data, network reconstruction, QUEST fit, baseline, residuals",
                            plots.comparison_spectrum_figure(result, nn, title=f"{labels[i]} (SNR {result.snr:.0f})")))
        rows.append(row)
    desc = (f"<p>Model: {html.escape(str(getattr(quantifier, 'folder', '')))} "
            f"({html.escape(quantifier.protocol_text())}). Concentrations in basis units (mM of mrs-tf's basis; "
            "absolute mM only where a water reference was given); sd is the network's sigma, CRLB a fit's bound.</p>")
    check = crosscheck_rows(table, labels)
    if check:
        desc += ("<h3>The network beside an in vivo fit of the same spectra</h3><p>Ratios to tCr: the network's "
                 "(± its sigma), the cross-check fit's (± its CRLB), and their difference; status "
                 "<code>fit_disagrees</code> where they differ beyond the tolerance and 2 sigma of the two.</p>"
                 + _html_table(check, list(check[0]), table_id="crosscheck"))
    names = list(quantifier.names) + [c for c in combination_rows(quantifier.names) if c not in quantifier.names]
    return _voxel_report(path, "mrs-tf quantification report", table, rows, names, all_warnings, desc, figures,
                         overwrite)


def crosscheck_rows(table, labels, max_rows: int = 64) -> list[dict]:
    """One row per spectrum (at most ``max_rows``) with each headline ratio to tCr of the network and of its
    cross-check fit (``crosscheck_fit_*`` columns, :func:`mrs_tf.quantify.crosscheck.cross_check`) and their
    difference in %; [] when the table has no cross-check."""
    from mrs_tf.quantify.crosscheck import TOLERANCE, ratio_rel_sd

    names = [n for n in TOLERANCE if f"crosscheck_fit_{n}_over_tCr" in table and f"{n}_over_tCr" in table]
    rows = []
    for i in range(min(len(labels), max_rows)):
        if not names:
            break
        row = {"spectrum": labels[i]}
        for n in names:
            net, fit = float(table[f"{n}_over_tCr"][i]), float(table[f"crosscheck_fit_{n}_over_tCr"][i])
            rel = float(ratio_rel_sd(table, n, "_sd")[i])
            crlb = float(table[f"crosscheck_fit_{n}_over_tCr_rel_crlb"][i])
            row[f"{n}/tCr network"] = f"{net:.3f}" + (f" ± {100 * rel:.0f} %" if np.isfinite(rel) else "")
            row[f"{n}/tCr fit"] = f"{fit:.3f} ± {100 * crlb:.0f} %" if np.isfinite(fit) else "no fit"
            row[f"{n} diff"] = f"{100 * (net / fit - 1):+.0f} %" if np.isfinite(fit) and fit > 0 else ""
        if "status" in table:
            row["status"] = str(table["status"][i])
        rows.append(row)
    return rows


def _voxel_report(path, title: str, table, rows: list[dict], names, warnings: list[str], desc: str, figures,
                  overwrite: bool):
    """The layout every scan report shares: warnings first; one spectrum: its figure(s), then one row per metabolite
    of ``names``; several: the wide table of ``rows`` (one per spectrum) in a scrolling frame, then the figures."""
    from mrs_tf.reporting import plots

    sections = [("Warnings", _warnings_html(warnings)), ("Run", desc)]
    if len(rows) == 1:
        met_rows = metabolite_rows(table, 0, names)
        columns = list(dict.fromkeys(k for r in met_rows for k in r))
        sections += list(figures) + [("Concentrations", _html_table(met_rows, columns, table_id="concentrations"))]
    else:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        frame = f"<div class='scroll'>{_html_table(rows, columns, table_id='concentrations')}</div>"
        sections += [("Concentrations", frame)] + list(figures)
    return plots.report_html(path, title, sections, overwrite=overwrite)


def fit_report(path, table, fids, labels, basis, options=None, overwrite: bool = False, max_spectra: int = 8):
    """Self-contained HTML report of a QUEST fit run (``mrs-tf fit --report``), laid out as :func:`scan_report`:
    warnings first (fits that are not ``ok`` and what :func:`scan_warnings` finds), then for one spectrum the fit
    (data, fit, residual, background, each metabolite) and one row per metabolite with its CRLB; for several, the
    wide table in a scrolling frame and the fits of the first ``max_spectra``. ``table``: :func:`mrs_tf.quest.fit`'s
    rows for ``fids`` (refitted here with ``options`` for the figures only)."""
    from mrs_tf.fitting import quest
    from mrs_tf.fitting.crlb import combination_rows

    wide = [n for n in ("NAA+NAAG", "Cr+PCr", "GPC+PCh", "Glu", "Ins", "Glu+Gln", "GABA", "Gln", "GSH") if n in table]
    rows, warnings, figures = [], [], []
    for i in range(len(fids)):
        row = {"spectrum": labels[i], "status": str(table["status"][i])}
        for n in wide:
            row[n] = _num(float(table[n][i]))
            if f"{n}_crlb_pct" in table:
                row[f"{n} CRLB %"] = f"{float(table[f'{n}_crlb_pct'][i]):.0f}"
            if f"{n}_over_tCr" in table and n != "Cr+PCr":
                row[f"{n}/tCr"] = f"{float(table[f'{n}_over_tCr'][i]):.3f}"
            if f"{n}_mM" in table:
                row[f"{n} mM"] = f"{float(table[f'{n}_mM'][i]):.2f}"
        rows.append(row)
        if i < max_spectra and np.any(fids[i]):
            result = quest.fit_one(fids[i], basis, options)
            warnings += [f"{labels[i]}: {w}" for w in scan_warnings(result)]
            figures.append((f"{labels[i]}: data, fit, residual, baseline, metabolites",
                            result.figure(title=f"{labels[i]} (SNR {result.snr:.0f}, {result.status})")))
        elif str(table["status"][i]) != "ok":
            warnings.append(f"{labels[i]}: QUEST fit status {table['status'][i]}")
    proto = basis.protocol
    desc = (f"<p>QUEST fit with {html.escape(str(proto.get('loaded_from', 'the basis set')))} "
            f"({basis.n_metabolites} signals, {basis.field_mhz:g} MHz, {basis.n_points} points). Concentrations in "
            "basis units (absolute mM only where a water reference was given), ± the Cramér-Rao lower bound; a fit "
            "that is not ok has no CRLB (NaN).</p>")
    names = list(basis.names) + [c for c in combination_rows(basis.names) if c not in basis.names]
    return _voxel_report(path, "mrs-tf QUEST fit report", table, rows, names, warnings, desc, figures, overwrite)

"""Plotly figures of spectra and basis sets, in ppm with the axis reversed as MRS readers expect."""
from __future__ import annotations

import numpy as np

from mrs_tf.fitting.figure import quest_figure
from mrs_tf.physics.basis import BasisSet

__all__ = ["basis_figure", "spectrum_figure", "quest_figure", "scatter_figure", "error_vs_snr_figure",
           "bland_altman_figure", "method_bars_figure", "comparison_spectrum_figure", "write_html", "report_html", "setup_notebook"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def setup_notebook() -> str:
    """Choose the plotly renderer that works where the notebook runs: ``colab`` on Google Colab, else
    ``plotly_mimetype+notebook`` (JupyterLab renders the plotly MIME bundle; classic Jupyter, VS Code and exported
    HTML use the embedded-JavaScript copy, which needs no network). Returns the renderer's name."""
    import sys

    import plotly.io as pio

    pio.renderers.default = "colab" if "google.colab" in sys.modules else "plotly_mimetype+notebook"
    return pio.renderers.default


def _layout(fig, title: str, ppm_range=(4.2, 0.2)):
    fig.update_layout(title=title, xaxis_title="chemical shift (ppm)", yaxis_title="signal (a.u.)",
                      template="plotly_white", hovermode="closest")
    fig.update_xaxes(autorange=False, range=list(ppm_range))
    return fig


def basis_figure(basis: BasisSet, linewidth_hz: float = 2.0, ppm_range=(4.2, 0.2), offset: float | None = None):
    """Real part of every basis spectrum (Lorentzian-broadened by ``linewidth_hz``), stacked with an offset.

    Hovering a trace shows the metabolite's name and ppm.
    """
    import plotly.graph_objects as go

    env = np.exp(-np.pi * linewidth_hz * basis.time)
    spectra = np.fft.fftshift(np.fft.fft(basis.fids * env, axis=1), axes=1).real
    ppm = basis.ppm
    sel = (ppm <= max(ppm_range)) & (ppm >= min(ppm_range))
    step = offset if offset is not None else float(np.abs(spectra[:, sel]).max()) * 0.6
    from plotly.colors import qualitative

    palette = qualitative.Dark24 + qualitative.Light24  # one colour per signal (plotly's default cycles 10)
    fig = go.Figure()
    for k, name in enumerate(basis.names):
        colour = palette[k % len(palette)]
        fig.add_trace(go.Scatter(x=ppm[sel], y=spectra[k, sel] - k * step, name=name, mode="lines",
                                 line=dict(color=colour, width=1.2),
                                 hovertemplate=f"{name}<br>%{{x:.3f}} ppm<extra></extra>"))
        # the name on the trace itself, at the spectrum's high-ppm edge (a stack of 21 is not read by legend)
        fig.add_annotation(x=max(ppm_range), y=-k * step + 0.25 * step, text=name, showarrow=False,
                           xanchor="left", font=dict(size=10, color=colour))
    proto = basis.protocol
    te = f", TE {proto['te_ms']:g} ms" if proto.get("te_ms") is not None else ""
    return _layout(fig, f"Basis set: {proto.get('sequence', 'basis')}{te}, {basis.field_mhz:g} MHz", ppm_range)


def spectrum_figure(fids, ppm: np.ndarray, labels=None, ppm_range=(4.2, 0.2), title: str = "Spectra"):
    """Real part of ``np.fft.fftshift(np.fft.fft(fid))`` of one or several FIDs."""
    import plotly.graph_objects as go

    fids = np.atleast_2d(fids)
    spectra = np.fft.fftshift(np.fft.fft(fids, axis=1), axes=1)
    fig = go.Figure()
    for k, spec in enumerate(spectra):
        label = labels[k] if labels is not None else f"spectrum {k}"
        fig.add_trace(go.Scatter(x=ppm, y=spec.real, name=label, mode="lines"))
    return _layout(fig, title, ppm_range)


def _grid(names, cols: int = 3):
    from plotly.subplots import make_subplots

    rows = (len(names) + cols - 1) // cols
    return make_subplots(rows=rows, cols=cols, subplot_titles=list(names), horizontal_spacing=0.07,
                         vertical_spacing=0.5 / max(rows, 1)), rows, cols


def scatter_figure(truth: dict, estimates: dict, names, title: str = "Estimated vs true"):
    """Estimate against truth per metabolite (one panel each, every method a colour) with the identity line."""
    import plotly.graph_objects as go

    from mrs_tf.reporting.evaluate import truth_value

    fig, rows, cols = _grid(names)
    for k, name in enumerate(names):
        r, c = k // cols + 1, k % cols + 1
        tru = truth_value(truth, name)
        lo, hi = float(np.min(tru)), float(np.max(tru))
        for j, (method, table) in enumerate(estimates.items()):
            fig.add_trace(go.Scattergl(x=tru, y=np.asarray(table[name]), mode="markers", name=method,
                                       legendgroup=method, showlegend=k == 0,
                                       marker=dict(size=3, opacity=0.5, color=_COLOURS[j % len(_COLOURS)]),
                                       hovertemplate=f"{method} {name}: true %{{x:.3g}}, est %{{y:.3g}}<extra></extra>"),
                          r, c)
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="black", dash="dash"),
                                 name="identity", showlegend=k == 0, legendgroup="identity"), r, c)
    fig.update_layout(title=title, template="plotly_white", height=280 * rows)
    fig.update_xaxes(title_text="true (basis units)", title_font_size=11)
    fig.update_yaxes(title_text="estimated", title_font_size=11)
    return fig


def error_vs_snr_figure(metrics_table, names, quantity: str = "amplitude", title: str = "RMSE vs SNR"):
    """RMSE of each method per SNR band (band mid-point on x) with the mean CRLB of the band (the physical
    limit), per metabolite; ``metrics_table`` from :func:`mrs_tf.evaluate.evaluate` with ``crlb``."""
    import plotly.graph_objects as go

    fig, rows, cols = _grid(names)
    t = metrics_table
    methods = list(dict.fromkeys(t["method"]))
    for k, name in enumerate(names):
        r, c = k // cols + 1, k % cols + 1
        for j, method in enumerate(methods):
            sel = [i for i in range(t.n_rows) if t["method"][i] == method and t["metabolite"][i] == name
                   and t["quantity"][i] == quantity and t["snr_band"][i] != "all"]
            mids = [np.mean([float(v) for v in t["snr_band"][i].split("-")]) for i in sel]
            rmse = [t["rmse"][i] for i in sel]
            fig.add_trace(go.Scatter(x=mids, y=rmse, mode="lines+markers", name=method, legendgroup=method,
                                     showlegend=k == 0, line=dict(color=_COLOURS[j % len(_COLOURS)])), r, c)
            eff = np.array([t["efficiency"][i] for i in sel], float)
            if j == 0 and np.all(np.isfinite(eff)):
                fig.add_trace(go.Scatter(x=mids, y=np.array(rmse) / eff, mode="lines+markers", name="CRLB",
                                         legendgroup="CRLB", showlegend=k == 0,
                                         line=dict(color="black", dash="dot")), r, c)
    fig.update_xaxes(title_text="SNR")
    fig.update_layout(title=title, template="plotly_white", height=280 * rows)
    return fig


def bland_altman_figure(truth: dict, estimates: dict, name: str):
    """Bland-Altman plot of one metabolite: difference (estimate - truth) against the mean of the two, with the
    bias and the 95 % limits of agreement (bias +- 1.96 sd) of each method."""
    import plotly.graph_objects as go

    from mrs_tf.reporting.evaluate import truth_value

    tru = truth_value(truth, name)
    fig = go.Figure()
    for j, (method, table) in enumerate(estimates.items()):
        est = np.asarray(table[name], float)
        diff, mean = est - tru, (est + tru) / 2
        colour = _COLOURS[j % len(_COLOURS)]
        fig.add_trace(go.Scattergl(x=mean, y=diff, mode="markers", name=method,
                                   marker=dict(size=3, opacity=0.5, color=colour)))
        bias, sd = float(np.nanmean(diff)), float(np.nanstd(diff))
        for level, dash in ((bias, "solid"), (bias - 1.96 * sd, "dash"), (bias + 1.96 * sd, "dash")):
            fig.add_hline(y=level, line=dict(color=colour, dash=dash, width=1))
    fig.update_layout(title=f"Bland-Altman: {name} (lines: bias and 95 % limits of agreement)",
                      xaxis_title=f"mean of estimate and truth ({name})", yaxis_title="estimate - truth",
                      template="plotly_white")
    return fig


def method_bars_figure(metrics_table, names, column: str = "mape_pct", band: str = "all",
                       quantity: str = "amplitude"):
    """Bar chart of one metric (default MAPE %) per metabolite, a bar per method."""
    import plotly.graph_objects as go

    t = metrics_table
    fig = go.Figure()
    for j, method in enumerate(dict.fromkeys(t["method"])):
        values = []
        for name in names:
            hit = [t[column][i] for i in range(t.n_rows) if t["method"][i] == method and t["metabolite"][i] == name
                   and t["snr_band"][i] == band and t["quantity"][i] == quantity]
            values.append(hit[0] if hit else np.nan)
        fig.add_trace(go.Bar(x=list(names), y=values, name=method, marker_color=_COLOURS[j % len(_COLOURS)]))
    fig.update_layout(title=f"{column} per metabolite (SNR band {band})", yaxis_title=column, barmode="group",
                      template="plotly_white")
    return fig


def comparison_spectrum_figure(result, network_amplitudes, ppm_range=(4.2, 0.2), title: str | None = None):
    """One spectrum: data, QUEST fit, the network's reconstruction and both residuals, in ppm (axis reversed).

    The network gives amplitudes only; its reconstruction puts them on QUEST's fitted lineshapes, shifts and
    phases (each basis function ``contribution / amplitude`` of the QUEST result) plus QUEST's background."""
    import plotly.graph_objects as go

    from mrs_tf.physics.basis import ppm_axis

    n = len(result.data)
    ppm = ppm_axis(n, result.dwell_s, result.field_mhz, result.ref_ppm)
    sel = (ppm <= max(ppm_range)) & (ppm >= min(ppm_range))
    amps = np.asarray(result.amplitudes, float)
    shapes = np.where(np.abs(amps)[:, None] > 1e-12, result.contributions / np.where(amps == 0, 1, amps)[:, None], 0)
    network_fit = np.asarray(network_amplitudes, float) @ shapes + result.background

    def spec(fid):
        return np.fft.fftshift(np.fft.fft(fid)).real[sel]

    data = spec(result.data)
    offset = 1.1 * float(max(np.abs(data).max(), 1e-30))
    fig = go.Figure()
    for name, y, colour in (("data", data, "#444"), ("QUEST fit", spec(result.fit), "#d62728"),
                            ("network reconstruction", spec(network_fit), "#1f77b4"),
                            ("baseline", spec(result.background), "#9467bd"),
                            ("QUEST residual (offset)", data - spec(result.fit) + offset, "#ff9896"),
                            ("network residual (offset)", data - spec(network_fit) + 1.5 * offset, "#aec7e8")):
        fig.add_trace(go.Scatter(x=ppm[sel], y=y, name=name, mode="lines", line=dict(color=colour, width=1.2)))
    return _layout(fig, title or f"Spectrum (SNR {result.snr:.0f}): network vs QUEST", ppm_range)


def report_html(path, title: str, sections, overwrite: bool = False):
    """A self-contained HTML report: ``sections`` is a list of ``(heading, figure or HTML string)``; plotly.js is
    embedded once, so the file opens offline."""
    import html as _html

    from mrs_tf.core.files import atomic_output

    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse;"
             "font-size:13px}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
             "th{background:#f4f4f4;position:sticky;top:0}td:first-child{text-align:left}"
             ".scroll{overflow:auto;max-height:60vh;max-width:100%;border:1px solid #ddd}"
             ".warnings{background:#fdecea;border-left:6px solid #c62828;color:#7f1d1d;padding:.6em 1em;"
             "margin:.5em 0}.clean{color:#2e7d32}</style></head><body>",
             f"<h1>{_html.escape(title)}</h1>"]
    first = True
    for heading, item in sections:
        parts.append(f"<h2>{_html.escape(heading)}</h2>")
        if isinstance(item, str):
            parts.append(item)
        else:
            parts.append(item.to_html(full_html=False, include_plotlyjs=True if first else False))
            first = False
    parts.append("</body></html>")
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_html(fig, path, overwrite: bool = False):
    """Self-contained HTML (plotly.js embedded, works offline), written atomically."""
    from mrs_tf.core.files import atomic_output

    with atomic_output(path, overwrite) as tmp:
        fig.write_html(str(tmp), include_plotlyjs=True, full_html=True)
    return path

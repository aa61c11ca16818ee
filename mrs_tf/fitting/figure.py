"""The figure of one fit, with the fit because a fit result draws itself (``QuestResult.figure()``); every other
figure is in :mod:`mrs_tf.reporting.plots`, which re-exports this one."""
from __future__ import annotations

import numpy as np

from mrs_tf.physics.basis import ppm_axis

__all__ = ["quest_figure"]


def quest_figure(result, ppm_range=(4.2, 0.2), title: str | None = None, show_below: float = 0.02):
    """A QUEST fit (:class:`mrs_tf.quest.QuestResult`) in ppm: data, fit, residual and background on top, then
    every metabolite's contribution below (those under ``show_below`` of the tallest are listed but hidden)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    n = len(result.data)
    ppm = ppm_axis(n, result.dwell_s, result.field_mhz, result.ref_ppm)
    sel = (ppm <= max(ppm_range)) & (ppm >= min(ppm_range))

    def spec(fid):
        return np.fft.fftshift(np.fft.fft(fid)).real[sel]

    x = ppm[sel]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.55, 0.45],
                        subplot_titles=("data, fit, residual", "metabolite contributions"))
    data, fit = spec(result.data), spec(result.fit)
    offset = 1.1 * float(max(np.abs(data).max(), 1e-30))
    traces = [("data", data, "#444"), ("fit", fit, "#d62728"), ("background", spec(result.background), "#9467bd"),
              ("residual (offset)", data - fit + offset, "#7f7f7f")]
    for name, y, colour in traces:
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", line=dict(color=colour, width=1.2)), 1, 1)
    contributions = np.fft.fftshift(np.fft.fft(result.contributions, axis=1), axes=1).real[:, sel]
    tallest = float(np.abs(contributions).max()) or 1.0
    for k, name in enumerate(result.names):
        amp, crlb = result.amplitudes[k], result.crlb[k]
        visible = True if np.abs(contributions[k]).max() >= show_below * tallest else "legendonly"
        fig.add_trace(go.Scatter(x=x, y=contributions[k], name=f"{name} {amp:.2f} ± {crlb:.2f}", mode="lines",
                                 visible=visible, legendgroup="metabolites",
                                 hovertemplate=f"{name}: {amp:.3g} (CRLB {crlb:.2g})<br>%{{x:.3f}} ppm<extra></extra>"),
                      2, 1)
    fig.update_layout(title=title or f"QUEST fit ({result.status}, SNR {result.snr:.0f}, "
                                     f"phase {result.phase0_deg:.0f}°, chi2 {result.chi2:.2f})",
                      template="plotly_white", hovermode="closest", height=750)
    fig.update_xaxes(autorange=False, range=list(ppm_range))
    fig.update_xaxes(title_text="chemical shift (ppm)", row=2, col=1)
    fig.update_yaxes(title_text="signal (a.u.)")
    return fig

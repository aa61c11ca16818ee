"""mrs-tf evaluate: network vs QUEST vs CRLB on the same spectra, metrics CSV and a self-contained HTML report."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from mrs_tf.cli import main  # noqa: E402
from mrs_tf.table import ResultTable  # noqa: E402

MODEL = str(Path(__file__).resolve().parents[1] / "saved_models" / "press3t_te30")


def test_evaluate_writes_metrics_and_an_offline_report(tmp_path, capsys):
    report = tmp_path / "report.html"
    assert main(["evaluate", "--model", MODEL, "--n", "24", "--snr", "40", "100", "--seed", "3", "--n-jobs", "1",
                 "--report", str(report)]) == 0
    text = report.read_text()
    assert "Plotly.newPlot" in text and "<script src=" not in text  # plotly.js embedded, nothing fetched
    for name in ("NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins", "Bland-Altman", "CRLB", "QUEST"):
        assert name in text
    table = ResultTable.read_csv(tmp_path / "report.csv")
    assert set(table["method"]) == {"network", "QUEST"}
    rows = {(table["method"][i], table["metabolite"][i]): table.row(i) for i in range(table.n_rows)
            if table["snr_band"][i] == "all" and table["quantity"][i] == "amplitude"}
    # both estimators find NAA at SNR 40-100 within a few percent; QUEST's RMSE is near its bound
    assert rows[("network", "NAA")]["mape_pct"] < 6 and rows[("QUEST", "NAA")]["mape_pct"] < 6
    assert 0.4 < rows[("QUEST", "NAA")]["efficiency"] < 2.5
    assert rows[("network", "NAA")]["within_1sd_pct"] > 30
    out = capsys.readouterr().out
    assert "MAPE network" in out and "QUEST" in out
    assert main(["evaluate", "--model", MODEL, "--n", "8", "--report", str(report), "--no-quest"]) == 2


def test_evaluate_files_with_a_truth_csv(tmp_path):
    data = tmp_path / "sim.nii.gz"
    assert main(["synth", "--n", "6", "--snr", "60", "--seed", "1", "--out", str(data)]) == 0
    out = tmp_path / "m.csv"
    assert main(["evaluate", "--model", MODEL, "--data", str(data), "--truth", str(tmp_path / "sim_truth.csv"),
                 "--no-quest", "--out", str(out)]) == 0
    table = ResultTable.read_csv(out)
    assert set(table["method"]) == {"network"}
    n_all = [table["n"][i] for i in range(table.n_rows) if table["snr_band"][i] == "all"]
    assert len(n_all) > 20 and np.all(np.asarray(n_all, float) == 6)
    assert main(["evaluate", "--model", MODEL, "--data", str(data), "--no-quest", "--out",
                 str(tmp_path / "x.csv")]) == 2


def test_evaluate_refuses_ground_truth_without_the_models_metabolites(tmp_path, capsys):
    data = tmp_path / "sim.nii.gz"
    assert main(["synth", "--n", "3", "--snr", "60", "--seed", "2", "--out", str(data)]) == 0
    full = ResultTable.read_csv(tmp_path / "sim_truth.csv")
    ResultTable({k: v for k, v in full.items() if k not in ("GABA", "GSH")}).to_csv(tmp_path / "partial.csv")
    capsys.readouterr()
    out = tmp_path / "m.csv"
    assert main(["evaluate", "--model", MODEL, "--data", str(data), "--truth", str(tmp_path / "partial.csv"),
                 "--no-quest", "--out", str(out)]) == 2
    assert "no ground truth for GABA, GSH, which this model quantifies" in capsys.readouterr().err
    assert not out.exists()

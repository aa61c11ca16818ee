"""The mrs-tf command line: basis simulate / info, synth; errors exit with status 2 and change nothing."""
import json
import subprocess
import sys

import numpy as np
import pytest

from mrs_tf.cli import main


def test_basis_simulate_info_and_plot(tmp_path, capsys):
    out = tmp_path / "lac.BASIS"
    assert main(["basis", "simulate", "--metabolites", "Lac", "NAA", "--out", str(out),
                 "--plot", str(tmp_path / "b.html")]) == 0
    assert out.exists()
    html = (tmp_path / "b.html").read_text()
    assert "plotly" in html and "Lac" in html
    capsys.readouterr()
    assert main(["basis", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["names"] == ["Lac", "NAA"] and info["n_points"] == 2048
    assert info["field_mhz"] == pytest.approx(123.2) and info["dwell_s"] == pytest.approx(2.5e-4)


def test_refuses_to_overwrite_and_reports_bad_input(tmp_path, capsys):
    out = tmp_path / "b.BASIS"
    out.write_text("precious")
    assert main(["basis", "simulate", "--metabolites", "Cr", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "precious"
    assert main(["basis", "simulate", "--metabolites", "tCho", "--out", str(tmp_path / "x.BASIS")]) == 2
    assert "sum of metabolites" in capsys.readouterr().err
    assert main(["basis", "simulate", "--te-ms", "-5", "--out", str(tmp_path / "y.BASIS")]) == 2
    assert "non-negative" in capsys.readouterr().err
    assert not (tmp_path / "x.BASIS").exists() and not (tmp_path / "y.BASIS").exists()
    assert main(["basis", "info", str(tmp_path / "b.BASIS")]) == 2
    assert "not an LCModel" in capsys.readouterr().err


def test_synth_writes_nifti_and_truth(tmp_path):
    from mrs_tf.io import nifti

    out = tmp_path / "sim.nii.gz"
    assert main(["synth", "--n", "5", "--seed", "1", "--snr", "50", "--out", str(out)]) == 0
    data = nifti.read(out)
    assert data["data"].shape == (5, 1, 1, 2048)
    assert data["field_mhz"] == pytest.approx(123.2)
    rows = (tmp_path / "sim_truth.csv").read_text().splitlines()
    assert rows[0].startswith("index,Ala,Asc") and len(rows) == 6
    from mrs_tf import simulate_basis, synthesize

    fids, truth = synthesize(simulate_basis(), n=5, snr=50, seed=1)
    np.testing.assert_allclose(data["data"][:, 0, 0], fids, rtol=1e-6)


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "mrs_tf.cli", "basis", "info", "/nonexistent.BASIS"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "no such file" in result.stderr

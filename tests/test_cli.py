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
    assert main(["synth", "--n", "1", "--out", str(tmp_path / "s.nii.gz")]) == 0
    capsys.readouterr()
    assert main(["quantify", str(tmp_path / "s.nii.gz"), "--shift-average", "0", "--out", str(tmp_path / "q.csv")]) == 2
    assert "--shift-average must be 1 or more" in capsys.readouterr().err and not (tmp_path / "q.csv").exists()


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


def test_fit_quest_nifti_raw_and_jmrui(tmp_path, capsys, basis):
    from mrs_tf import synthesize
    from mrs_tf.io import jmrui, lcmodel
    from mrs_tf.table import ResultTable

    basis_path = tmp_path / "b.BASIS"
    basis.save(basis_path)
    data = tmp_path / "d.nii.gz"
    assert main(["synth", "--n", "4", "--snr", "120", "--seed", "3", "--out", str(data)]) == 0
    fids, truth = synthesize(basis, 4, snr=120, seed=3)
    raw = tmp_path / "one.RAW"
    lcmodel.write_raw(raw, fids[0])  # no header: field and dwell come from the command line
    txt = tmp_path / "two.txt"
    jmrui.write_text(txt, fids[:2], basis.dwell_s, basis.field_mhz)
    out = tmp_path / "results.csv"
    assert main(["fit", "--method", "quest", "--basis", str(basis_path), str(data), str(raw), str(txt),
                 "--bandwidth-hz", "4000", "--field-mhz", "123.2", "--out", str(out), "--n-jobs", "1",
                 "--plot", str(tmp_path / "fit.html")]) == 0
    table = ResultTable.read_csv(out)
    assert list(table["spectrum"]) == ["d.nii.gz[0:0:0]", "d.nii.gz[1:0:0]", "d.nii.gz[2:0:0]", "d.nii.gz[3:0:0]",
                                       "one.RAW", "two.txt[0]", "two.txt[1]"]
    assert set(table["status"]) == {"ok"}
    for col in ("NAA", "NAA_crlb", "NAA_over_tCr", "Cr+PCr", "GPC+PCh_crlb", "phase0_deg", "status"):
        assert col in table
    expected = np.r_[truth["NAA"], truth["NAA"][:1], truth["NAA"][:2]]
    assert np.all(np.abs(table["NAA"] - expected) < 4 * table["NAA_crlb"])
    # the same spectrum read from three formats gives the same numbers
    np.testing.assert_allclose(table["NAA"][[4, 5]], table["NAA"][0], rtol=1e-6)
    assert "QUEST fit" in (tmp_path / "fit.html").read_text()
    capsys.readouterr()
    assert main(["fit", "--basis", str(basis_path), str(data), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["fit", "--basis", str(basis_path), str(raw), "--out", str(tmp_path / "r2.csv")]) == 2
    assert "--bandwidth-hz" in capsys.readouterr().err
    assert not (tmp_path / "r2.csv").exists()


def test_quantify_with_a_trained_folder(tmp_path, capsys, basis):
    from mrs_tf.models import seed_cnn
    from mrs_tf.table import ResultTable
    from mrs_tf.train import TrainConfig, _quantifier_meta, _write_json

    folder = tmp_path / "q"
    folder.mkdir()
    model = seed_cnn(n_outputs=25, filters=(4,), dense_units=8, uncertainty=True)  # 21 + the 4 combinations
    model.save(folder / "model.keras")
    _write_json(folder / "quantifier.json", _quantifier_meta(basis, TrainConfig(), model))
    data = tmp_path / "d.nii.gz"
    assert main(["synth", "--n", "3", "--snr", "50", "--out", str(data)]) == 0
    out = tmp_path / "r.csv"
    assert main(["quantify", str(data), "--model", str(folder), "--out", str(out)]) == 0
    table = ResultTable.read_csv(out)
    assert table.n_rows == 3 and {"NAA", "NAA_sd", "NAA_over_tCr", "Cr+PCr_sd"} <= set(table)
    capsys.readouterr()
    assert main(["quantify", str(data), "--model", str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2
    assert "no model.keras" in capsys.readouterr().err


def test_overwrite_into_a_folder_replaces_only_what_the_command_writes(tmp_path, basis):
    """--overwrite into a folder holding other files (the input scan, the model being exported) keeps them."""
    import shutil

    from mrs_tf import BasisSet, synthesize
    from mrs_tf.errors import FileFormatError
    from mrs_tf.io import nifti

    study = tmp_path / "study"
    study.mkdir()
    fids, _ = synthesize(basis, 2, snr=60, seed=3)
    scan = study / "scan.nii.gz"
    nifti.write(scan, fids.reshape(2, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz, te_s=0.03)
    (study / "notes.txt").write_text("mine")
    assert main(["quantify", str(scan), "--out", str(tmp_path / "m.csv"), "--maps", str(study), "--overwrite"]) == 0
    assert scan.exists() and (study / "notes.txt").read_text() == "mine" and (study / "NAA.nii.gz").exists()
    # a basis folder: the user's own file stays
    folder = tmp_path / "fsl"
    folder.mkdir()
    (folder / "README").write_text("mine")
    assert main(["basis", "simulate", "--metabolites", "NAA", "Cr", "--out", str(folder), "--overwrite"]) == 0
    assert (folder / "README").read_text() == "mine" and (folder / "NAA.json").exists()
    # the model being exported survives a SavedModel export into its own folder
    model = tmp_path / "mc"
    shutil.copytree("saved_models/press3t_te30", model)
    assert main(["export", str(model), "--format", "saved_model", "--out", str(model), "--overwrite"]) == 0
    assert (model / "model.keras").exists() and (model / "model_card.md").exists()
    assert (model / "saved_model.pb").exists()
    # a metabolite name that is a path would write outside the folder: refused, nothing written
    evil = BasisSet(["NAA", "../../evil"], basis.fids[:2], basis.dwell_s, basis.field_mhz)
    with pytest.raises(FileFormatError, match="cannot be a file name"):
        evil.save(tmp_path / "out" / "b")
    assert not (tmp_path / "evil.json").exists() and not (tmp_path / "out").exists()


def test_a_refused_run_writes_nothing_and_a_basis_without_glu_is_warned_about(tmp_path, capsys, basis):
    from mrs_tf import synthesize
    from mrs_tf.io import nifti

    fids, _ = synthesize(basis, 1, snr=60, seed=4)
    data = tmp_path / "d.nii.gz"
    nifti.write(data, fids.reshape(1, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz, te_s=0.03)
    # the report's folder does not exist: refused before the CSV is written, so the rerun is not blocked
    assert main(["quantify", str(data), "--out", str(tmp_path / "r.csv"), "--report",
                 str(tmp_path / "missing" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "r.csv").exists()
    basis.subset([n for n in basis.names if n != "Glu"]).save(tmp_path / "noglu.BASIS")
    assert main(["fit", "--basis", str(tmp_path / "noglu.BASIS"), str(data), "--out", str(tmp_path / "q.csv"),
                 "--n-jobs", "1"]) == 0
    assert "has no Glu" in capsys.readouterr().err


def test_loading_a_model_keeps_tensorflows_start_up_lines_off_stderr():
    # TensorFlow 2.21 writes oneDNN/CUDA notices from C++ before logging is set up; TF_CPP_MIN_LOG_LEVEL misses them
    proc = subprocess.run([sys.executable, "-c", "from mrs_tf import Quantifier; "
                           "Quantifier.load('saved_models/press3t_te30'); print('loaded')"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stderr[-1500:]
    for noise in ("oneDNN", "cuda drivers", "cuInit", "absl::InitializeLog"):
        assert noise not in proc.stderr, proc.stderr[-1500:]


def test_export_prints_what_it_wrote_and_nothing_else(tmp_path):
    # the converter's SavedModel step printed "Saved artifact at ...", endpoints and TensorSpec lines on stdout
    proc = subprocess.run([sys.executable, "-m", "mrs_tf.cli", "export", "saved_models/press3t_te30", "--out",
                           str(tmp_path / "m.tflite")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert proc.stdout.strip().splitlines() == [f"wrote {tmp_path / 'm.tflite'} "
                                                f"({(tmp_path / 'm.tflite').stat().st_size // 1024} KiB)"]
    for noise in ("TensorSpec", "Saved artifact", "cuInit", "oneDNN", "absl"):
        assert noise not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-1500:]


def test_frequency_mirrored_data_are_refused_with_the_way_out(tmp_path, capsys, basis):
    # a file in the other sign convention gave NAA -90 % with exit 0; now: exit 2 naming it, --conjugate reads it
    from mrs_tf import synthesize
    from mrs_tf.io import nifti

    fids, truth = synthesize(basis, 2, snr=40, seed=8)
    data = tmp_path / "mirrored.nii.gz"
    nifti.write(data, np.conj(fids).reshape(2, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz,
                te_s=0.03)
    out = tmp_path / "m.csv"
    assert main(["quantify", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 of 2 spectra look frequency-mirrored" in err and "--conjugate" in err and not out.exists()
    assert main(["quantify", str(data), "--conjugate", "--out", str(out)]) == 0
    import csv

    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    naa = np.array([float(r["NAA+NAAG"]) for r in rows])
    np.testing.assert_allclose(naa, truth["NAA"] + truth["NAAG"], rtol=0.15)


def test_every_command_prints_its_help():
    """--help of every command and sub-command formats (a bare % in a help text made `quantify --help` crash)."""
    import argparse

    from mrs_tf.cli.commands import _parser

    def walk(parser, path):
        parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, path + [name])
        yield path

    seen = list(walk(_parser(), []))
    assert ["quantify"] in seen and ["basis", "simulate"] in seen and len(seen) > 8


def test_synth_files_say_how_they_were_made_and_quantify_fits_them_with_those_pulses(tmp_path):
    """mrs-tf synth records its basis's source and refocusing pulses in the NIfTI-MRS header; quantify --fit-pulse
    auto fits such a file with the pulses that made it and any other (scanner) file with shaped pulses."""
    from mrs_tf.cli.fit import SCANNER_FIT_PULSE, fit_pulse_for
    from mrs_tf.io import read_data

    out = tmp_path / "s.nii.gz"
    assert main(["synth", "--n", "2", "--seed", "1", "--out", str(out)]) == 0
    d = read_data(out)
    assert d["simulated"]["refocusing"] == "ideal" and "mrs-tf" in d["simulated"]["basis_source"]
    assert d["simulated"]["seed"] == 1
    assert fit_pulse_for("auto", d) == "ideal"
    assert fit_pulse_for("auto", {**d, "simulated": None}) == SCANNER_FIT_PULSE
    assert fit_pulse_for("auto", {**d, "simulated": {"basis_source": "osprey.BASIS"}}) == SCANNER_FIT_PULSE
    assert fit_pulse_for("sinc_6.9ms_900hz", d) == "sinc_6.9ms_900hz"


def test_fit_without_basis_fits_a_synth_file_with_its_own_pulses_and_refuses_outside_the_space(tmp_path, capsys):
    import csv

    from mrs_tf.table import ResultTable

    out = tmp_path / "s.nii.gz"
    assert main(["synth", "--n", "2", "--snr", "80", "--seed", "3", "--out", str(out)]) == 0
    assert main(["fit", str(out), "--out", str(tmp_path / "r.csv"), "--n-jobs", "1"]) == 0
    assert "TE 30 ms (ideal refocusing pulses" in capsys.readouterr().err
    table = ResultTable.read_csv(tmp_path / "r.csv")
    with open(tmp_path / "s_truth.csv") as fh:
        truth = list(csv.DictReader(fh))
    for i, row in enumerate(truth):  # the basis that made them: NAA/tCr within 10 %
        ratio = (float(row["NAA"]) + float(row["NAAG"])) / (float(row["Cr"]) + float(row["PCr"]))
        assert abs(float(table["NAA+NAAG_over_tCr"][i]) / ratio - 1) < 0.10
    # a 7 T scan is outside mrs-tf's protocol grid: refused with the way out, nothing written
    seven = tmp_path / "7t.nii.gz"
    assert main(["basis", "simulate", "--field-mhz", "297.2", "--bandwidth-hz", "6000", "--metabolites", "NAA", "Cr",
                 "--out", str(tmp_path / "b7.BASIS")]) == 0
    assert main(["synth", "--basis", str(tmp_path / "b7.BASIS"), "--n", "1", "--out", str(seven)]) == 0
    assert main(["fit", str(seven), "--out", str(tmp_path / "r7.csv")]) == 2
    err = capsys.readouterr().err
    assert "no --basis" in err and "field 297.2 MHz" in err and not (tmp_path / "r7.csv").exists()

"""Real-data paths: the same spectrum through NIfTI-MRS, LCModel .RAW and jMRUI text; MRSI grids and maps."""
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from mrs_tf import synthesize  # noqa: E402
from mrs_tf.cli import main  # noqa: E402
from mrs_tf.io import jmrui, lcmodel, nifti, read_data  # noqa: E402
from mrs_tf.table import ResultTable  # noqa: E402

#: the default protocol's own network (scanner-like files without mrs-tf synth's provenance get press3t_short_te)
TE30 = "saved_models/press3t_te30"


def test_one_spectrum_through_three_formats_reads_back_and_quantifies_the_same(basis, tmp_path):
    fids, _ = synthesize(basis, 1, snr=60, seed=17)
    fid = fids[0].astype(np.complex128)
    nifti.write(tmp_path / "s.nii.gz", fid.reshape(1, 1, 1, -1), basis.dwell_s, basis.field_mhz, te_s=0.03)
    lcmodel.write_raw(tmp_path / "s.RAW", fid, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=30)
    jmrui.write_text(tmp_path / "s.txt", fid[None], basis.dwell_s, basis.field_mhz)
    tables = {}
    for name in ("s.nii.gz", "s.RAW", "s.txt"):
        d = read_data(tmp_path / name, field_mhz=basis.field_mhz, dwell_s=basis.dwell_s)
        np.testing.assert_allclose(d["fids"][0], fid, rtol=1e-6, atol=1e-6 * np.abs(fid).max())
        assert d["dwell_s"] == pytest.approx(basis.dwell_s) and d["field_mhz"] == pytest.approx(basis.field_mhz)
        out = tmp_path / f"{name}.csv"
        assert main(["quantify", str(tmp_path / name), "--field-mhz", "123.2", "--bandwidth-hz", "4000",
                     "--model", TE30, "--out", str(out)]) == 0
        tables[name] = ResultTable.read_csv(out)
    for key in ("NAA", "Cr+PCr", "Glu", "NAA_sd"):
        values = [float(t[key][0]) for t in tables.values()]
        np.testing.assert_allclose(values, values[0], rtol=1e-4)


def test_a_mask_picks_the_voxels_and_one_that_does_not_fit_is_refused(basis, tmp_path, capsys):
    """``quantify --mask``: only the voxels inside the mask are quantified (the rest ``not_quantified``); a mask of
    another grid, or one that leaves nothing, is refused before any voxel is."""
    import nibabel as nib

    fids, _ = synthesize(basis, 16, snr=(30, 80), seed=29)
    nifti.write(tmp_path / "mrsi.nii.gz", fids.reshape(4, 4, 1, -1).astype(np.complex128), basis.dwell_s,
                basis.field_mhz, te_s=0.03)
    inside = np.zeros((4, 4, 1))
    inside[1, 2, 0] = inside[3, 0, 0] = 1
    for name, mask in (("mask.nii.gz", inside), ("other.nii.gz", np.ones((4, 5, 1))), ("none.nii.gz", 0 * inside)):
        nib.save(nib.Nifti1Image(mask, np.eye(4)), str(tmp_path / name))
    out = tmp_path / "masked.csv"
    assert main(["quantify", str(tmp_path / "mrsi.nii.gz"), "--mask", str(tmp_path / "mask.nii.gz"),
                 "--out", str(out)]) == 0
    table = ResultTable.read_csv(out)
    status = {(int(x), int(y)): st for x, y, st in zip(table["x"], table["y"], table["status"])}
    assert status[(1, 2)] == status[(3, 0)] == "ok"
    assert sum(st == "not_quantified" for st in status.values()) == 14
    for name, says in (("other.nii.gz", "differs from the data grid"), ("none.nii.gz", "no voxel to quantify")):
        assert main(["quantify", str(tmp_path / "mrsi.nii.gz"), "--mask", str(tmp_path / name),
                     "--out", str(tmp_path / "x.csv")]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_mrsi_grid_quantifies_every_voxel_and_writes_maps_with_the_affine(basis, tmp_path, capsys):
    import nibabel as nib

    fids, truth = synthesize(basis, 256, snr=(30, 80), seed=23)
    grid = fids.reshape(16, 16, 1, -1).astype(np.complex128)
    grid[0, 0, 0] = 0  # a voxel outside the excitation: skipped, NaN in the maps
    grid[2, 5, 0, 100] = np.nan  # one bad sample spoils its voxel (status nan_input), not the file (issue 16)
    affine = np.array([[10.0, 0, 0, -80], [0, 10.0, 0, -80], [0, 0, 15.0, 20], [0, 0, 0, 1]])
    nifti.write(tmp_path / "mrsi.nii.gz", grid, basis.dwell_s, basis.field_mhz, te_s=0.03, affine=affine)
    out, maps = tmp_path / "mrsi.csv", tmp_path / "maps"
    t0 = time.perf_counter()
    assert main(["quantify", str(tmp_path / "mrsi.nii.gz"), "--out", str(out), "--maps", str(maps)]) == 0
    print(f"16x16 grid quantified in {time.perf_counter() - t0:.1f} s")
    table = ResultTable.read_csv(out)
    assert "254 spectra quantified (2 not quantified: status column)" in capsys.readouterr().out
    assert table.n_rows == 256 and {"x", "y", "z", "NAA", "NAA_sd"} <= set(table)
    naa = nib.load(str(maps / "NAA.nii.gz"))
    np.testing.assert_allclose(naa.affine, affine)
    vol = naa.get_fdata()
    assert vol.shape == (16, 16, 1) and np.isnan(vol[0, 0, 0]) and np.isnan(vol[2, 5, 0])
    status = {(int(x), int(y)): st for x, y, st in zip(table["x"], table["y"], table["status"])}
    assert status[(0, 0)] == "not_quantified" and status[(2, 5)] == "nan_input"
    assert sum(st == "ok" for st in status.values()) == 254
    row = [i for i in range(256) if table["x"][i] == 3 and table["y"][i] == 7][0]
    assert vol[3, 7, 0] == pytest.approx(float(table["NAA"][row]), rel=1e-5)
    # the map follows the truth laid out on the grid
    true_map = truth["NAA"].reshape(16, 16)
    ok = np.isfinite(vol[..., 0])
    assert ok.sum() == 254 and np.corrcoef(vol[..., 0][ok], true_map[ok])[0, 1] > 0.9
    capsys.readouterr()
    assert main(["quantify", str(tmp_path / "mrsi.nii.gz"), "--out", str(tmp_path / "o.csv"), "--maps",
                 str(maps)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_quantify_report_shows_fits_concentrations_and_warnings(basis, tmp_path):
    from mrs_tf import SynthesisConfig

    good, _ = synthesize(basis, 2, snr=60, seed=3)
    poor, _ = synthesize(basis, 1, snr=4, seed=4)
    broad, _ = synthesize(basis, 1, snr=80, seed=5, config=SynthesisConfig(lorentz_hz=(22, 24)))
    data = np.concatenate([good, poor, broad]).reshape(4, 1, 1, -1).astype(np.complex128)
    nifti.write(tmp_path / "d.nii.gz", data, basis.dwell_s, basis.field_mhz, te_s=0.03)
    report = tmp_path / "r.html"
    # press3t_te30's report (a file without mrs-tf synth's provenance gets press3t_short_te by default)
    assert main(["quantify", str(tmp_path / "d.nii.gz"), "--model", TE30, "--out", str(tmp_path / "r.csv"),
                 "--report", str(report)]) == 0
    text = report.read_text()
    assert "Plotly.newPlot" in text and "<script src=" not in text
    assert "network reconstruction" in text and "NAA/tCr" in text and "d.nii.gz[2:0:0]" in text
    assert "SNR" in text and "below 10" in text  # the SNR-4 spectrum is flagged
    assert "Lorentzian linewidth" in text  # the 23 Hz spectrum is beyond the training range
    assert text.count("below 10") == 1


def test_echo_time_mismatch_is_refused_with_both_protocols(basis, tmp_path, capsys):
    fids, _ = synthesize(basis, 1, snr=50, seed=1)
    nifti.write(tmp_path / "te144.nii.gz", fids.reshape(1, 1, 1, -1).astype(np.complex128), basis.dwell_s,
                basis.field_mhz, te_s=0.144)
    assert main(["quantify", str(tmp_path / "te144.nii.gz"), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "echo time 144 ms" in err and "PRESS TE 30 ms" in err and "mrs-tf train" in err
    assert "no shipped network serves" in err and "TE 20-40 ms" in err  # both shipped networks' reasons
    assert not (tmp_path / "r.csv").exists()


def test_coils_and_averages_are_combined_into_one_spectrum(basis, tmp_path):
    fids, truth = synthesize(basis, 1, snr=None, seed=8)
    rng = np.random.default_rng(0)
    gains = np.array([1.0, 0.5 * np.exp(1.3j), 0.2 * np.exp(-2.0j), 0.8 * np.exp(0.4j)])
    n_avg = 8
    sd = 0.02 * np.abs(fids[0]).max()
    data = (fids[0][None, None, :, None, None] * gains[None, None, None, :, None]
            + sd * (rng.standard_normal((1, 1, 2048, 4, n_avg)) + 1j * rng.standard_normal((1, 1, 2048, 4, n_avg))))
    data = data.reshape(1, 1, 1, 2048, 4, n_avg)
    nifti.write(tmp_path / "raw.nii.gz", data, basis.dwell_s, basis.field_mhz, te_s=0.03,
                dim_tags=["DIM_COIL", "DIM_DYN"])
    rows = read_data(tmp_path / "raw.nii.gz")
    assert rows["fids"].shape == (32, 2048)  # without combining: every coil and average is a row
    d = read_data(tmp_path / "raw.nii.gz", combine=True)
    assert d["fids"].shape == (1, 2048)
    # the signal comes out phased at t = 0 with amplitude sqrt(sum |g|^2); the complex noise sd sqrt(2) sd of one
    # coil stays so through the unit-norm weights and averages down by sqrt(8): 0.5 sd
    expected = fids[0] * np.exp(-1j * np.angle(fids[0][:4].mean())) * np.sqrt(np.sum(np.abs(gains) ** 2))
    resid = d["fids"][0] - expected
    assert np.std(resid) < 0.6 * sd and abs(np.vdot(expected, d["fids"][0]) / np.vdot(expected, expected) - 1) < 0.01


def test_train_for_your_own_basis_matched_to_a_data_file(tmp_path, capsys, monkeypatch):
    from mrs_tf import BasisSet, simulate_basis
    from mrs_tf.quantify import crosscheck

    # a "foreign" basis: 4096 points at 5000 Hz, no MM, and a signal mrs-tf does not know
    own = simulate_basis(metabolites=["NAA", "Cr", "PCr", "Ins", "GPC"], n_points=4096, bandwidth_hz=5000)
    t = own.time
    extra = 3 * np.exp(2j * np.pi * (4.65 - 1.5) * own.field_mhz * t)  # a 3-proton singlet at 1.5 ppm
    foreign = BasisSet(own.names + ["Xyz"], np.vstack([own.fids, extra]), own.dwell_s, own.field_mhz,
                       protocol={"te_ms": 30.0})
    foreign.save(tmp_path / "their.BASIS")
    data = tmp_path / "scan.nii.gz"
    assert main(["synth", "--n", "2", "--snr", "60", "--out", str(data)]) == 0
    out = tmp_path / "saved_models" / "their_press"
    out.parent.mkdir()
    assert main(["train", "--basis", str(tmp_path / "their.BASIS"), "--protocol-from", str(data), "--out", str(out),
                 "--epochs", "6", "--steps-per-epoch", "25", "--batch-size", "64", "--test-size", "256"]) == 0
    meta = __import__("json").loads((out / "quantifier.json").read_text())
    assert meta["names"] == ["NAA", "Cr", "PCr", "Ins", "GPC", "Xyz", "MM"]
    assert meta["n_points"] == 2048 and meta["dwell_s"] == pytest.approx(1 / 4000)
    card = (out / "model_card.md").read_text()
    assert "their.BASIS" in card and "saved_models/their_press" in card and "Xyz" in card
    # which outputs are mostly its training prior, measured on its test set (not a fixed list of usual suspects)
    measured = __import__("json").loads((out / "metrics.json").read_text())["metrics"]
    assert all("sd_vs_prior_median" in measured[n] for n in meta["names"])
    assert "Mostly its training prior on its own test spectra" in card and "Small signals (Ala" not in card
    res = tmp_path / "r.csv"
    checks = []  # its cross-check fits with its own training basis, and so checks it at the tighter tolerance
    real = crosscheck.cross_check
    monkeypatch.setattr(crosscheck, "cross_check", lambda *a, **k: checks.append(k) or real(*a, **k))
    assert main(["quantify", str(data), "--model", str(out), "--out", str(res)]) == 0
    assert [(k["own_basis"], k["basis_label"]) for k in checks] == [(True, "the network's training basis (their.BASIS)")]
    assert {"Xyz", "Xyz_sd", "NAA_over_tCr"} <= set(ResultTable.read_csv(res))
    assert meta["basis_amplitude_per_proton"] == pytest.approx(1.0, abs=2e-3)  # the units of its outputs
    # the basis file changed since training and lost a signal the model quantifies: refused, nothing written
    foreign.subset(["NAA", "Cr", "PCr", "Ins", "Xyz"]).save(tmp_path / "their.BASIS", overwrite=True)
    capsys.readouterr()
    assert main(["quantify", str(data), "--model", str(out), "--out", str(tmp_path / "r2.csv"), "--report",
                 str(tmp_path / "r2.html")]) == 2
    assert "lacks GPC, which this model quantifies" in capsys.readouterr().err
    assert not (tmp_path / "r2.csv").exists() and not (tmp_path / "r2.html").exists()
    capsys.readouterr()
    assert main(["train", "--protocol-from", str(data), "--out", str(tmp_path / "x")]) == 2
    assert "give --basis" in capsys.readouterr().err


def test_resample_brings_other_bandwidth_and_points_to_the_model(basis, tmp_path, capsys):
    from mrs_tf import simulate_basis
    from mrs_tf.preprocess import resample_fids

    wide = simulate_basis(n_points=4096, bandwidth_hz=5000)
    fids, truth = synthesize(wide, 6, snr=80, seed=31)
    # noise-free check of the resampler itself: a 5 kHz/4096 signal matches the same draw at 4 kHz/2048 (no
    # first-order phase: synthesize applies it over each one's own spectral width)
    from mrs_tf import SynthesisConfig

    no_phase1 = SynthesisConfig(phase1_deg_per_ppm=(0.0, 0.0))
    clean5, _ = synthesize(wide, 1, snr=None, seed=32, config=no_phase1)
    clean4, _ = synthesize(basis, 1, snr=None, seed=32, config=no_phase1)
    got = resample_fids(clean5, wide.dwell_s, basis.dwell_s, 2048)
    # (the low-pass moves the first point: the discrete FID's t = 0 offset is spread over every frequency bin)
    assert np.abs(got - clean4)[:, 1:].max() < 2e-2 * np.abs(clean4).max()  # the cut rings a little early on
    assert np.abs(got - clean4)[:, 50:].max() < 2e-3 * np.abs(clean4).max()
    nifti.write(tmp_path / "w.nii.gz", fids.reshape(6, 1, 1, -1).astype(np.complex128), wide.dwell_s,
                wide.field_mhz, te_s=0.03)
    assert main(["quantify", str(tmp_path / "w.nii.gz"), "--model", "saved_models/press3t_te30", "--out",
                 str(tmp_path / "a.csv")]) == 2
    assert "--resample" in capsys.readouterr().err
    assert main(["quantify", str(tmp_path / "w.nii.gz"), "--resample", "--out", str(tmp_path / "b.csv")]) == 0
    table = ResultTable.read_csv(tmp_path / "b.csv")
    err = np.abs(np.asarray(table["NAA"], float) - truth["NAA"]) / truth["NAA"]
    assert np.mean(err) < 0.08


def test_quantify_method_quest_gives_the_fit_table(basis, tmp_path, capsys):
    fids, truth = synthesize(basis, 2, snr=80, seed=41)
    nifti.write(tmp_path / "d.nii.gz", fids.reshape(2, 1, 1, -1).astype(np.complex128), basis.dwell_s,
                basis.field_mhz, te_s=0.03)
    basis.save(tmp_path / "b.BASIS")
    out = tmp_path / "q.csv"
    assert main(["quantify", str(tmp_path / "d.nii.gz"), "--method", "quest", "--basis", str(tmp_path / "b.BASIS"),
                 "--out", str(out)]) == 0
    table = ResultTable.read_csv(out)
    assert {"NAA", "NAA_crlb", "status"} <= set(table)
    np.testing.assert_allclose(np.asarray(table["NAA"], float), truth["NAA"], rtol=0.1)
    capsys.readouterr()
    assert main(["quantify", str(tmp_path / "d.nii.gz"), "--method", "quest", "--out", str(tmp_path / "x.csv")]) == 2
    assert "needs --basis" in capsys.readouterr().err
    assert main(["quantify", str(tmp_path / "d.nii.gz"), "--method", "quest", "--basis", str(tmp_path / "b.BASIS"),
                 "--maps", str(tmp_path / "m"), "--out", str(tmp_path / "y.csv")]) == 2
    assert "--maps apply to the network" in capsys.readouterr().err


def test_frequency_referencing_rescues_an_offset_beyond_the_training_range(basis, tmp_path):
    from mrs_tf import SynthesisConfig

    fids, truth = synthesize(basis, 8, snr=60, seed=51, config=SynthesisConfig(shift_ppm=(0.40, 0.45)))
    nifti.write(tmp_path / "off.nii.gz", fids.reshape(8, 1, 1, -1).astype(np.complex128), basis.dwell_s,
                basis.field_mhz, te_s=0.03)
    errs = {}
    for flag in (["--no-reference"], []):  # referencing is the default
        out = tmp_path / f"r{len(flag)}.csv"
        assert main(["quantify", str(tmp_path / "off.nii.gz"), *flag, "--out", str(out)]) == 0
        table = ResultTable.read_csv(out)
        errs[not flag] = np.mean(np.abs(np.asarray(table["NAA"], float) - truth["NAA"]) / truth["NAA"])
    offsets = np.asarray(table["reference_offset_ppm"], float)
    # the offsets found are the synthesised ones in ppm (shift_hz > 0 moves peaks to lower ppm: a negative offset),
    # within a bin or two
    np.testing.assert_allclose(offsets, -truth["shift_hz"] / basis.field_mhz, atol=0.01)
    assert errs[True] < 0.06 and errs[True] < 0.75 * errs[False], errs


def test_eddy_current_correction_from_the_water_reference(basis, tmp_path):
    from mrs_tf.preprocess import eddy_current_correction

    clean, truth = synthesize(basis, 3, snr=None, seed=61)
    t = basis.time
    water = 5e4 * np.exp(-np.pi * 4.0 * t)  # at 4.65 ppm, phase 0
    eddy = 0.9 + 2.5 * np.exp(-t / 0.02)  # zero-order phase plus a decaying eddy-current phase (rad)
    np.testing.assert_allclose(eddy_current_correction(clean * np.exp(1j * eddy), water * np.exp(1j * eddy)), clean,
                               atol=1e-4 * np.abs(clean).max())
    # through the CLI the corrected spectra quantify like the undistorted ones
    noisy, truth = synthesize(basis, 4, snr=80, seed=62)
    nifti.write(tmp_path / "d.nii.gz", (noisy * np.exp(1j * eddy)).reshape(4, 1, 1, -1).astype(np.complex128),
                basis.dwell_s, basis.field_mhz, te_s=0.03)
    nifti.write(tmp_path / "w.nii.gz", (water * np.exp(1j * eddy)).reshape(1, 1, 1, -1).astype(np.complex128),
                basis.dwell_s, basis.field_mhz, te_s=0.03)
    assert main(["quantify", str(tmp_path / "d.nii.gz"), "--water", str(tmp_path / "w.nii.gz"), "--ecc",
                 "--out", str(tmp_path / "e.csv")]) == 0
    assert main(["quantify", str(tmp_path / "d.nii.gz"), "--ecc", "--out", str(tmp_path / "x.csv")]) == 2
    table = ResultTable.read_csv(tmp_path / "e.csv")
    assert np.mean(np.abs(np.asarray(table["NAA"], float) - truth["NAA"]) / truth["NAA"]) < 0.08
    assert "NAA_mM" in table
    # the water line whose phase the correction put on the metabolites is reported: width and asymmetry
    from mrs_tf.preprocess.spectra import singlet_shape

    width, skew = singlet_shape(water * np.exp(1j * eddy), basis.dwell_s, basis.field_mhz, ppm=(4.2, 5.1))
    np.testing.assert_allclose(np.asarray(table["water_fwhm_hz"], float), width[0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(table["water_asymmetry"], float), skew[0], rtol=1e-6)
    assert abs(skew[0]) > 0.05  # the eddy currents skew it


def test_singlet_shape_measures_width_and_asymmetry():
    """A Lorentzian's and a Gaussian's FWHM and zero asymmetry, at any zero-order phase; an eddy-current phase skews
    a line, and Klose's correction with a water reference that shares it makes it symmetric again."""
    from mrs_tf.preprocess.spectra import eddy_current_correction, singlet_shape

    dt, field, n = 1 / 2000, 127.75, 2048
    t = np.arange(n) * dt
    move = np.exp(2j * np.pi * (2.01 - 4.65) * field * t)
    lorentz = move * np.exp(-np.pi * 6.0 * t + 0.7j)
    gauss = move * np.exp(-(np.pi * 8.0 * t) ** 2 / (4 * np.log(2)) - 2.0j)
    width, skew = singlet_shape(np.stack([lorentz, gauss]), dt, field)
    np.testing.assert_allclose(width, [6.0, 8.0], atol=0.1)
    assert np.all(np.abs(skew) < 0.02)
    eddy = np.exp(1j * 2 * np.pi * 15 * 0.01 * np.exp(-t / 0.01))
    assert abs(singlet_shape(lorentz * eddy, dt, field)[1][0]) > 0.08
    fixed = eddy_current_correction(lorentz * eddy, np.exp(-np.pi * 8.0 * t) * eddy)
    assert abs(singlet_shape(fixed, dt, field)[1][0]) < 0.02
    assert np.isnan(singlet_shape(np.zeros(n, complex), dt, field)[0][0])


def test_unknown_nifti_mrs_dimension_tag_is_named(tmp_path, capsys):
    import json

    import nibabel as nib
    from nibabel.nifti1 import Nifti1Extension

    nifti.write(tmp_path / "ok.nii.gz", np.ones((1, 1, 1, 64, 2), complex), 2.5e-4, 123.2, dim_tags=["DIM_DYN"])
    img = nib.load(str(tmp_path / "ok.nii.gz"))
    hdr = json.loads(img.header.extensions[0].get_content())
    hdr["dim_5"] = "DIM_SLICES_OF_CAKE"
    img.header.extensions.clear()
    img.header.extensions.append(Nifti1Extension(44, json.dumps(hdr).encode()))
    nib.save(img, str(tmp_path / "bad.nii.gz"))
    assert main(["quantify", str(tmp_path / "bad.nii.gz"), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "unknown NIfTI-MRS dimension tag" in err and "DIM_SLICES_OF_CAKE" in err


def test_a_basis_for_the_network_must_hold_its_metabolites(basis, tmp_path, capsys):
    """quantify --basis B with the network: B reconstructs the report (and --reference); a basis without some of
    the model's metabolites is refused before anything is written, one in another scale and without MM is fitted
    to the model's units."""
    from mrs_tf import BasisSet, Quantifier
    from mrs_tf.errors import BasisError, ProtocolError

    fids, _ = synthesize(basis, 2, snr=60, seed=11)
    data = tmp_path / "d.nii.gz"
    nifti.write(data, fids.reshape(2, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz, te_s=0.03)
    missing = tmp_path / "missing.BASIS"
    basis.subset([n for n in basis.names if n not in ("GPC", "Glu")]).save(missing)
    out, report = tmp_path / "r.csv", tmp_path / "r.html"
    assert main(["quantify", str(data), "--model", TE30, "--basis", str(missing), "--out", str(out), "--report",
                 str(report)]) == 2
    err = capsys.readouterr().err
    assert "lacks Glu, GPC, which this model quantifies" in err and "mrs-tf train --basis" in err
    assert not out.exists() and not report.exists()
    # an LCModel-style basis: no MM, 0.2 FID units per proton, 4096 points at 5 kHz
    lcm = BasisSet([n for n in basis.names if n != "MM"], basis.fids[:-1] / 5, basis.dwell_s, basis.field_mhz,
                   basis.ref_ppm, {"te_ms": 30.0})
    lcm.save(tmp_path / "lcm.BASIS")
    q = Quantifier.load("saved_models/press3t_te30", basis=tmp_path / "lcm.BASIS")
    b = q.basis()
    assert b.names == q.names and b.protocol["rescaled_by"] == pytest.approx(5.0, rel=2e-3)
    for name in ("Cr", "NAA", "MM"):
        np.testing.assert_allclose(b[name], basis[name], atol=2e-3 * np.abs(basis[name]).max())
    assert main(["quantify", str(data), "--model", TE30, "--basis", str(tmp_path / "lcm.BASIS"), "--out", str(out),
                 "--report", str(report)]) == 0
    assert "network reconstruction" in report.read_text()
    with pytest.raises(ProtocolError, match="TE 144 ms"):
        Quantifier.load("saved_models/press3t_te30", basis=BasisSet(basis.names, basis.fids, basis.dwell_s,
                                                                   basis.field_mhz, basis.ref_ppm, {"te_ms": 144.0}))
    with pytest.raises(BasisError, match="lacks Ala, Asc, .*, Tau, which"):
        Quantifier.load("saved_models/press3t_te30").use_basis(basis.subset(["NAA", "Cr", "PCr"]))


def test_quantify_bad_input_exits_2_and_writes_nothing(basis, tmp_path, capsys):
    """Truncated or corrupt files of each format, and an output that exists: a message naming the problem, exit
    status 2, no output file, the existing one untouched."""
    fids, _ = synthesize(basis, 1, snr=50, seed=2)
    good = tmp_path / "good.nii.gz"
    nifti.write(good, fids.reshape(1, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz, te_s=0.03)
    lcmodel.write_raw(tmp_path / "good.RAW", fids[0])
    jmrui.write_text(tmp_path / "good.txt", fids, basis.dwell_s, basis.field_mhz)
    raw_text = (tmp_path / "good.RAW").read_text().splitlines()
    bad = {
        "cut.nii.gz": good.read_bytes()[: len(good.read_bytes()) // 2],
        "cut.RAW": "\n".join(raw_text[: len(raw_text) // 2]),
        "nan.RAW": "\n".join(raw_text[:-1] + ["  nan  nan"]),
        "cut.txt": "\n".join((tmp_path / "good.txt").read_text().splitlines()[:-700]),
        "junk.nii.gz": b"\x1f\x8b not really gzip",
    }
    out = tmp_path / "r.csv"
    for name, content in bad.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        rc = main(["quantify", str(path), "--field-mhz", "123.2", "--bandwidth-hz", "4000", "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and name in err and "Traceback" not in err, (name, err)
        assert not out.exists()
    out.write_text("my results")
    assert main(["quantify", str(good), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "my results"
    assert main(["quantify", str(good), "--out", str(out), "--overwrite"]) == 0
    assert "NAA" in out.read_text()


def test_train_basis_in_foreign_units_with_a_reference_peak_learns(tmp_path, capsys):
    """A basis in units of 1e-4 per proton with a TMS singlet in every signal (LCModel's habit): the added MM is
    scaled to those units and the peak removed, so a short run learns; a run that cannot learn is refused."""
    import json

    from mrs_tf import BasisSet, simulate_basis

    own = simulate_basis(metabolites=["NAA", "Cr", "PCr", "Ins", "GPC", "Glu"], n_points=4096, bandwidth_hz=5000)
    tms = np.exp(2j * np.pi * 4.65 * own.field_mhz * own.time)
    BasisSet(own.names, (own.fids + 0.5 * tms) * 1e-4, own.dwell_s, own.field_mhz,
             protocol={"te_ms": 30.0}).save(tmp_path / "tiny.BASIS")
    data = tmp_path / "scan.nii.gz"
    assert main(["synth", "--n", "2", "--snr", "60", "--out", str(data)]) == 0
    out = tmp_path / "m"
    args = ["train", "--basis", str(tmp_path / "tiny.BASIS"), "--protocol-from", str(data), "--test-size", "256",
            "--batch-size", "64"]
    assert main([*args, "--out", str(out), "--epochs", "6", "--steps-per-epoch", "25"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["NAA"]["slope"] > 0.5 and metrics["Cr+PCr"]["slope"] > 0.5, metrics
    meta = json.loads((out / "quantifier.json").read_text())
    assert meta["basis_amplitude_per_proton"] == pytest.approx(1e-4, rel=0.01)
    # a network for a scanner basis reads 0.2-4.0 ppm, as the fits and LCModel (real scans' residual-water traces
    # lie above: with 0.2-4.2 ppm the Philips volunteers' Ins/tCr came out 14-20 % low)
    assert meta["ppm_range"] == [0.2, 4.0]
    assert "reference peak near 0 ppm" in capsys.readouterr().err
    # the fits from the network's answer (hybrid, cross-check) get mrs-tf fit --basis's MM components and lipids as
    # free signals in the basis's units, not the training's one fixed-shape MM (6-13 % from LCModel in vivo)
    from mrs_tf import Quantifier

    q = Quantifier.load(out)
    fit_basis = q.fit_basis()
    assert "MM" in q.basis().names and "MM" not in fit_basis.names
    assert {"MM09", "MM20", "Lip09", "Lip13", "Lip20"} <= set(fit_basis.names)
    assert abs(fit_basis.fids[fit_basis.index("MM09")][0]) == pytest.approx(3e-4, rel=0.05)  # 3 protons x 1e-4
    # the cross-check's messages name what it fitted with, from Python as from the command line
    assert q.fit_basis_label() == "the network's training basis (tiny.BASIS)"
    assert q.fit_basis_label("scan.BASIS") == "scan.BASIS"
    d = read_data(data)
    fitted = q.quantify(d["fids"], d["dwell_s"], d["field_mhz"], method="hybrid", n_jobs=1)
    assert "Lip13" in fitted and np.all(np.asarray(fitted["NAA_over_tCr"]) > 0)
    # one step cannot learn: exit 2, the files renamed rejected_*, no model.keras left to load by mistake
    bad = tmp_path / "bad"
    assert main([*args, "--out", str(bad), "--epochs", "1", "--steps-per-epoch", "1"]) == 2
    assert "did not learn" in capsys.readouterr().err
    assert not (bad / "model.keras").exists() and (bad / "rejected_model.keras").exists()


def test_a_reference_peak_in_the_basis_does_not_change_the_fit(basis):
    """TMS/DSS singlets at 0 ppm in every basis signal are removed on preparation: the same amplitudes (1 %)."""
    from mrs_tf import BasisSet, quest
    from mrs_tf.basis_prep import prepare_basis

    fids, _ = synthesize(basis, 3, snr=80, seed=41)
    tms = 0.3 * np.exp(2j * np.pi * 4.65 * basis.field_mhz * basis.time)
    with_tms = BasisSet(basis.names, basis.fids + np.where(np.arange(len(basis.names))[:, None] < 20, tms, 0),
                        basis.dwell_s, basis.field_mhz, basis.ref_ppm, dict(basis.protocol))
    said = []
    clean = prepare_basis(with_tms, log=said.append).basis
    assert any("reference peak near 0 ppm" in s for s in said)
    plain = quest.fit(fids, basis, n_jobs=1, progress=False)
    fixed = quest.fit(fids, clean, n_jobs=1, progress=False)
    raw = quest.fit(fids, with_tms, n_jobs=1, progress=False)
    for name in ("NAA", "Cr", "Ins", "Glu", "GPC"):
        np.testing.assert_allclose(fixed[name], plain[name], rtol=0.01, err_msg=name)
    assert np.max(np.abs(raw["Ins"] / plain["Ins"] - 1)) > 0.01  # without the removal the peak does change it


def test_ctrl_c_saves_and_stops_and_resume_counts_the_whole_run(tmp_path):
    """SIGINT during `mrs-tf train` ends the epoch, keeps the run's state and exits 2 without a model; --resume
    finishes it and the card counts every epoch and reproduces the run without --resume."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from mrs_tf import simulate_basis

    simulate_basis(metabolites=["NAA", "Cr", "PCr", "Ins", "GPC", "Glu"]).save(tmp_path / "small.BASIS")
    out = tmp_path / "m"
    args = ["train", "--basis", str(tmp_path / "small.BASIS"), "--out", str(out), "--epochs", "6",
            "--steps-per-epoch", "40", "--batch-size", "64", "--test-size", "256"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    exe = Path(sys.executable).parent / "mrs-tf"  # the installed command: the card records its command line
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mrs_tf.cli"]
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        log = out / "log.csv"
        if log.exists() and len(log.read_text().splitlines()) >= 2:  # one epoch done
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.2)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 2, err[-2000:]
    assert "interrupted" in err and "--resume" in err
    assert (out / "backup").exists() and not (out / "model.keras").exists()
    done_before = len((out / "log.csv").read_text().splitlines()) - 1
    assert 1 <= done_before < 6
    proc = subprocess.run([*cmd, *args, "--resume"], capture_output=True, text=True,
                          env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "quantifier.json").read_text())["training"]["epochs_run"] == 6
    card = (out / "model_card.md").read_text()
    assert "6 epochs x 40 steps" in card and "--resume" not in card
    assert not (out / "backup").exists()


def test_offsets_are_corrected_by_default_and_flagged_when_not(basis, tmp_path, capsys):
    """Issue 16 item 3: the same spectra stored as they are and shifted by +0.3 ppm give the same tNAA and tCr (median
    within 10 %) through the network by default (referenced); with --no-reference the shifted ones are flagged in the
    status column and on stderr, never silently biased."""
    from mrs_tf import SynthesisConfig

    fids, truth = synthesize(basis, 12, snr=50, seed=53, config=SynthesisConfig(shift_ppm=(0.0, 0.0)))
    shifted = fids * np.exp(-2j * np.pi * 0.3 * basis.field_mhz * basis.time)[None, :]  # peaks 0.3 ppm higher
    medians = {}
    for name, data in (("stored", fids), ("shifted", shifted)):
        nifti.write(tmp_path / f"{name}.nii.gz", data.reshape(12, 1, 1, -1).astype(np.complex128), basis.dwell_s,
                    basis.field_mhz, te_s=0.03)
        assert main(["quantify", str(tmp_path / f"{name}.nii.gz"), "--out", str(tmp_path / f"{name}.csv")]) == 0
        table = ResultTable.read_csv(tmp_path / f"{name}.csv")
        assert set(table["status"]) == {"ok"}
        medians[name] = {k: np.median(np.asarray(table[k], float)) for k in ("NAA+NAAG", "Cr+PCr")}
        if name == "shifted":
            np.testing.assert_allclose(np.asarray(table["reference_offset_ppm"], float), 0.3, atol=0.01)
    basis.save(tmp_path / "b.BASIS")
    for name in ("stored", "shifted"):  # QUEST through quantify: its own shift search, water removal in its frame
        assert main(["quantify", str(tmp_path / f"{name}.nii.gz"), "--method", "quest", "--basis",
                     str(tmp_path / "b.BASIS"), "--out", str(tmp_path / f"{name}_quest.csv")]) == 0
        table = ResultTable.read_csv(tmp_path / f"{name}_quest.csv")
        assert set(table["status"]) == {"ok"}
        medians[f"{name} QUEST"] = {k: np.median(np.asarray(table[k], float)) for k in ("NAA+NAAG", "Cr+PCr")}
    for k in ("NAA+NAAG", "Cr+PCr"):
        assert abs(medians["shifted"][k] / medians["stored"][k] - 1) < 0.10, medians
        assert abs(medians["shifted QUEST"][k] / medians["stored QUEST"][k] - 1) < 0.10, medians
    capsys.readouterr()
    assert main(["quantify", str(tmp_path / "shifted.nii.gz"), "--no-reference", "--out",
                 str(tmp_path / "raw.csv")]) == 0
    table = ResultTable.read_csv(tmp_path / "raw.csv")
    assert set(table["status"]) == {"offset_out_of_range"}
    assert "frequency offset +0.3" in table["message"][0] and "training range (+-0.2 ppm)" in table["message"][0]
    np.testing.assert_allclose(np.asarray(table["frequency_offset_ppm"], float), 0.3, atol=0.01)
    assert "beyond the network's training range" in capsys.readouterr().err


def test_complete_basis_adds_the_missing_brain_metabolites_in_the_basis_units(basis):
    """prepare_basis(complete=True): a brain basis without Gly, Glc and Ala (in units of 1e-4 per proton, no MM) gets
    mrs-tf's simulation of them in its own units: the same signals as mrs-tf's basis, scaled by 1e-4."""
    from mrs_tf import BasisSet
    from mrs_tf.basis_prep import prepare_basis
    from mrs_tf.errors import BasisError

    keep = [n for n in basis.names if n not in ("Gly", "Glc", "Ala", "MM")]
    foreign = BasisSet(keep, 1e-4 * basis.fids[[basis.index(n) for n in keep]], basis.dwell_s, basis.field_mhz,
                       basis.ref_ppm, {"sequence": "press", "te_ms": 30.0, "te1_ms": 11.0, "te2_ms": 19.0})
    said = []
    plain = prepare_basis(foreign, log=said.append).basis
    assert "Gly" not in plain.names and any("no Ala, Glc, Gly in the basis" in s for s in said)
    done = prepare_basis(foreign, complete=True, log=said.append).basis
    for name in ("Gly", "Glc", "Ala"):
        np.testing.assert_allclose(done[name], 1e-4 * basis[name], rtol=0, atol=2e-3 * 1e-4 * np.abs(basis[name]).max())
    assert done.protocol["completed_with"] == ["Ala", "Glc", "Gly"]
    no_te = BasisSet(foreign.names, foreign.fids, foreign.dwell_s, foreign.field_mhz, foreign.ref_ppm, {})
    with pytest.raises(BasisError, match="does not state its echo time"):
        prepare_basis(no_te, complete=True, log=said.append)


def test_fit_complete_basis_gives_the_missing_metabolites_their_own_columns(basis, tmp_path, capsys, monkeypatch):
    """mrs-tf fit --basis B --complete-basis: a brain basis without Gly, Glc and Ala gets mrs-tf's, and the table
    has their columns; without the flag it says once what is missing and has none."""
    from mrs_tf.fitting import basis_prep

    monkeypatch.setattr(basis_prep, "_SAID", set())  # each action is said once per process: start afresh
    keep = [n for n in basis.names if n not in ("Gly", "Glc", "Ala", "MM")]
    basis.subset(keep).save(tmp_path / "b.BASIS")
    data = tmp_path / "scan.nii.gz"
    assert main(["synth", "--n", "1", "--snr", "80", "--seed", "3", "--out", str(data)]) == 0
    capsys.readouterr()
    assert main(["fit", "--basis", str(tmp_path / "b.BASIS"), str(data), "--out", str(tmp_path / "a.csv")]) == 0
    assert "no Ala, Glc, Gly in the basis" in capsys.readouterr().err
    assert "Gly" not in ResultTable.read_csv(tmp_path / "a.csv")
    assert main(["fit", "--basis", str(tmp_path / "b.BASIS"), str(data), "--complete-basis",
                 "--out", str(tmp_path / "c.csv")]) == 0
    assert "added mrs-tf's Ala, Glc, Gly (PRESS TE 30 ms, ideal pulses)" in capsys.readouterr().err
    table = ResultTable.read_csv(tmp_path / "c.csv")
    assert {"Gly", "Glc", "Ala", "Gly_crlb"} <= set(table) and table["status"][0] == "ok"


def test_train_refuses_a_ppm_range_too_narrow_to_read(tmp_path, capsys):
    """--ppm-range (new with the 0.2-4.0 ppm default of train --basis): a range narrower than 1 ppm is refused, named,
    before anything is written."""
    assert main(["train", "--out", str(tmp_path / "m"), "--ppm-range", "3.0", "3.5"]) == 2
    assert "--ppm-range 3 3.5" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_quantify_flags_a_scan_with_lipids_taller_than_learnt(tmp_path, capsys):
    """A scanner file whose voxel caught the scalp's lipids (3 NAA heights; the general network learnt up to 0.3):
    mrs-tf quantify had referenced one of four to the edge of its search (0.5 ppm from where it was) and given the
    others numbers with tNAA/tCr up to +53 %; now every one is ``lipid_contamination`` (two also match broadened lines: the lipids' 2.0-2.8 ppm lines spoil that measure) with the warning on stderr, and
    the same spectra without the lipids are ``ok``."""
    from mrs_tf.nn.general import GENERAL_SYNTHESIS
    from mrs_tf.physics.protocols import protocol_basis
    from mrs_tf.train import evaluation_synthesis

    basis = protocol_basis(127.7, 35.0, 17.5, n_points=2048, dwell_s=1 / 2000)
    syn = evaluation_synthesis(GENERAL_SYNTHESIS).with_(water_amp=(0.0, 0.5))
    status = {}
    for lipids in (0.0, 3.0):
        fids, _ = synthesize(basis, 4, snr=(40, 60), seed=np.random.SeedSequence([5, 30]),
                             config=syn.with_(lipid_amp=(lipids, lipids)))
        scan, out = tmp_path / f"lip{lipids:g}.nii.gz", tmp_path / f"lip{lipids:g}.csv"
        nifti.write(scan, fids.reshape(4, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz,
                    te_s=0.035)
        assert main(["quantify", str(scan), "--out", str(out), "--no-cross-check"]) == 0
        table = ResultTable.read_csv(out)
        status[lipids], message = list(table["status"]), list(table["message"])
    assert status[0.0] == ["ok"] * 4
    assert status[3.0] == ["lipid_contamination"] * 4
    assert all("the 1.3 ppm band (lipids, lactate)" in m for m in message), message
    assert "the 1.3 ppm band (lipids, lactate)" in capsys.readouterr().err


def test_fit_without_basis_is_not_thrown_by_lipids_and_flags_tall_ones(tmp_path):
    """``mrs-tf fit`` without ``--basis`` fitted mrs-tf's basis with its one parametric MM signal: lipid lines of
    0.4-0.5 NAA heights (under any flag) drove it and its tied 3.0-3.8 ppm lines into Ins (Ins/tCr +35 % median on
    these 16 spectra, status ``ok``); lipids 1.5 NAA heights gave Ins/tCr +119 %, Glu/tCr -46 %, with 4 of 12 ``ok``.
    Now the MM signal is fitted as free components and spectra whose 1.3 ppm band is taller than
    0.8 NAA heights are ``lipid_contamination``."""
    from mrs_tf.evaluate import truth_value
    from mrs_tf.nn.general import GENERAL_SYNTHESIS
    from mrs_tf.physics.protocols import protocol_basis
    from mrs_tf.train import evaluation_synthesis

    basis = protocol_basis(127.7, 35.0, n_points=2048, dwell_s=1 / 2000)  # the split mrs-tf fit's own basis has
    syn = evaluation_synthesis(GENERAL_SYNTHESIS).with_(water_amp=(0.0, 0.5))
    tables = {}
    for lipids, n in ((0.4, 16), (1.5, 12)):
        fids, truth = synthesize(basis, n, snr=(80, 120), seed=np.random.SeedSequence([5, 31]),
                                 config=syn.with_(lipid_amp=(lipids, lipids + 0.1)))
        scan, out = tmp_path / f"lip{lipids:g}.nii.gz", tmp_path / f"lip{lipids:g}.csv"
        nifti.write(scan, fids.reshape(n, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz,
                    te_s=0.035)
        assert main(["fit", str(scan), "--out", str(out), "--fit-pulse", "ideal", "--n-jobs", "2"]) == 0
        tables[lipids] = ResultTable.read_csv(out), truth
    table, truth = tables[0.4]
    assert list(table["status"]) == ["ok"] * 16
    tcr = truth_value(truth, "Cr+PCr")
    for name, limit in (("GPC+PCh", 0.06), ("Glu", 0.06), ("Ins", 0.25)):
        error = np.median(np.asarray(table[f"{name}_over_tCr"], float) / (truth_value(truth, name) / tcr) - 1)
        assert abs(error) < limit, (name, error)
    status = list(tables[1.5][0]["status"])
    assert "ok" not in status and status.count("lipid_contamination") >= 10, status
    assert {"MM09", "MM12", "MM14", "MM17", "MM20"} <= set(table) and "MM" not in table  # (said once per process)


def test_another_sequence_is_refused_not_read_as_press(tmp_path, capsys):
    """The networks and mrs-tf's own basis are PRESS. Read as PRESS, sLASER TE 30 spectra gave the shipped network's
    Ins/tCr +22 % and STEAM TE 20 ones tNAA/tCr -11 %, Ins/tCr -17 % (512 each, status ``ok`` on every one): the
    sequence a file's header names (NIfTI-MRS ``SequenceName``/``ProtocolName``, what spec2nii writes from the
    vendors' files) is now checked against the model's and the basis's, each refusal with its way out; ``mrs-tf
    synth`` records its basis's sequence."""
    import mrs_tf
    from mrs_tf.errors import ProtocolError
    from mrs_tf.physics.basis import simulate_basis
    from mrs_tf.physics.protocols import sequence_kind

    names = ("svs_se", "svs_st", "svs_slaser_dkd", "svs_semi_laser", "PRESS PAR 35", "eja_svs_mpress", "fid")
    assert [sequence_kind(n) for n in names] == ["press", "steam", "slaser", "slaser", "press", "edited", None]
    basis = simulate_basis("slaser", 123.2, 30.0, n_points=2048, bandwidth_hz=4000.0,
                           metabolites=["NAA", "Cr", "PCr", "GPC", "PCh", "Ins", "Glu", "MM"])
    fids, _ = synthesize(basis, 4, snr=(40, 60), seed=7)
    for name in ("svs_slaser_dkd", "svs_se"):
        nifti.write(tmp_path / f"{name}.nii.gz", fids.reshape(4, 1, 1, -1).astype(np.complex128), basis.dwell_s,
                    basis.field_mhz, te_s=0.03, sequence=name)
    slaser = str(tmp_path / "svs_slaser_dkd.nii.gz")
    assert read_data(slaser)["sequence"] == "slaser"
    assert main(["quantify", slaser, "--out", str(tmp_path / "a.csv")]) == 2
    assert "sequence sLASER (the model's: PRESS" in capsys.readouterr().err
    assert main(["fit", slaser, "--out", str(tmp_path / "b.csv")]) == 2
    assert "a sLASER scan ('svs_slaser_dkd' in its header)" in capsys.readouterr().err
    own = tmp_path / "slaser.BASIS"
    basis.save(own)
    assert main(["fit", "--basis", str(own), slaser, "--out", str(tmp_path / "c.csv")]) == 0  # its own sequence
    press_basis = (Path(__file__).resolve().parents[2] / "shared" / "data" / "osprey" / "basis"
                   / "3T_PRESS_Siemens_35ms_noMM.BASIS")
    if press_basis.exists():
        assert main(["fit", "--basis", str(press_basis), slaser, "--out", str(tmp_path / "d.csv")]) == 2
        assert "is a PRESS basis" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()
    # a header that says PRESS is all mrs-tf can know: quantified
    assert main(["quantify", str(tmp_path / "svs_se.nii.gz"), "--out", str(tmp_path / "e.csv"),
                 "--no-cross-check"]) == 0
    q = mrs_tf.Quantifier.load(Path(__file__).resolve().parents[1] / "saved_models" / "press3t_short_te")
    with pytest.raises(ProtocolError, match="sequence STEAM"):
        q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=30.0, sequence="steam")
    synth = tmp_path / "synth.nii.gz"
    assert main(["synth", "--basis", str(own), "--n", "2", "--out", str(synth)]) == 0
    assert read_data(synth)["sequence"] == "slaser"
    # training for a scan: a basis of another sequence or echo time is refused (the data's TE had been written over
    # the basis's without a word)
    press = str(tmp_path / "svs_se.nii.gz")
    assert main(["train", "--basis", str(own), "--protocol-from", press, "--out", str(tmp_path / "n1")]) == 2
    assert "is a sLASER basis" in capsys.readouterr().err
    te35 = tmp_path / "te35.nii.gz"
    nifti.write(te35, fids.reshape(4, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz, te_s=0.035,
                sequence="svs_slaser")
    assert main(["train", "--basis", str(own), "--protocol-from", str(te35), "--out", str(tmp_path / "n2")]) == 2
    assert "is for TE 30 ms" in capsys.readouterr().err
    assert not (tmp_path / "n1").exists() and not (tmp_path / "n2").exists()
    # both mismatches named at once, in training and in the fit alike, each with its way out
    press35 = tmp_path / "press35.nii.gz"
    nifti.write(press35, fids.reshape(4, 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz,
                te_s=0.035, sequence="svs_se")
    for command in (["train", "--basis", str(own), "--protocol-from", str(press35), "--out", str(tmp_path / "n3")],
                    ["fit", "--basis", str(own), str(press35), "--out", str(tmp_path / "f.csv")]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "is a sLASER basis, the scan a PRESS scan" in err and "is for TE 30 ms, the scan has TE 35 ms" in err
        assert "--sequence press" in err and "--te-ms 35" in err
    assert not (tmp_path / "n3").exists() and not (tmp_path / "f.csv").exists()
    # a file that names no sequence (LCModel .RAW) is said to be unchecked, on stderr and in the table
    raw = tmp_path / "scan.RAW"
    lcmodel.write_raw(raw, fids[0], basis.dwell_s, basis.field_mhz)
    assert main(["fit", "--basis", str(own), str(raw), "--out", str(tmp_path / "g.csv")]) == 0
    assert "does not name its sequence" in capsys.readouterr().err
    assert list(ResultTable.read_csv(tmp_path / "g.csv")["sequence"]) == ["unknown"]
    assert main(["fit", "--basis", str(own), slaser, "--out", str(tmp_path / "h.csv")]) == 0
    assert list(ResultTable.read_csv(tmp_path / "h.csv")["sequence"]) == ["slaser"] * 4

"""Basis sets: round trips through every format, sign conventions pinned per format, bad files."""
import json
from pathlib import Path

import numpy as np
import pytest

from mrs_tf import BasisError, BasisSet, FileFormatError, MetaboliteError, OutputExistsError, ProtocolError
from mrs_tf import canonical_name, simulate_basis
from mrs_tf.io import jmrui, lcmodel

from conftest import peak_ppm

FORMATS = ["press.BASIS", "press.txt", "press_fsl", "press.nii.gz"]


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_every_format(basis, tmp_path, name):
    path = basis.save(tmp_path / name)
    back = BasisSet.load(path)
    assert back.names == basis.names
    assert back.n_points == basis.n_points
    assert back.dwell_s == pytest.approx(basis.dwell_s, rel=1e-12)
    assert back.field_mhz == pytest.approx(basis.field_mhz, rel=1e-12)
    scale = np.abs(basis.fids).max()
    err = np.abs(back.fids - basis.fids).max() / scale
    assert err < 1e-9  # text formats keep 11 significant digits; binary ones are exact
    if name.endswith(("fsl", ".nii.gz")):
        np.testing.assert_array_equal(back.fids, basis.fids)


def _singlet_basis():
    t = np.arange(1024) / 4000
    fid = 3 * np.exp(2j * np.pi * (4.65 - 2.0) * 123.2 * t)  # a 3-proton singlet at 2.0 ppm (mrs-tf convention)
    return BasisSet(["NAA"], fid[None], 1 / 4000, 123.2)


def test_sign_convention_pinned_per_format(tmp_path):
    b = _singlet_basis()
    fid = b.fids[0]
    # LCModel .BASIS: unshifted fft(fid), not conjugated
    lcmodel_path = b.save(tmp_path / "s.BASIS")
    stored = lcmodel.read_basis(lcmodel_path)
    np.testing.assert_allclose(np.fft.fft(stored["fids"][0]), np.fft.fft(fid), atol=1e-6)
    text = lcmodel_path.read_text().split("$END")[-1].split()
    first = float(text[0]) + 1j * float(text[1])
    assert first == pytest.approx(np.fft.fft(fid)[0], rel=1e-9)
    # jMRUI: stores the complex conjugate
    jm = b.save(tmp_path / "s.txt")
    rows = [line.split() for line in jm.read_text().splitlines() if line.count("\t") == 3 and line[0] in "-0123456789"]
    assert float(rows[1][1]) == pytest.approx(-fid[1].imag, rel=1e-9)
    # FSL-MRS JSON: as is
    fsl = b.save(tmp_path / "s_fsl")
    content = json.loads((fsl / "NAA.json").read_text())["basis"]
    assert content["basis_im"][1] == pytest.approx(fid[1].imag)
    # NIfTI-MRS: raw image data as is (nifti-mrs would conjugate through NIFTI_MRS[...])
    import nibabel

    nii = b.save(tmp_path / "s.nii.gz")
    raw = np.asarray(nibabel.load(str(nii)).get_fdata(dtype=np.complex128)).ravel()
    np.testing.assert_allclose(raw, fid, atol=1e-12)
    # every reader puts the singlet back at 2.0 ppm
    for path in (lcmodel_path, jm, fsl, nii):
        back = BasisSet.load(path)
        ppm, height = peak_ppm(back.fids[0], back.dwell_s, back.field_mhz)
        assert ppm == pytest.approx(2.0, abs=0.002) and height > 0
    mirrored = BasisSet.load(lcmodel_path, conjugate=True)  # a file written with the opposite convention
    ppm, _ = peak_ppm(mirrored.fids[0], mirrored.dwell_s, mirrored.field_mhz)
    assert ppm == pytest.approx(4.65 + (4.65 - 2.0), abs=0.002)


def test_raw_basis_needs_field_and_dwell(tmp_path):
    b = _singlet_basis()
    lcmodel.write_raw(tmp_path / "NAA.RAW", b.fids[0])  # no header
    with pytest.raises(ProtocolError, match="field and dwell"):
        BasisSet.load(tmp_path / "NAA.RAW")
    back = BasisSet.load(tmp_path / "NAA.RAW", field_mhz=123.2, dwell_s=1 / 4000)
    np.testing.assert_allclose(back.fids[0], b.fids[0], rtol=1e-9)
    lcmodel.write_raw(tmp_path / "raws" / "Cr.RAW" if False else tmp_path / "Cr.RAW", b.fids[0], 1 / 4000, 123.2)
    assert BasisSet.load(tmp_path / "Cr.RAW").names == ["Cr"]


def test_foreign_names_and_aliases(tmp_path):
    b = _singlet_basis()
    path = jmrui.write_text(tmp_path / "b.txt", np.vstack([b.fids, b.fids, b.fids]), b.dwell_s, b.field_mhz,
                            names=["PCho", "sIns", "Ace"])
    with pytest.raises(MetaboliteError, match="Ace"):
        BasisSet.load(path, unknown="error")
    assert BasisSet.load(path, unknown="drop").names == ["PCh", "Scyllo"]
    assert BasisSet.load(path).names == ["PCh", "Scyllo", "Ace"]  # kept by default
    # LCModel-style MM components keep their names instead of colliding as "MM"
    mm = jmrui.write_text(tmp_path / "mm.txt", np.vstack([b.fids] * 3), b.dwell_s, b.field_mhz,
                          names=["NAA", "MM09", "MM12"])
    assert BasisSet.load(mm).names == ["NAA", "MM09", "MM12"]
    assert canonical_name("mI") == "Ins" and canonical_name("Mac") == "MM" and canonical_name("MMBL") == "MM"
    assert canonical_name("Mac_3T") == "MM"
    with pytest.raises(MetaboliteError, match="sum of metabolites"):
        canonical_name("tCho")
    with pytest.raises(MetaboliteError, match="unknown metabolite"):
        simulate_basis(metabolites=["NAA", "Unobtainium"])


def test_resample_truncation_and_new_dwell(basis):
    short = basis.resample(n_points=1024)
    np.testing.assert_array_equal(short.fids, basis.fids[:, :1024])
    # resampling to 3000 Hz / 1536 points matches a direct simulation at that dwell
    direct = simulate_basis(bandwidth_hz=3000, n_points=1536, metabolites=["NAA", "Cr", "MM"])
    resampled = basis.subset(["NAA", "Cr", "MM"]).resample(dwell_s=1 / 3000, n_points=1536)
    err = np.abs(resampled.fids - direct.fids).max() / np.abs(direct.fids).max()
    assert err < 1e-4
    for name in ("NAA", "Cr"):
        p1, _ = peak_ppm(resampled[name], resampled.dwell_s, 123.2)
        p2, _ = peak_ppm(direct[name], direct.dwell_s, 123.2)
        assert p1 == pytest.approx(p2, abs=1e-3)
    with pytest.raises(BasisError, match="cannot be extrapolated"):
        basis.resample(n_points=4096)


def test_load_with_resampling_and_field_check(basis, tmp_path):
    path = basis.subset(["Cr"]).save(tmp_path / "cr.BASIS")
    assert BasisSet.load(path, n_points=512).n_points == 512
    with pytest.raises(ProtocolError, match="297.200 MHz was asked"):
        BasisSet.load(path, field_mhz=297.2)


def _write(path, text):
    path.write_text(text)
    return path


def test_bad_basis_files(basis, tmp_path):
    good = basis.subset(["Cr", "NAA"]).save(tmp_path / "good.BASIS").read_text()
    # missing header field
    bad = _write(tmp_path / "nofield.BASIS", good.replace("HZPPPM", "XXPPPM"))
    with pytest.raises(FileFormatError, match="HZPPPM"):
        BasisSet.load(bad)
    # truncated: cut in the middle of the last metabolite
    bad = _write(tmp_path / "trunc.BASIS", good[: int(len(good) * 0.8)])
    with pytest.raises(FileFormatError, match="truncated"):
        BasisSet.load(bad)
    # NaN in the data
    lines = good.splitlines()
    lines[-5] = "           NaN  1.0000000000E+00"
    with pytest.raises(FileFormatError, match="NaN"):
        BasisSet.load(_write(tmp_path / "nan.BASIS", "\n".join(lines)))
    # garbage
    with pytest.raises(FileFormatError):
        BasisSet.load(_write(tmp_path / "junk.BASIS", "this is not a basis file\n1 2 3\n"))
    # a word among the numbers is named with its line; Fortran's D exponents read as E ones
    lines = good.splitlines()
    lines[-5] = "  1.0E+00  abc"
    with pytest.raises(FileFormatError, match=rf"line {len(lines) - 4}: cannot read 'abc'"):
        BasisSet.load(_write(tmp_path / "word.BASIS", "\n".join(lines)))
    fortran = _write(tmp_path / "d.BASIS", "\n".join(good.splitlines()[:-5] + [
        line.replace("E", "D") for line in good.splitlines()[-5:]]))
    np.testing.assert_array_equal(BasisSet.load(fortran).fids, BasisSet.load(tmp_path / "good.BASIS").fids)
    # FSL json: missing field, corrupt JSON
    folder = tmp_path / "fsl"
    folder.mkdir()
    (folder / "Cr.json").write_text(json.dumps({"basis": {"basis_re": [1, 2], "basis_im": [0, 0]}}))
    with pytest.raises(FileFormatError, match="basis_dwell"):
        BasisSet.load(folder)
    (folder / "Cr.json").write_text('{"basis": {"basis_re": [1, 2')
    with pytest.raises(FileFormatError, match="corrupt or truncated"):
        BasisSet.load(folder)
    # truncated jMRUI
    jm = basis.subset(["Cr"]).save(tmp_path / "cr.txt").read_text()
    with pytest.raises(FileFormatError, match="truncated"):
        BasisSet.load(_write(tmp_path / "cut.txt", jm[: len(jm) // 2]))
    # truncated NIfTI-MRS
    raw = basis.subset(["Cr"]).save(tmp_path / "cr.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FileFormatError, match="corrupt or truncated"):
        BasisSet.load(tmp_path / "cut.nii.gz")
    with pytest.raises(FileFormatError, match="no such file"):
        BasisSet.load(tmp_path / "missing.BASIS")


def test_basisset_validation():
    fid = np.ones((2, 64), complex)
    with pytest.raises(BasisError, match="NaN"):
        BasisSet(["Cr", "NAA"], np.where(np.arange(64) == 3, np.nan, 1.0) * fid, 1e-3, 123.2)
    with pytest.raises(BasisError, match="2 names for 3"):
        BasisSet(["Cr", "NAA"], np.ones((3, 64)), 1e-3, 123.2)
    with pytest.raises(BasisError, match="duplicate"):
        BasisSet(["Cr", "Cr"], fid, 1e-3, 123.2)
    with pytest.raises(ProtocolError, match="dwell_s"):
        BasisSet(["Cr", "NAA"], fid, -1e-3, 123.2)


def test_never_overwrites_and_leaves_nothing_on_error(basis, tmp_path):
    path = basis.subset(["Cr"]).save(tmp_path / "cr.BASIS")
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        basis.save(path)
    assert path.read_bytes() == before
    basis.subset(["NAA"]).save(path, overwrite=True)
    assert BasisSet.load(path).names == ["NAA"]
    folder = basis.subset(["Cr"]).save(tmp_path / "fsl")
    with pytest.raises(OutputExistsError):
        basis.save(folder)
    with pytest.raises(FileFormatError, match="does not exist"):
        basis.save(tmp_path / "no" / "such" / "dir.BASIS")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cr.BASIS", "fsl"]  # no temporary files left behind


def test_simulation_cache_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("MRS_TF_CACHE", str(tmp_path))
    a = simulate_basis(metabolites=["Lac"])
    assert len(list((tmp_path / "basis").glob("*.npz"))) == 1
    b = simulate_basis(metabolites=["Lac"])
    np.testing.assert_array_equal(a.fids, b.fids)
    c = simulate_basis(metabolites=["Lac"], te1_ms=20, te2_ms=20)
    assert len(list((tmp_path / "basis").glob("*.npz"))) == 2
    assert not np.allclose(a.fids, c.fids)


def test_measured_mm_replaces_the_parametric_model(basis, tmp_path):
    from mrs_tf.io import lcmodel, nifti

    t = np.arange(4096) / 8000  # measured at another dwell and length: resampled to the basis
    measured = 5 * np.exp(2j * np.pi * (4.65 - 0.9) * 123.2 * t - np.pi * 30 * t)
    lcmodel.write_raw(tmp_path / "mm.RAW", measured, dwell_s=1 / 8000, field_mhz=123.2)
    nifti.write(tmp_path / "mm.nii.gz", measured.reshape(1, 1, 1, -1), 1 / 8000, 123.2)
    for path in (tmp_path / "mm.RAW", tmp_path / "mm.nii.gz"):
        new = basis.with_measured_mm(path)
        assert new.names == basis.names and new.n_points == basis.n_points
        np.testing.assert_allclose(new["MM"], measured[::2][:2048], atol=1e-6)
        np.testing.assert_array_equal(new["NAA"], basis["NAA"])
    sim = simulate_basis(metabolites=["NAA", "MM"], mm=tmp_path / "mm.RAW")
    np.testing.assert_allclose(sim["MM"], measured[::2][:2048], atol=1e-6)
    lcmodel.write_raw(tmp_path / "mm7t.RAW", measured, dwell_s=1 / 8000, field_mhz=297.2)
    with pytest.raises(ProtocolError, match="measured MM is for 297.200 MHz"):
        basis.with_measured_mm(tmp_path / "mm7t.RAW")


def test_resampling_refuses_to_alias():
    t = np.arange(2048) / 8000
    fid = np.exp(2j * np.pi * 3000 * t)  # 3 kHz off-centre: outside a 4 kHz band
    with pytest.raises(BasisError, match="alias"):
        BasisSet(["Cr"], fid[None], 1 / 8000, 123.2).resample(dwell_s=1 / 4000, n_points=1024)


OSPREY_MAT = Path(__file__).resolve().parents[2] / "shared" / "data" / "osprey" / "basis" / "basis_ge_press30.mat"


def _osprey_mat(tmp_path, basis, conjugate=True, centre_ppm=3.0, names=None, **extra):
    """``basis`` written as Osprey writes a ``.mat`` basis: points x signals, frequencies relative to the receiver at
    ``centre_ppm``, conjugated (Osprey's orientation) or not, the first point halved."""
    import scipy.io

    t = basis.time
    fids = basis.fids * np.exp(-2j * np.pi * (4.65 - centre_ppm) * basis.field_mhz * t)[None, :]
    fids = np.conj(fids) if conjugate else fids
    fids = fids.copy()
    fids[:, 0] *= 0.5
    struct = {"fids": fids.T, "name": np.array(names or basis.names, dtype=object),
              "dwelltime": basis.dwell_s, "spectralwidth": 1 / basis.dwell_s, "Bo": basis.field_mhz / 42.577478,
              "centerFreq": centre_ppm, "te": 30, "seq": "PRESS_FF", **extra}
    path = tmp_path / "osprey.mat"
    scipy.io.savemat(str(path), {"BASIS": struct})
    return path


@pytest.mark.parametrize("conjugate", [True, False])
def test_osprey_mat_basis_reads_into_mrs_tf_convention(basis, tmp_path, conjugate):
    """Osprey's MATLAB basis files were refused ('unknown basis format .mat'). Now they read with the frequencies
    moved from the receiver's ppm to 4.65, the orientation taken from where the NAA/Cr singlets land (Osprey's
    files are conjugated; a file that is not reads as well), the halved first point doubled back and Osprey's CrCH2
    fitting device left out."""
    b = basis.subset(["Cr", "GPC", "NAA", "Glu", "Ins"])
    with_ch2 = BasisSet(b.names + ["CrCH2"], np.vstack([b.fids, -b.fids[:1]]), b.dwell_s, b.field_mhz)
    path = _osprey_mat(tmp_path, with_ch2, conjugate=conjugate)
    back = BasisSet.load(path)
    assert back.names == b.names
    assert back.field_mhz == pytest.approx(b.field_mhz, rel=1e-9) and back.dwell_s == pytest.approx(b.dwell_s)
    assert back.protocol["te_ms"] == 30 and back.protocol["sequence"] == "press"
    assert back.protocol["sign"].startswith("conjugated" if conjugate else "as stored")
    assert "CrCH2" in back.protocol["left_out"] and back.protocol["format"] == "osprey"
    np.testing.assert_allclose(back.fids, b.fids, atol=1e-9 * np.abs(b.fids).max())
    naa = back.fids[back.index("NAA")]
    assert peak_ppm(naa, back.dwell_s, back.field_mhz)[0] == pytest.approx(2.008, abs=0.01)


def test_bad_osprey_mat_files_are_named(basis, tmp_path):
    import scipy.io

    with pytest.raises(FileFormatError, match="no 'BASIS' struct"):
        scipy.io.savemat(str(tmp_path / "x.mat"), {"other": np.zeros(3)})
        BasisSet.load(tmp_path / "x.mat")
    (tmp_path / "y.mat").write_bytes(b"not a MATLAB file at all")
    with pytest.raises(FileFormatError, match="not a readable MATLAB file"):
        BasisSet.load(tmp_path / "y.mat")
    b = basis.subset(["Cr", "NAA"])
    with pytest.raises(FileFormatError, match="do not hold one FID per name"):
        BasisSet.load(_osprey_mat(tmp_path, b, names=["Cr", "NAA", "Glu"]))
    with pytest.raises(FileFormatError, match="'Bo' = 'three' is not a number"):
        BasisSet.load(_osprey_mat(tmp_path, b, Bo="three"))
    with pytest.raises(FileFormatError, match="does not write them"):
        b.save(tmp_path / "out.mat")


@pytest.mark.skipif(not OSPREY_MAT.exists(), reason="../shared/data/osprey not here")
def test_osprey_ge_mat_basis_loads_and_fits_a_spectrum_made_from_it(tmp_path):
    """The GE PRESS TE 30 basis Osprey ships as .mat: its NAA and Cr singlets land at their table ppm (no reference
    correction needed), its MM/lipid components are kept as free signals, and `mrs-tf fit --basis` with it recovers
    the ratios of a spectrum synthesised from it."""
    from mrs_tf import synthesize
    from mrs_tf.cli import main
    from mrs_tf.core.table import ResultTable
    from mrs_tf.fitting.basis_prep import reference_offset_ppm

    b = BasisSet.load(OSPREY_MAT)
    assert b.field_mhz == pytest.approx(127.73, abs=0.01) and b.n_points == 2048 and b.dwell_s == 4e-4
    assert {"NAA", "Cr", "PCr", "Ins", "Scyllo", "MM09", "Lip13"} <= set(b.names) and "CrCH2" not in b.names
    assert abs(reference_offset_ppm(b)) < 0.005
    for name, ppm in (("NAA", 2.008), ("Cr", 3.027)):  # the real (absorption) peak: orientation and phase right
        assert peak_ppm(b.fids[b.index(name)], b.dwell_s, b.field_mhz)[0] == pytest.approx(ppm, abs=0.005), name
    brain = b.subset([n for n in ("Cr", "PCr", "NAA", "GPC", "PCh", "Glu", "Gln", "Ins", "MM09", "MM20")])
    conc = np.array([[4.0, 4.0, 12.0, 1.0, 0.5, 10.0, 3.0, 6.0, 1.0, 1.0]])
    fids, _ = synthesize(brain, 1, snr=80.0, seed=2, concentrations=conc)
    from mrs_tf.formats import nifti

    data = nifti.write(tmp_path / "spectrum.nii.gz", fids.reshape(1, 1, 1, -1).astype(np.complex128), brain.dwell_s,
                       brain.field_mhz, te_s=0.03, sequence="press")
    out = tmp_path / "fit.csv"
    assert main(["fit", "--basis", str(OSPREY_MAT), str(data), "--out", str(out)]) == 0
    table = ResultTable.read_csv(out)
    assert table["status"][0] == "ok", table["message"][0]
    for name, truth in (("NAA+NAAG", 1.5), ("GPC+PCh", 1.5 / 8), ("Glu", 10 / 8), ("Ins", 6 / 8)):
        assert float(table[f"{name}_over_tCr"][0]) == pytest.approx(truth, rel=0.1), name


def test_signals_can_be_left_out_of_a_basis(basis):
    """`BasisSet.without` (the `--omit` of fit, quantify and train --basis): names as the basis spells them in any
    case, or mrs-tf's aliases; every name the basis lacks listed at once beside the basis's signals; no tCr left is
    refused."""
    out = basis.without(["glu", "mI", "GABA"])
    assert out.names == [n for n in basis.names if n not in ("Glu", "Ins", "GABA")]
    assert out.protocol["omitted"] == "Glu, Ins, GABA"
    np.testing.assert_array_equal(out["NAA"], basis["NAA"])
    assert out.without(["Tau"]).protocol["omitted"] == "Glu, Ins, GABA, Tau"
    assert basis.without([]) is basis
    with pytest.raises(MetaboliteError, match=r"cannot leave out EtOH, Foo: not in this basis \(its signals: Ala"):
        basis.without(["EtOH", "NAA", "Foo"])
    with pytest.raises(MetaboliteError, match="no tCr"):
        basis.without(["Cr", "PCr"])


@pytest.mark.skipif(not OSPREY_MAT.exists(), reason="../shared/data/osprey not here")
def test_fit_and_train_leave_out_the_signals_named_by_omit(tmp_path, capsys):
    """Osprey's .mat basis holds 36 signals, among them EtOH, bHB, bHG, Phenyl and Tyros that a brain spectrum
    lacks; `--omit` leaves them out of the fit (and of a network's training basis): no column of theirs, said on
    stderr, a name the basis lacks refused before any fit with the basis's signals listed."""
    from mrs_tf import synthesize
    from mrs_tf.cli import main
    from mrs_tf.core.table import ResultTable
    from mrs_tf.formats import nifti
    from mrs_tf.nn.config import load_training_basis

    b = BasisSet.load(OSPREY_MAT)
    brain = b.subset(["Cr", "PCr", "NAA", "GPC", "Glu", "Ins"])
    fids, _ = synthesize(brain, 1, snr=80.0, seed=2, concentrations=np.array([[4.0, 4.0, 12.0, 1.5, 10.0, 6.0]]))
    data = nifti.write(tmp_path / "s.nii.gz", fids.reshape(1, 1, 1, -1).astype(np.complex128), b.dwell_s,
                       b.field_mhz, te_s=0.03, sequence="press")
    omit = ["EtOH", "bHB", "bHG", "Phenyl", "Tyros"]
    out = tmp_path / "fit.csv"
    # comma-separated, or the flag repeated; before the data file (a list flag would have taken it for a name)
    assert main(["fit", "--basis", str(OSPREY_MAT), "--omit", ",".join(omit[:3]), "--omit", ",".join(omit[3:]),
                 str(data), "--out", str(out)]) == 0
    assert "left out EtOH, bHB, bHG, Phenyl, Tyros" in capsys.readouterr().err
    table = ResultTable.read_csv(out)
    assert "Cit" in table and not set(omit) & set(table)
    assert float(table["NAA+NAAG_over_tCr"][0]) == pytest.approx(1.5, rel=0.1)
    assert main(["fit", "--basis", str(OSPREY_MAT), str(data), "--omit", "EtOH,Ethanol", "--out",
                 str(tmp_path / "x.csv")]) == 2
    assert "cannot leave out Ethanol: not in this basis" in capsys.readouterr().err
    assert main(["fit", str(data), "--omit", "EtOH", "--out", str(tmp_path / "y.csv")]) == 2
    assert "give --basis too" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "y.csv").exists()
    trained = load_training_basis(OSPREY_MAT, data, omit=omit)
    assert not set(omit) & set(trained.names) and "NAA" in trained.names

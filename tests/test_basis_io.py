"""Basis sets: round trips through every format, sign conventions pinned per format, bad files."""
import json

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

"""Water scaling to mM: the formula, the water amplitude, and known concentrations recovered by network and QUEST."""
import math

import numpy as np
import pytest

from mrs_tf import quest, synthesize
from mrs_tf.cli import main
from mrs_tf.errors import MRSError
from mrs_tf.io import nifti
from mrs_tf.table import ResultTable
from mrs_tf.water import PURE_WATER_MM, WaterScaling, scale_table, water_amplitude

X_MM, Y = 29_697.0, 1.206  # the ISMRM 2016 fitting challenge's settings, entered as given


def _water_fid(basis, amplitude, lw_hz=5.0, phase=0.7, seed=0):
    t = basis.time
    rng = np.random.default_rng(seed)
    fid = amplitude * np.exp(1j * phase - np.pi * lw_hz * t + 2j * np.pi * 1.5 * t)  # 4.65 ppm, 1.5 Hz off
    return fid + 1e-4 * amplitude * (rng.standard_normal(len(t)) + 1j * rng.standard_normal(len(t)))


def test_tissue_model_and_overrides_give_the_documented_numbers():
    s = WaterScaling(te_s=0.030, tr_s=2.0, f_gm=0.6, f_wm=0.4, f_csf=0.0)
    by_hand = PURE_WATER_MM * (0.6 * 0.78 * math.exp(-0.03 / 0.099) * (1 - math.exp(-2 / 1.82))
                               + 0.4 * 0.65 * math.exp(-0.03 / 0.069) * (1 - math.exp(-2 / 1.08)))
    assert s.effective_water_mm() == pytest.approx(by_hand)
    assert s.metabolite_factor() == pytest.approx(1 / (math.exp(-0.03 / 0.16) * (1 - math.exp(-2 / 1.35))))
    with_csf = WaterScaling(f_gm=0.5, f_wm=0.3, f_csf=0.2)
    assert with_csf.effective_water_mm() > s.effective_water_mm()  # CSF water counted, metabolites only in tissue
    direct = WaterScaling(water_conc_mm=X_MM, metab_relax_factor=Y)
    assert direct.effective_water_mm() == X_MM and direct.metabolite_factor() == Y
    with pytest.raises(MRSError, match="sum to 1"):
        WaterScaling(f_gm=0.6, f_wm=0.6).effective_water_mm()


def test_water_amplitude_is_the_line_area_whatever_phase_and_scale(basis):
    fids = np.array([_water_fid(basis, 2 * X_MM * g, phase=p, seed=k)
                     for k, (g, p) in enumerate(((1.0, 0.0), (1e3, 2.5), (1e-2, -1.2)))])
    amp = water_amplitude(fids, basis.dwell_s, basis.field_mhz)
    np.testing.assert_allclose(amp / np.array([1.0, 1e3, 1e-2]), 2 * X_MM, rtol=1e-3)
    with pytest.raises(MRSError, match="no water signal"):
        water_amplitude(np.exp(-basis.time * 10 + 2j * np.pi * 300 * basis.time), basis.dwell_s, basis.field_mhz)


@pytest.fixture(scope="module")
def scaled_data(basis):
    """Metabolite spectra whose apparent concentrations are the true ones / Y, at receiver gain g, and a water
    reference of 2 X per unit gain: water scaling must return the true mM."""
    rng = np.random.default_rng(5)
    from mrs_tf.metabolites import prior_ranges

    r = prior_ranges(basis.names)
    true = rng.uniform(r[:, 0], r[:, 1], (12, len(basis.names)))
    g = 3.7e4
    fids, _ = synthesize(basis, 12, snr=300, seed=9, concentrations=true / Y)
    return fids * g, _water_fid(basis, 2 * X_MM * g), true


def test_network_and_quest_recover_known_mM_within_3_percent(scaled_data, basis):
    import mrs_tf

    fids, water, true = scaled_data
    amp = water_amplitude(water, basis.dwell_s, basis.field_mhz)[0]
    scaling = WaterScaling(water_conc_mm=X_MM, metab_relax_factor=Y)
    nn = mrs_tf.Quantifier.load("saved_models/press3t_te30").quantify(fids, basis.dwell_s, basis.field_mhz)
    qt = quest.fit(fids, basis, n_jobs=1, progress=False)
    for table in (nn, qt):
        scale_table(table, ["NAA", "Cr+PCr", "Glu"], amp, scaling)
        for name, cols in (("NAA", [basis.index("NAA")]), ("Cr+PCr", [basis.index("Cr"), basis.index("PCr")])):
            ratio = np.mean(table[f"{name}_mM"] / true[:, cols].sum(1))
            assert abs(ratio - 1) < 0.03, (name, ratio)
    assert "NAA_sd_mM" in nn and "NAA_crlb_mM" in qt


def _write_files(folder, basis, fids, water):
    """metab.nii.gz (one row per FID) and water.nii.gz, TE 30 ms, in ``folder``."""
    data, ref = folder / "metab.nii.gz", folder / "water.nii.gz"
    for path, x in ((data, fids), (ref, water.reshape(1, -1))):
        nifti.write(path, x.reshape(len(x), 1, 1, -1).astype(np.complex128), basis.dwell_s, basis.field_mhz,
                    te_s=0.03)
    return data, ref


def test_cli_quantify_and_fit_with_water(scaled_data, basis, tmp_path, capsys):
    fids, water, true = scaled_data
    data, ref = _write_files(tmp_path, basis, fids[:3], water)
    out = tmp_path / "nn.csv"
    assert main(["quantify", str(data), "--water", str(ref), "--water-conc-mm", str(X_MM), "--metab-relax-factor",
                 str(Y), "--out", str(out)]) == 0
    table = ResultTable.read_csv(out)
    ratio = np.asarray(table["NAA_mM"], float) / true[:3, basis.index("NAA")]
    assert abs(ratio.mean() - 1) < 0.05 and np.all(np.abs(ratio - 1) < 0.1), ratio
    basis_file = tmp_path / "b.BASIS"
    basis.save(basis_file)
    assert main(["fit", "--basis", str(basis_file), str(data), "--water", str(ref), "--n-jobs", "1",
                 "--out", str(tmp_path / "q.csv")]) == 0  # tissue model defaults: finite mM
    assert np.all(np.asarray(ResultTable.read_csv(tmp_path / "q.csv")["NAA_mM"], float) > 0)
    # a water reference from another protocol is refused, nothing written
    bad = tmp_path / "water7t.nii.gz"
    nifti.write(bad, water.reshape(1, 1, 1, -1).astype(np.complex128), basis.dwell_s, 297.2, te_s=0.03)
    capsys.readouterr()
    assert main(["quantify", str(data), "--water", str(bad), "--out", str(tmp_path / "x.csv")]) == 2
    assert "water reference's protocol differs" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_basis_normalisation_is_measured_on_the_reference_singlets(basis):
    from mrs_tf.basis import BasisSet
    from mrs_tf.errors import BasisError
    from mrs_tf.water import basis_amplitude_per_proton

    value, parts = basis_amplitude_per_proton(basis)
    assert value == pytest.approx(1.0, abs=2e-3) and set(parts) == {"Cr", "PCr", "NAA"}
    # a foreign convention (here 0.25 per proton) with broader lines and another phase: the same 0.25
    t = basis.time
    foreign = BasisSet(list(basis.names), basis.fids * 0.25 * np.exp(-np.pi * 4 * t + 0.8j), basis.dwell_s,
                       basis.field_mhz, basis.ref_ppm, {})
    assert basis_amplitude_per_proton(foreign)[0] == pytest.approx(0.25, rel=3e-3)
    with pytest.raises(BasisError, match="none of Cr, PCr, NAA"):
        basis_amplitude_per_proton(basis.subset(["Glu", "Gln", "Ins"]))


def test_fit_with_a_differently_normalised_basis_gives_the_same_mM(scaled_data, basis, tmp_path, capsys):
    """The usual source of wrong absolute numbers: the same basis in another scale must give the same mM."""
    from mrs_tf.basis import BasisSet

    fids, water, true = scaled_data
    data, ref = _write_files(tmp_path, basis, fids[:4], water)
    scaled = tmp_path / "scaled.BASIS"
    BasisSet(list(basis.names), basis.fids / 5.0, basis.dwell_s, basis.field_mhz, basis.ref_ppm,
             dict(basis.protocol)).save(scaled)
    water_args = ["--water", str(ref), "--water-conc-mm", str(X_MM), "--metab-relax-factor", str(Y), "--n-jobs", "1"]
    assert main(["fit", "--basis", str(scaled), str(data), *water_args, "--out", str(tmp_path / "q.csv")]) == 0
    assert "basis normalisation: 0.2 FID units per proton" in capsys.readouterr().out
    table = ResultTable.read_csv(tmp_path / "q.csv")
    naa = np.asarray(table["NAA"], float)
    assert np.all(naa > 3 * true[:4, basis.index("NAA")] / Y)  # basis units: 5x the mM before scaling
    ratio = np.asarray(table["NAA_mM"], float) / true[:4, basis.index("NAA")]
    assert abs(ratio.mean() - 1) < 0.03, ratio
    # an explicit normalisation overrides the measured one (here a wrong one: a fifth of the mM)
    assert main(["fit", "--basis", str(scaled), str(data), *water_args, "--basis-amplitude-per-proton", "0.04",
                 "--out", str(tmp_path / "q2.csv")]) == 0
    ratio2 = np.asarray(ResultTable.read_csv(tmp_path / "q2.csv")["NAA_mM"], float) / true[:4, basis.index("NAA")]
    np.testing.assert_allclose(ratio2, ratio / 5, rtol=1e-6)

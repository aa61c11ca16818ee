"""In vivo-like synthesis: reproducibility, SNR definition, the signal model, the tf.data front end."""
import numpy as np
import pytest

from mrs_tf import MRSError, SynthesisConfig, synthesize
from mrs_tf.metabolites import prior_ranges
from mrs_tf.synth import concentration_matrix

QUIET = SynthesisConfig(lorentz_hz=(0, 0), gauss_hz=(0, 0), shift_ppm=(0, 0), metab_shift_hz=0.0, phase0_deg=(0, 0),
                        phase1_deg_per_ppm=(0, 0), baseline_components=0)


def test_fixed_seed_is_bit_identical_and_seeds_differ(basis):
    a, ta = synthesize(basis, n=300, seed=7)
    b, tb = synthesize(basis, n=300, seed=7, n_jobs=1, chunk_size=64)
    np.testing.assert_array_equal(a, b)
    for key in ta:
        np.testing.assert_array_equal(ta[key], tb[key])
    c, _ = synthesize(basis, n=300, seed=8)
    assert not np.allclose(a, c)
    assert a.dtype == np.complex64 and a.shape == (300, basis.n_points)


def test_truth_table(basis):
    _, truth = synthesize(basis, n=500, seed=1)
    conc = concentration_matrix(truth, basis.names)
    bounds = prior_ranges(basis.names)
    assert np.all(conc >= bounds[:, 0]) and np.all(conc <= bounds[:, 1])
    for key in ("lw_lorentz_hz", "lw_gauss_hz", "shift_hz", "phase0_deg", "phase1_deg_per_ppm", "snr", "noise_sd",
                "NAA_shift_hz", "baseline_amp_0", "naa_height"):
        assert truth[key].shape == (500,)
    assert 10 <= truth["snr"].min() and truth["snr"].max() <= 100


def test_noise_free_signal_is_the_linear_combination(basis):
    conc = np.random.default_rng(0).uniform(0, 10, (4, basis.n_metabolites))
    fids, _ = synthesize(basis, n=4, snr=None, concentrations=conc, config=QUIET)
    np.testing.assert_allclose(fids, conc @ basis.fids, rtol=0, atol=1e-5 * np.abs(conc @ basis.fids).max())


def test_lineshape_shift_and_phase_follow_the_model(basis):
    cfg = QUIET.with_(lorentz_hz=(3, 3), gauss_hz=(5, 5), shift_ppm=(0.05, 0.05), phase0_deg=(90, 90))
    conc = np.zeros((1, basis.n_metabolites))
    conc[0, basis.index("Cr")] = 2.0
    fid, truth = synthesize(basis, n=1, snr=None, concentrations=conc, config=cfg)
    t = basis.time
    expected = 2.0 * basis["Cr"] * 1j * np.exp(-np.pi * 3 * t - (np.pi * 5 * t) ** 2 / (4 * np.log(2))) \
        * np.exp(2j * np.pi * 0.05 * basis.field_mhz * t)
    np.testing.assert_allclose(fid[0], expected, atol=1e-5 * np.abs(expected).max())


def test_per_metabolite_shifts_are_exact(basis):
    """The Jacobi-Anger expansion equals applying exp(2 pi i d_m t) to each basis signal directly."""
    cfg = QUIET.with_(metab_shift_hz=1.5)
    conc = np.random.default_rng(1).uniform(1, 5, (3, basis.n_metabolites))
    fids, truth = synthesize(basis, n=3, snr=None, concentrations=conc, config=cfg, seed=3)
    shifts = np.stack([truth[f"{n}_shift_hz"] for n in basis.names], axis=1)
    assert np.abs(shifts).max() > 1.0
    direct = np.einsum("nm,nmt->nt", conc, basis.fids[None] * np.exp(2j * np.pi * shifts[..., None] * basis.time))
    np.testing.assert_allclose(fids, direct, atol=2e-5 * np.abs(direct).max())


def test_first_order_phase_rotates_by_ppm(basis):
    conc = np.zeros((1, basis.n_metabolites))
    conc[0, basis.index("NAA")] = 10
    cfg = QUIET.with_(lorentz_hz=(4, 4))
    base, _ = synthesize(basis, n=1, snr=None, concentrations=conc, config=cfg)
    rot, _ = synthesize(basis, n=1, snr=None, concentrations=conc, config=cfg.with_(phase1_deg_per_ppm=(10, 10)))
    k = np.argmax(np.abs(np.fft.fftshift(np.fft.fft(base[0]))))
    ratio = np.fft.fftshift(np.fft.fft(rot[0]))[k] / np.fft.fftshift(np.fft.fft(base[0]))[k]
    assert np.angle(ratio, deg=True) == pytest.approx(10 * (basis.ppm[k] - 4.65), abs=0.01)


def test_snr_matches_the_request(basis):
    """SNR = NAA singlet height / std of the real noise in the spectrum (measured, zero-filled peak)."""
    n = 200
    conc = np.zeros((n, basis.n_metabolites))
    conc[:, basis.index("NAA")] = np.random.default_rng(2).uniform(8, 16, n)
    cfg = SynthesisConfig(baseline_components=0, metab_shift_hz=0.0)
    noisy, truth = synthesize(basis, n=n, snr=(10, 100), seed=5, concentrations=conc, config=cfg)
    clean, _ = synthesize(basis, n=n, snr=None, seed=5, concentrations=conc, config=cfg)
    spec_clean = np.abs(np.fft.fft(clean, 16 * basis.n_points, axis=1))
    height = spec_clean.max(axis=1)
    noise_sd = np.fft.fft(noisy - clean, axis=1).real.std(axis=1)
    ratio = height / noise_sd / truth["snr"]
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.05)
    # the NAA aspartyl multiplet (2.5-2.7 ppm) adds up to ~1 % at the singlet when lines are broad
    np.testing.assert_allclose(height, truth["naa_height"], rtol=0.02)


def test_nuisance_signals_optional(basis):
    cfg = SynthesisConfig(water_amp=(5, 5), lipid_amp=(1, 1))
    fids, truth = synthesize(basis, n=8, seed=0, config=cfg, snr=None)
    spec = np.abs(np.fft.fftshift(np.fft.fft(fids, axis=1), axes=1))
    water = np.abs(basis.ppm - 4.65) < 0.15
    naa = np.abs(basis.ppm - 2.0) < 0.1
    assert np.all(spec[:, water].max(axis=1) > 2 * spec[:, naa].max(axis=1))
    assert np.all(truth["water_amp"] == 5)


def test_bad_arguments(basis):
    with pytest.raises(MRSError, match="snr"):
        synthesize(basis, n=2, snr=(50, 10))
    with pytest.raises(MRSError, match="concentrations must have shape"):
        synthesize(basis, n=2, concentrations=np.ones((3, 2)))
    with pytest.raises(MRSError, match="BasisSet"):
        synthesize(np.ones((21, 2048)), n=2)
    with pytest.raises(MRSError, match="at least 1"):
        synthesize(basis, n=0)


def test_tf_data_front_end_uses_the_same_synthesis(basis):
    from mrs_tf.data import synthetic_batch, synthetic_dataset

    from mrs_tf.core.threads import one_blas_thread

    ds = synthetic_dataset(basis, batch_size=8, seed=3, n_batches=3, nuisance=("lw_lorentz_hz", "shift_hz"))
    with one_blas_thread():  # as train() does: the same bits as a call on this thread
        batches = list(ds.as_numpy_iterator())
    assert len(batches) == 3
    assert batches[1]["fid"].shape == (8, basis.n_points) and batches[1]["nuisance"].shape == (8, 2)
    fids, conc, extra = synthetic_batch(basis, 8, 3, 1, nuisance=("lw_lorentz_hz", "shift_hz"))
    np.testing.assert_array_equal(batches[1]["fid"], fids)
    np.testing.assert_array_equal(batches[1]["concentrations"], conc)
    assert not np.array_equal(batches[0]["fid"], batches[1]["fid"])


def test_varied_mm_shape_keeps_its_total_and_moves_its_lines(basis):
    """mm_* settings: per-spectrum component amplitudes/positions/widths/lineshape of the parametric MM. Nearly zero
    spreads give the fixed basis MM (shift included); real spreads keep FID(0) = the MM total and move the 0.91 ppm
    line within the spread; a basis whose MM is not mrs-tf's parametric one keeps its shape."""
    from mrs_tf import BasisSet
    from mrs_tf.macromolecules import MM_COMPONENTS

    conc = np.random.default_rng(2).uniform(1, 5, (3, basis.n_metabolites))
    cfg = QUIET.with_(metab_shift_hz=1.5)
    fixed, _ = synthesize(basis, n=3, snr=None, concentrations=conc, config=cfg, seed=4)
    tiny, truth = synthesize(basis, n=3, snr=None, concentrations=conc, config=cfg.with_(mm_amp_spread=1e-9), seed=4)
    assert "mm_amp_0" in truth
    np.testing.assert_allclose(tiny, fixed, atol=3e-5 * np.abs(fixed).max())
    # the MM shape is drawn last: every other parameter is the same draw with or without it
    _, t_fixed = synthesize(basis, n=5, snr=(10, 100), seed=6)
    _, t_varied = synthesize(basis, n=5, snr=(10, 100), seed=6, config=SynthesisConfig(mm_ppm_spread=0.04))
    for key in t_fixed:
        np.testing.assert_array_equal(t_fixed[key], t_varied[key])

    only_mm = basis.subset(["NAA", "MM"])
    c = np.tile([[0.0, 2.0]], (200, 1))
    spread = QUIET.with_(mm_amp_spread=0.4, mm_ppm_spread=0.04, mm_width_spread=0.3, mm_lorentz_fraction=(0, 1))
    fids, truth = synthesize(only_mm, n=200, snr=None, concentrations=c, config=spread, seed=5)
    total = sum(a for _, _, a in MM_COMPONENTS)
    np.testing.assert_allclose(fids[:, 0].real, 2.0 * total, rtol=1e-4)  # the same signal, however shaped
    assert np.ptp(truth["mm_ppm_0"]) > 0.06 and np.all(np.abs(truth["mm_ppm_0"] - 0.91) <= 0.04)
    spec = np.abs(np.fft.fftshift(np.fft.fft(fids * np.exp(-np.pi * 2 * basis.time), axis=1), axes=1))
    window = (basis.ppm > 0.8) & (basis.ppm < 1.02)
    peak = basis.ppm[window][np.argmax(spec[:, window], axis=1)]
    assert np.corrcoef(peak, truth["mm_ppm_0"])[0, 1] > 0.8  # the line sits where the truth says
    assert np.std(np.abs(fids[:, 200])) > 0.05 * np.abs(fids[:, 200]).mean()  # shapes differ
    from mrs_tf.macromolecules import mm_fid

    other_mm = mm_fid(basis.n_points, basis.dwell_s, basis.field_mhz, components=MM_COMPONENTS[:5])  # another shape
    measured = BasisSet(only_mm.names, np.vstack([only_mm.fids[0], other_mm]), basis.dwell_s, basis.field_mhz)
    _, truth = synthesize(measured, n=2, snr=None, concentrations=c[:2], config=spread)
    assert "mm_amp_0" not in truth
    # mrs-tf's MM in another basis's units (basis_prep.parametric_mm) is still varied, in those units
    scaled = BasisSet(only_mm.names, only_mm.fids * 1e-4, basis.dwell_s, basis.field_mhz)
    fids, truth = synthesize(scaled, n=20, snr=None, concentrations=c[:20], config=spread, seed=5)
    assert "mm_amp_0" in truth
    np.testing.assert_allclose(fids[:, 0].real, 2.0 * total * 1e-4, rtol=1e-4)



def test_one_blas_thread_holds_while_any_caller_is_inside():
    """The interleaving that broke threadpoolctl's process-wide limit (tf.data's parallel calls of the synthesis):
    A enters, B enters, A leaves while B is still inside (BLAS must stay at one thread; threadpoolctl restored A's
    original count here), B leaves (the original count must come back; threadpoolctl left B's "original", one)."""
    from threadpoolctl import threadpool_info

    from mrs_tf.core.threads import one_blas_thread

    def blas_threads():
        return {d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}

    before = blas_threads()
    a, b = one_blas_thread(), one_blas_thread()
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert blas_threads() == {1}
    b.__exit__(None, None, None)
    assert blas_threads() == before


def test_creatine_ch2_scaled_per_spectrum_and_nothing_else(basis):
    """cr_ch2_scale: each spectrum's Cr and PCr CH2 singlets (3.9 ppm) times g, their CH3 (3.03 ppm) and every other
    draw as without it; the same as a basis whose Cr and PCr carry g times their CH2."""
    from dataclasses import replace

    from mrs_tf.synth import cr_ch2_part

    cfg = QUIET.with_(lorentz_hz=(3.0, 3.0), metab_shift_hz=1.0)
    plain, t0 = synthesize(basis, n=16, snr=None, seed=5, config=cfg)
    scaled, t1 = synthesize(basis, n=16, snr=None, seed=5, config=cfg.with_(cr_ch2_scale=(0.6, 0.6)))
    np.testing.assert_allclose(t1["cr_ch2_scale"], 0.6)
    assert set(t1) - set(t0) == {"cr_ch2_scale"}
    for key in t0:
        np.testing.assert_array_equal(t0[key], t1[key])
    fids = basis.fids.copy()
    for nm in ("Cr", "PCr"):
        fids[basis.index(nm)] -= 0.4 * cr_ch2_part(basis, nm)
    by_hand, _ = synthesize(replace(basis, fids=fids), n=16, snr=None, seed=5, config=cfg)
    np.testing.assert_allclose(scaled, by_hand, atol=2e-5 * np.abs(by_hand).max())
    # in the spectrum: the 3.9 ppm creatine line lower by the CH2 share of it, the 3.03 ppm line as it was
    ppm = basis.ref_ppm - np.fft.fftfreq(basis.n_points, basis.dwell_s) / basis.field_mhz
    spec0, spec1 = (np.abs(np.fft.fft(f, axis=1)) for f in (plain, scaled))
    ch3 = np.abs(ppm - 3.03) < 0.02
    assert np.allclose(spec1[:, ch3].max(1), spec0[:, ch3].max(1), rtol=0.01)
    ch2 = np.abs(ppm - 3.92) < 0.02
    assert np.all(spec1[:, ch2].max(1) < 0.85 * spec0[:, ch2].max(1))
    # drawn per spectrum within the range
    _, t2 = synthesize(basis, n=64, snr=None, seed=5, config=cfg.with_(cr_ch2_scale=(0.7, 1.0)))
    assert 0.7 <= t2["cr_ch2_scale"].min() and t2["cr_ch2_scale"].max() <= 1.0 and np.ptp(t2["cr_ch2_scale"]) > 0.2


def test_first_points_offset_by_naa_heights_and_nothing_else(basis):
    """first_points_amp: each of the FID's first FIRST_POINTS points + a complex offset of the drawn number of NAA
    heights (a flat line of that height under the spectrum, as a scanner's receiver distorts the first points);
    every other point and every other draw as without it; off by default."""
    from mrs_tf.physics.synth import FIRST_POINTS

    cfg = QUIET.with_(lorentz_hz=(3.0, 3.0))
    plain, t0 = synthesize(basis, n=16, snr=None, seed=5, config=cfg)
    assert not any(k.startswith("first_point") for k in t0)
    moved, t1 = synthesize(basis, n=16, snr=None, seed=5, config=cfg.with_(first_points_amp=(0.02, 0.08)))
    for key in t0:
        np.testing.assert_array_equal(t0[key], t1[key])
    np.testing.assert_array_equal(moved[:, FIRST_POINTS:], plain[:, FIRST_POINTS:])
    for k in range(FIRST_POINTS):
        amp, phase = t1[f"first_point_amp_{k}"], np.deg2rad(t1[f"first_point_phase_deg_{k}"])
        assert 0.02 <= amp.min() and amp.max() <= 0.08 and np.ptp(amp) > 0.02 and np.ptp(phase) > 1.0
        expected = amp * t1["naa_height"] * np.exp(1j * phase)
        np.testing.assert_allclose(moved[:, k] - plain[:, k], expected, rtol=1e-4, atol=1e-6 * t1["naa_height"].max())
    # point 0 alone: the whole spectrum (np.fft.fft units) moves by its offset, in NAA heights
    only0 = np.zeros_like(moved)
    only0[:, 0] = moved[:, 0] - plain[:, 0]
    shift = np.fft.fft(only0, axis=1)
    np.testing.assert_allclose(np.abs(shift).mean(1) / t1["naa_height"], t1["first_point_amp_0"], rtol=1e-4)


def test_log_uniform_linewidths_reach_narrow_lines_and_change_no_other_draw(basis):
    """linewidth_draw="log": Lorentzian and Gaussian widths log-uniform in their ranges (as many spectra at 1-2 Hz as
    at 6-12 Hz), every other draw as with the uniform default."""
    cfg = QUIET.with_(lorentz_hz=(1.0, 12.0), gauss_hz=(2.0, 14.0))
    _, flat = synthesize(basis, n=4000, snr=None, seed=2, config=cfg)
    _, log = synthesize(basis, n=4000, snr=None, seed=2, config=cfg.with_(linewidth_draw="log"))
    for key in flat:
        if key not in ("lw_lorentz_hz", "lw_gauss_hz", "naa_height", "noise_sd"):  # the last two follow the lines
            np.testing.assert_array_equal(flat[key], log[key])
    for key, (lo, hi) in (("lw_lorentz_hz", (1.0, 12.0)), ("lw_gauss_hz", (2.0, 14.0))):
        w = log[key]
        assert lo <= w.min() and w.max() <= hi
        assert np.median(w) == pytest.approx(np.sqrt(lo * hi), rel=0.05)       # the geometric mean
        assert np.mean(w < 2 * lo) == pytest.approx(np.log(2) / np.log(hi / lo), abs=0.03)
        assert np.mean(flat[key] < 2 * lo) == pytest.approx(lo / (hi - lo), abs=0.03)
    narrow = lambda t: np.mean((t["lw_lorentz_hz"] < 3) & (t["lw_gauss_hz"] < 4))  # noqa: E731
    assert narrow(flat) < 0.05 and narrow(log) > 0.15


def test_choline_multiplets_scaled_per_spectrum_and_metabolite_singlet_kept(basis):
    """cho_multiplet_scale: GPC's and PCh's lines other than the 3.21 ppm singlet times g (one g per spectrum and
    metabolite), every other draw as without it; the same as a basis whose GPC and PCh carry g times their
    multiplets; the 3.21 ppm choline singlet unchanged."""
    from dataclasses import replace

    from mrs_tf.synth import cho_multiplet_part

    quiet = {nm: (0.0, 0.0) for nm in basis.names if nm not in ("GPC", "PCh")}
    cfg = QUIET.with_(lorentz_hz=(3.0, 3.0), metab_shift_hz=1.0, priors={**quiet, "GPC": (2.0, 2.0), "PCh": (1.0, 1.0)})
    plain, t0 = synthesize(basis, n=16, snr=None, seed=5, config=cfg)
    scaled, t1 = synthesize(basis, n=16, snr=None, seed=5, config=cfg.with_(cho_multiplet_scale=(0.0, 0.0)))
    assert set(t1) - set(t0) == {"GPC_multiplet_scale", "PCh_multiplet_scale"}
    for key in t0:
        np.testing.assert_array_equal(t0[key], t1[key])
    fids = basis.fids.copy()
    for nm in ("GPC", "PCh"):
        fids[basis.index(nm)] -= cho_multiplet_part(basis, nm)
    by_hand, _ = synthesize(replace(basis, fids=fids), n=16, snr=None, seed=5, config=cfg)
    np.testing.assert_allclose(scaled, by_hand, atol=2e-5 * np.abs(by_hand).max())
    ppm = basis.ref_ppm - np.fft.fftfreq(basis.n_points, basis.dwell_s) / basis.field_mhz
    spec0, spec1 = (np.abs(np.fft.fft(f, axis=1)) for f in (plain, scaled))
    singlet = np.abs(ppm - 3.21) < 0.02
    np.testing.assert_allclose(spec1[:, singlet].max(1), spec0[:, singlet].max(1), rtol=0.01)
    # the CH2 and glycerol multiplets (3.5-4.4 ppm) are gone (absorption: the singlet's dispersion tail reaches there)
    real0, real1 = (np.abs(np.fft.fft(f, axis=1).real) for f in (plain, scaled))
    multiplets = (ppm > 3.5) & (ppm < 4.4)
    assert np.all(real1[:, multiplets].max(1) < 0.05 * real0[:, multiplets].max(1))
    # drawn per spectrum, independently for the two metabolites, within the range
    _, t2 = synthesize(basis, n=64, snr=None, seed=5, config=cfg.with_(cho_multiplet_scale=(0.5, 1.5)))
    g, h = t2["GPC_multiplet_scale"], t2["PCh_multiplet_scale"]
    assert 0.5 <= min(g.min(), h.min()) and max(g.max(), h.max()) <= 1.5 and np.ptp(g) > 0.6
    assert abs(np.corrcoef(g, h)[0, 1]) < 0.4


def test_test_and_calibration_sets_take_the_basis_signals_whole():
    """A network trained with parts of its basis signals scaled is tested and calibrated on the signals as
    simulated: evaluation_synthesis switches both part scalings off and keeps the other ranges."""
    from mrs_tf.train import TRAINING_SYNTHESIS, evaluation_synthesis

    syn = evaluation_synthesis(TRAINING_SYNTHESIS.with_(cr_ch2_scale=(0.7, 1.05), cho_multiplet_scale=(0.0, 1.5)))
    assert tuple(syn.cr_ch2_scale) == (1.0, 1.0) and tuple(syn.cho_multiplet_scale) == (1.0, 1.0)
    assert syn.lorentz_hz == TRAINING_SYNTHESIS.lorentz_hz and syn.lipid_amp == TRAINING_SYNTHESIS.lipid_amp


@pytest.mark.parametrize("change, names", [
    ({"lorentz_hz": (float("nan"), 1.0)}, "lorentz_hz"),          # gave NaN spectra, silently
    ({"gauss_hz": (10.0, 2.0)}, "gauss_hz"),                       # reversed
    ({"water_lw_hz": (-3.0, 10.0)}, "water_lw_hz"),                # a negative width
    ({"lipid_amp": (0.0, float("inf"))}, "lipid_amp"),
    ({"shift_ppm": (0.1,)}, "shift_ppm"),                          # not a (low, high) pair
    ({"mm_lorentz_fraction": (0.0, 1.5)}, "mm_lorentz_fraction"),  # a fraction beyond 1
    ({"cho_multiplet_scale": (-0.5, 1.0)}, "cho_multiplet_scale"),
    ({"mm_amp_spread": 1.2}, "mm_amp_spread"),                     # amplitudes x U(-0.2, 2.2): negative MM lines
    ({"mm_width_spread": 1.0}, "mm_width_spread"),                 # zero widths
    ({"metab_shift_hz": -1.0}, "metab_shift_hz"),
    ({"baseline_components": 1.5}, "baseline_components"),
    ({"first_points_amp": (-0.1, 0.1)}, "first_points_amp"),
    ({"priors": {"NAA": (12.0, 8.0)}}, "priors['NAA']"),
    ({"linewidth_draw": "normal"}, "linewidth_draw"),
    ({"linewidth_draw": "log", "lorentz_hz": (0.0, 8.0)}, "linewidth_draw"),  # log(0)
    ({"lorentz_hz": (float("nan"), 1.0), "gauss_hz": (3.0, -1.0)}, "lorentz_hz, gauss_hz"),  # all of them at once
])
def test_a_config_out_of_range_is_refused_naming_the_field(change, names):
    with pytest.raises(MRSError) as err:
        SynthesisConfig(**change)
    for name in names.split(", "):
        assert name in str(err.value), str(err.value)
    with pytest.raises(MRSError):  # .with_() checks too
        SynthesisConfig().with_(**change)


def test_every_shipped_and_default_config_is_valid():
    import json
    from pathlib import Path

    from mrs_tf.nn.general import GENERAL_SYNTHESIS
    from mrs_tf.train import TrainConfig, TRAINING_SYNTHESIS, evaluation_synthesis

    for cfg in (SynthesisConfig(), GENERAL_SYNTHESIS, TRAINING_SYNTHESIS, evaluation_synthesis(GENERAL_SYNTHESIS),
                SynthesisConfig(baseline_amp=(-0.3, 0.3), phase0_deg=(-180, 180), cr_ch2_scale=(0.0, 1.0))):
        assert cfg == cfg.with_()
    root = Path(__file__).resolve().parents[1] / "saved_models"
    for path in root.glob("*/train_config.json"):
        TrainConfig(**json.loads(path.read_text())).synthesis_config()
    for path in root.glob("*/quantifier.json"):
        synthesis = json.loads(path.read_text()).get("training", {}).get("synthesis")
        if synthesis:
            SynthesisConfig(**synthesis)


def test_concentration_ranges_are_what_synthesize_draws_from(basis):
    from mrs_tf.physics.synth import concentration_ranges

    config = SynthesisConfig(priors={"PE": (0.5, 5.0)})
    ranges = concentration_ranges(basis.names, config)
    assert ranges["PE"] == (0.5, 5.0) and set(ranges) == set(basis.names)
    _, truth = synthesize(basis, 2000, snr=None, seed=4, config=config)
    for name in ("PE", "NAA", "MM"):
        lo, hi = ranges[name]
        assert lo <= truth[name].min() < lo + 0.01 * (hi - lo) and hi - 0.01 * (hi - lo) < truth[name].max() <= hi
    assert "Unknown" not in concentration_ranges(["Unknown", "NAA"])

"""Protocol-general networks (issue 18): spectra on one ppm grid whatever the acquisition, basis signals for any 3 T
short-TE PRESS protocol, and the training stream that draws a protocol per batch."""
import numpy as np
import pytest

from mrs_tf.core.errors import ProtocolError
from mrs_tf.physics.protocols import SHORT_TE_PRESS_3T, interpolation_error, protocol_basis
from mrs_tf.preprocess.grid import GRID_POINTS, grid_coverage, grid_ppm, grid_spectrum

PROTOCOLS = [(2048, 4000.0, 123.2), (4096, 2000.0, 123.2), (1024, 2500.0, 123.2), (8192, 5000.0, 127.7),
             (2048, 2000.0, 127.7)]


def _lorentzian(n, bandwidth, field, ppm=2.01, width_hz=4.0, amplitude=1.0):
    t = np.arange(n) / bandwidth
    return amplitude * np.exp(2j * np.pi * (4.65 - ppm) * field * t - np.pi * width_hz * t)


def test_one_signal_gives_one_grid_spectrum_whatever_the_points_dwell_and_field():
    spectra = np.array([grid_spectrum(_lorentzian(n, bw, f), 1 / bw, f)[0] for n, bw, f in PROTOCOLS])
    assert spectra.shape == (len(PROTOCOLS), GRID_POINTS, 2)
    peak = np.argmax(spectra[0, :, 0])
    assert abs(grid_ppm()[peak] - 2.01) < 0.016  # within one grid step
    # the same peak height (continuous Fourier transform: x dwell) within 2 %, at every protocol
    heights = np.hypot(spectra[:, peak, 0], spectra[:, peak, 1])
    np.testing.assert_allclose(heights, heights[0], rtol=0.02)
    # and the same shape around it (same field: within 2 % of the peak)
    same_field = spectra[:3, peak - 20:peak + 20]
    assert np.abs(same_field - same_field[0]).max() < 0.02 * heights[0]


def test_the_grid_spectrum_is_the_fourier_sum_at_the_grid_frequencies():
    """The single-precision chirp-z equals dt * sum_n x_n exp(-2 pi i f n dt), summed in float64 over the FID's first
    1 / (grid spacing) seconds, at every protocol (within 1e-6 of the peak)."""
    rng = np.random.default_rng(4)
    for n, bw, field in PROTOCOLS + [(1024, 1250.0, 127.7)]:
        fid = _lorentzian(n, bw, field) + 0.3 * _lorentzian(n, bw, field, ppm=3.9, width_hz=20.0)
        fid = fid + 0.05 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
        freq = (4.65 - grid_ppm()) * field
        n_use = min(n, int(round(bw / abs(freq[1] - freq[0]))))
        t = np.arange(n_use) / bw
        want = np.exp(-2j * np.pi * np.outer(freq, t)) @ fid[:n_use] / bw
        want[~grid_coverage(1 / bw, field)] = 0
        got = grid_spectrum(fid, 1 / bw, field)[0]
        err = np.abs(got[:, 0] + 1j * got[:, 1] - want).max() / np.abs(want).max()
        assert err < 1e-6, (n, bw, field, err)


def test_the_first_point_offset_makes_the_grid_spectrum_the_same_at_any_dwell_time():
    """The plain sum ``dt sum x_n`` adds ``dt / 2 * x_0`` to every grid point (the rectangle rule's error: a constant
    that depends on the dwell time); ``first_point_offset_s=h`` gives the trapezoid rule plus ``h * x_0``, the same
    at any dwell time. The rule, checked against a float64 sum, and its effect on a narrow line over a broad one."""
    for n, bw, field in PROTOCOLS + [(1024, 1250.0, 127.7)]:
        fid = _lorentzian(n, bw, field) + 3.0 * _lorentzian(n, bw, field, ppm=1.0, width_hz=60.0)
        freq = (4.65 - grid_ppm()) * field
        n_use = min(n, int(round(bw / abs(freq[1] - freq[0]))))
        x = fid[:n_use].copy()
        x[0] *= 0.5
        want = np.exp(-2j * np.pi * np.outer(freq, np.arange(n_use) / bw)) @ x / bw + 2.5e-4 * fid[0]
        want[~grid_coverage(1 / bw, field)] = 0
        got = grid_spectrum(fid, 1 / bw, field, first_point_offset_s=2.5e-4)[0]
        assert np.abs(got[:, 0] + 1j * got[:, 1] - want).max() / np.abs(want).max() < 1e-6
    spectra = {}
    for offset in (None, 2.5e-4):
        spectra[offset] = [grid_spectrum(_lorentzian(n, bw, 123.2) + 3.0 * _lorentzian(n, bw, 123.2, ppm=1.0,
                                                                                      width_hz=60.0),
                                         1 / bw, 123.2, first_point_offset_s=offset)[0]
                           for n, bw in ((1024, 1250.0), (2048, 2000.0), (2048, 4000.0), (8192, 8000.0))]
    spread = {k: max(np.abs(s - v[1]).max() for s in v) / np.abs(v[1]).max() for k, v in spectra.items()}
    # what is left (0.2-0.45 % of the peak) is the sampling's aliasing of the broad line's tails, falling as dt^2
    assert spread[2.5e-4] < 0.005 and spread[None] > 0.01 and spread[None] > 2 * spread[2.5e-4], spread


def test_points_beyond_the_acquired_bandwidth_are_zero():
    cover = grid_coverage(1 / 1000.0, 127.7)  # +-500 Hz = +-3.9 ppm around 4.65: 0.2-0.74 ppm not acquired
    assert cover[0] and not cover[-1] and 30 < (~cover).sum() < 40
    spec = grid_spectrum(_lorentzian(1024, 1000.0, 127.7, ppm=3.0), 1 / 1000.0, 127.7)[0]
    assert np.all(spec[~cover] == 0) and np.abs(spec[cover]).max() > 0


def test_protocol_basis_on_the_grid_is_the_simulation_and_off_it_close():
    on = interpolation_error(123.2, 30.0, 10.5)  # a simulated node: exact
    assert max(on.values()) < 1e-9
    off = interpolation_error(123.2, 31.0, 11.5)  # TE and split interpolated
    assert np.median(list(off.values())) < 0.01 and max(off.values()) < 0.04
    relabelled = interpolation_error(127.7, 35.0, 17.5)  # simulated at 127.8 MHz, shifts put at 127.7
    assert max(relabelled.values()) < 0.005
    basis = protocol_basis(127.7, 35.0, 17.5)
    assert basis.field_mhz == 127.7 and basis.protocol["te_ms"] == 35.0 and len(basis.names) == 21
    spec = np.abs(np.fft.fftshift(np.fft.fft(basis.fids[basis.names.index("NAA")] * np.exp(-np.pi * 3 * basis.time))))
    window = (basis.ppm > 1.9) & (basis.ppm < 2.1)
    assert abs(basis.ppm[window][np.argmax(spec[window])] - 2.008) < 0.01


def test_the_space_names_every_parameter_that_is_out():
    assert SHORT_TE_PRESS_3T.outside(127.7, 35.0, 2000.0, 2048) == []
    out = SHORT_TE_PRESS_3T.outside(297.2, 68.0, 800.0, 512)
    assert len(out) == 4 and "field 297.2" in out[0] and "echo time 68" in out[1] and "bandwidth 800" in out[2]
    assert "echo time unknown" in SHORT_TE_PRESS_3T.outside(123.2, None, 4000.0, 2048)[0]
    with pytest.raises(ProtocolError, match="echo time 144"):
        protocol_basis(123.2, 144.0)


def test_the_training_stream_draws_one_protocol_per_batch_reproducibly():
    import mrs_tf
    from mrs_tf.nn.general import general_batch

    names = mrs_tf.simulate_basis().names
    a = general_batch(names, 8, seed=3, index=5)
    b = general_batch(names, 8, seed=3, index=5)
    c = general_batch(names, 8, seed=3, index=6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    spectra, protocol, conc = a
    assert spectra.shape == (8, GRID_POINTS, 2) and protocol.shape == (8, 2) and conc.shape == (8, 21)
    assert np.all(protocol == protocol[0]) and not np.array_equal(protocol[0], c[1][0])
    assert np.all(np.abs(protocol) <= 1.01)


def test_the_process_pool_stream_is_the_tf_data_stream():
    """Any Keras backend (JAX on a GPU machine without TensorFlow) trains on the same batches, bit for bit."""
    import mrs_tf
    from mrs_tf.nn.general import general_batches, general_dataset
    from mrs_tf.nn.train import combination_matrix, output_names

    names = list(mrs_tf.simulate_basis().names)
    mat = combination_matrix(names, output_names(names))
    pooled = list(general_batches(names, mat, batch_size=8, seed=4, first_batch=2, n_batches=3, workers=2))
    streamed = list(general_dataset(names, mat, batch_size=8, seed=4, first_batch=2, n_batches=3).as_numpy_iterator())
    assert len(pooled) == len(streamed) == 3
    for (x, y), (u, v) in zip(pooled, streamed):
        np.testing.assert_array_equal(x["spectrum"], u["spectrum"])
        np.testing.assert_array_equal(x["protocol"], u["protocol"])
        np.testing.assert_allclose(y["concentrations"], v["concentrations"], rtol=1e-6)
    assert not np.array_equal(pooled[0][0]["spectrum"], pooled[1][0]["spectrum"])


def test_basis_randomisation_varies_the_signals_not_the_draws():
    import dataclasses

    import mrs_tf
    from mrs_tf.nn.general import DOMAIN_RANDOMISATION, NO_RANDOMISATION, general_batch, randomised_basis, skew_lines

    names = mrs_tf.simulate_basis().names
    plain = general_batch(names, 8, seed=3, index=5)
    rand = general_batch(names, 8, seed=3, index=5, randomisation=DOMAIN_RANDOMISATION)
    np.testing.assert_array_equal(plain[2], rand[2])  # the same concentrations, nuisances and protocol
    np.testing.assert_array_equal(plain[1], rand[1])
    assert not np.allclose(plain[0], rand[0])
    proto = {"field_mhz": 127.7, "te_ms": 35.0, "te1_ms": 14.0, "bandwidth_hz": 2000.0}
    base = randomised_basis(proto, names, np.random.default_rng(0), NO_RANDOMISATION)
    te_only = dataclasses.replace(NO_RANDOMISATION, te_ms=3.0, te1_fraction=(0.35, 0.5))
    varied = randomised_basis(proto, names, np.random.default_rng(0), te_only)
    # singlets do not evolve with TE (their T2 is not in the basis), coupled signals do; MM is left as it is
    for name in ("MM", "NAA"):
        k = base.index(name)
        rel = np.linalg.norm(varied.fids[k] - base.fids[k]) / np.linalg.norm(base.fids[k])
        assert rel < (1e-12 if name == "MM" else 0.05), (name, rel)
    changed = [n for n in ("Glu", "Gln", "Ins", "GSH", "Asp", "GABA", "Tau", "PE")
               if np.linalg.norm(varied[n] - base[n]) > 0.01 * np.linalg.norm(base[n])]
    assert len(changed) >= 3, changed
    # te_names: only those metabolites take a variant; the others keep the batch's own signal exactly
    naa_only = randomised_basis(proto, names, np.random.default_rng(0),
                                dataclasses.replace(te_only, te_names=("NAA", "NAAG")))
    for n in names:
        k = base.index(n)
        if n in ("NAA", "NAAG"):
            np.testing.assert_array_equal(naa_only.fids[k], varied.fids[k])
        else:
            np.testing.assert_array_equal(naa_only.fids[k], base.fids[k])
    assert any(np.linalg.norm(naa_only[n] - base[n]) > 1e-3 * np.linalg.norm(base[n]) for n in ("NAA", "NAAG"))
    # basis lines: a per-metabolite Lorentzian, the FID's first point unchanged
    wide = randomised_basis(proto, names, np.random.default_rng(0),
                            dataclasses.replace(NO_RANDOMISATION, basis_lorentz_hz=(1.0, 2.0)))
    np.testing.assert_allclose(wide.fids[:, 0], base.fids[:, 0])
    k = base.index("Cr")
    decay = np.abs(wide.fids[k, 400]) / np.abs(base.fids[k, 400])
    assert np.exp(-np.pi * 2.0 * wide.time[400]) - 1e-6 <= decay <= np.exp(-np.pi * 1.0 * wide.time[400]) + 1e-6
    # multiplets reshaped: coupled signals change shape, keep their spectral norm; singlets and NAA's acetyl do not
    shaped = randomised_basis(proto, names, np.random.default_rng(2),
                              dataclasses.replace(NO_RANDOMISATION, multiplet_gain=0.35, multiplet_phase_deg=15.0))
    np.testing.assert_array_equal(shaped["Cr"], base["Cr"])
    lb = np.exp(-np.pi * 3.0 * base.time)
    singlet = (base.fft_ppm > 1.95) & (base.fft_ppm < 2.07)
    s0, s1 = np.fft.fft(base["NAA"] * lb)[singlet], np.fft.fft(shaped["NAA"] * lb)[singlet]
    assert abs(s1.sum() / s0.sum() - 1) < 0.02
    glu0, glu1 = np.fft.fft(base["Glu"], 2 * base.n_points), np.fft.fft(shaped["Glu"], 2 * base.n_points)
    assert np.linalg.norm(glu1 - glu0) > 0.05 * np.linalg.norm(glu0)
    assert abs(np.linalg.norm(shaped["Glu"]) / np.linalg.norm(base["Glu"]) - 1) < 0.1
    # skewed lines: the chosen fraction of spectra, FID(0) (the areas) kept
    fids = np.tile(base.fids[k], (400, 1))
    skewed = skew_lines(fids, base.dwell_s, np.random.default_rng(1),
                        dataclasses.replace(NO_RANDOMISATION, asymmetry_fraction=0.3))
    hit = np.any(np.abs(skewed - fids) > 1e-9, axis=1)
    assert 0.2 < hit.mean() < 0.4
    np.testing.assert_allclose(skewed[:, 0], fids[:, 0])


def test_a_model_reads_the_grid_spectrum_and_the_protocol():
    from mrs_tf.nn.models import seed_cnn

    model = seed_cnn(input_points=GRID_POINTS, n_outputs=5, uncertainty=True, protocol_inputs=2,
                     filters=(8, 8), dense_units=16)
    assert [i.name for i in model.inputs] == ["spectrum", "protocol"]
    out = model.predict({"spectrum": np.random.default_rng(0).normal(size=(3, GRID_POINTS, 2)).astype("float32"),
                         "protocol": np.zeros((3, 2), "float32")}, verbose=0)
    assert out["concentrations"].shape == (3, 2, 5)


@pytest.fixture(scope="module")
def general_model(tmp_path_factory):
    from mrs_tf.nn.general import GENERAL_SYNTHESIS, train_general

    folder = tmp_path_factory.mktemp("general") / "model"
    # the stream's nuisances are a parameter (benchmarks/train_general.py --baseline-amp / --lipid-amp ablate them)
    train_general(folder, minutes=0.01, batch_size=32, steps_per_epoch=3, val_batches=1, verbose=0,
                  model_kwargs={"filters": (8, 8), "dense_units": 16},
                  synthesis=GENERAL_SYNTHESIS.with_(baseline_amp=(-0.3, 0.3)))
    return folder


def test_the_streams_nuisance_ranges_are_recorded(general_model):
    import json

    meta = json.loads((general_model / "quantifier.json").read_text())
    assert list(meta["training"]["synthesis"]["baseline_amp"]) == [-0.3, 0.3]
    assert list(meta["training"]["synthesis"]["lipid_amp"]) == [0.0, 0.3]
    # where it trained, for the model card (a GPU by name when there is one)
    assert meta["training"]["backend"] == "tensorflow"
    assert "CPU cores" in meta["training"]["hardware"] and "tensorflow" in meta["training"]["hardware"]


def test_a_general_model_serves_any_scan_of_its_space_without_flags(general_model, tmp_path, capsys):
    import mrs_tf
    from mrs_tf.cli import main
    from mrs_tf.io import nifti
    from mrs_tf.physics.protocols import protocol_basis
    from mrs_tf.table import ResultTable

    q = mrs_tf.Quantifier.load(general_model)
    assert q.general and "123.2-127.8 MHz" in q.protocol_text()
    for n, bw, field, te in ((2048, 2000.0, 127.7, 35.0), (4096, 4000.0, 123.2, 30.0), (1024, 1250.0, 127.7, 22.0)):
        basis = protocol_basis(field, te, n_points=n, dwell_s=1 / bw)
        fids, _ = mrs_tf.synthesize(basis, 3, snr=40, seed=1)
        table = q.quantify(fids, 1 / bw, field, te_ms=te)
        assert np.all(np.isfinite(table["NAA"])) and len(table["NAA"]) == 3
    # through the command line: a Philips-like file, no --model, --resample or protocol flags needed
    nifti.write(tmp_path / "philips.nii.gz", fids.reshape(3, 1, 1, -1).astype(np.complex128), 1 / bw, field,
                te_s=te / 1e3)
    assert main(["quantify", str(tmp_path / "philips.nii.gz"), "--model", str(general_model), "--out",
                 str(tmp_path / "p.csv")]) == 0
    assert ResultTable.read_csv(tmp_path / "p.csv").n_rows == 3
    # outside the space: every parameter named, with the way out, before TensorFlow loads
    basis7t = mrs_tf.simulate_basis(field_mhz=297.2, te_ms=68.0, n_points=512, bandwidth_hz=800.0)
    far, _ = mrs_tf.synthesize(basis7t, 1, snr=40, seed=2)
    nifti.write(tmp_path / "7t.nii.gz", far.reshape(1, 1, 1, -1).astype(np.complex128), 1 / 800.0, 297.2, te_s=0.068)
    capsys.readouterr()
    assert main(["quantify", str(tmp_path / "7t.nii.gz"), "--model", str(general_model), "--out",
                 str(tmp_path / "7t.csv")]) == 2
    err = capsys.readouterr().err
    for part in ("field 297.2", "echo time 68", "bandwidth 800", "512 points", "Way out"):
        assert part in err, err


def test_shaped_pulse_randomisation_takes_whole_batches_from_a_shaped_simulation():
    import dataclasses

    import mrs_tf
    from mrs_tf.nn.general import NO_RANDOMISATION, SHAPED_PULSES, randomised_basis
    from mrs_tf.physics.protocols import protocol_basis

    names = mrs_tf.simulate_basis().names
    proto = {"field_mhz": 127.7, "te_ms": 35.0, "te1_ms": 14.0, "bandwidth_hz": 2000.0}
    ideal = protocol_basis(127.7, 35.0, 14.0).subset(names)
    always = dataclasses.replace(SHAPED_PULSES, pulses=("sinc_5.2ms_1200hz",), shaped_fraction=1.0)
    got = randomised_basis(proto, names, np.random.default_rng(0), always)
    np.testing.assert_allclose(got.fids, protocol_basis(127.7, 35.0, 14.0, refocusing="sinc_5.2ms_1200hz")
                               .subset(names).fids)
    assert got.protocol["refocusing"] == "sinc_5.2ms_1200hz"
    # the coupled signals differ from the ideal-pulse ones, the singlets keep their amount
    assert np.linalg.norm(got["Glu"] - ideal["Glu"]) > 0.1 * np.linalg.norm(ideal["Glu"])
    assert abs(got["Cr"][0] / ideal["Cr"][0] - 1) < 2e-3
    # three of four batches on average (one pulse here: simulated once); none without it
    one = dataclasses.replace(SHAPED_PULSES, pulses=("sinc_5.2ms_1200hz",))
    picks = [randomised_basis(proto, names, np.random.default_rng(s), one).protocol["refocusing"] for s in range(40)]
    assert 0.5 < np.mean([p != "ideal" for p in picks]) < 0.95
    assert randomised_basis(proto, names, np.random.default_rng(0), NO_RANDOMISATION).protocol["refocusing"] == "ideal"
    with pytest.raises(ValueError, match="unknown refocusing pulse"):
        dataclasses.replace(SHAPED_PULSES, pulses=("vendor_x",))


def test_spin_systems_sum_to_the_metabolite_and_group_shifts_move_each_on_its_own():
    import dataclasses

    import mrs_tf
    from mrs_tf.nn.general import GROUP_SHIFTS, NO_RANDOMISATION, randomised_basis

    whole = mrs_tf.simulate_basis(metabolites=["NAA", "Cr", "Glu", "MM"], cache=False)
    parts = mrs_tf.simulate_basis(metabolites=["NAA", "Cr", "Glu", "MM"], cache=False, spin_systems=True)
    assert parts.names == ["NAA#0", "NAA#1", "Cr#0", "Cr#1", "Glu#0", "MM"]
    for name in ("NAA", "Cr", "Glu", "MM"):
        rows = [k for k, n in enumerate(parts.names) if n.split("#")[0] == name]
        np.testing.assert_allclose(parts.fids[rows].sum(0), whole[name], atol=1e-12 * np.abs(whole[name]).max())
    # the acetyl singlet holds 3 of NAA's 6 protons (fid[0] counts protons), Cr's CH2 2 of 5
    assert parts["NAA#0"][0].real == pytest.approx(3.0, rel=1e-9)
    assert parts["Cr#1"][0].real == pytest.approx(2.0, rel=1e-9)

    names = mrs_tf.simulate_basis().names
    proto = {"field_mhz": 127.7, "te_ms": 35.0, "te1_ms": 14.0, "bandwidth_hz": 2000.0}
    base = randomised_basis(proto, names, np.random.default_rng(0), NO_RANDOMISATION)
    lb = np.exp(-np.pi * 1.0 * base.time)
    fine = np.fft.fftshift(np.fft.fftfreq(16 * base.n_points, base.dwell_s))
    ppm = base.ref_ppm - fine / base.field_mhz

    def peak(fid, lo, hi):  # ppm of the largest point of the real spectrum in [lo, hi]
        spec = np.fft.fftshift(np.fft.fft(fid * lb, 16 * base.n_points)).real
        window = (ppm > lo) & (ppm < hi)
        return ppm[window][np.argmax(spec[window])]

    moves = []
    for seed in range(6):
        got = randomised_basis(proto, names, np.random.default_rng(seed), GROUP_SHIFTS)
        np.testing.assert_array_equal(got["MM"], base["MM"])
        ch3 = peak(got["Cr"], 2.9, 3.15) - peak(base["Cr"], 2.9, 3.15)
        ch2 = peak(got["Cr"], 3.8, 4.05) - peak(base["Cr"], 3.8, 4.05)
        acetyl = peak(got["NAA"], 1.9, 2.1) - peak(base["NAA"], 1.9, 2.1)
        assert max(abs(ch3), abs(ch2), abs(acetyl)) <= 0.02 + 0.002
        # each singlet keeps its amount (a shift moves a line, it does not change its area)
        assert abs(got["Cr"][0] - base["Cr"][0]) < 1e-9 * abs(base["Cr"][0])
        moves.append((ch3, ch2))
    # the two groups of one metabolite move independently, not together
    assert np.std([a - b for a, b in moves]) > 0.004
    same = dataclasses.replace(GROUP_SHIFTS, group_shift_ppm=0.0)
    assert not same.active


def test_sigma_is_calibrated_per_echo_time(general_model):
    """calibrate_general_sd records one factor per output at every 2.5 ms of the space's echo times, and the
    network's sigma at a TE between two nodes is the raw sigma times the interpolated factor (not the single
    all-protocol factor, which left the shipped network's Glu 1-sigma coverage at 52 % at TE 40)."""
    import json

    import mrs_tf
    from mrs_tf.physics.protocols import protocol_basis

    meta = json.loads((general_model / "quantifier.json").read_text())
    per_te = meta["sd_scale_te"]
    assert per_te["te_ms"] == [20.0 + 2.5 * k for k in range(9)]
    table = np.asarray(per_te["scale"])
    assert table.shape == (9, len(meta["outputs"])) and np.all(table > 0)
    assert meta["sd_calibration"]["snr"] == [10.0, 100.0]
    q = mrs_tf.Quantifier.load(general_model)
    basis = protocol_basis(123.2, 36.0, n_points=2048, dwell_s=1 / 4000)
    fids, _ = mrs_tf.synthesize(basis, 4, snr=40, seed=2)
    raw = q._infer(q.inputs(fids.astype(np.complex64), basis.dwell_s, basis.field_mhz, 36.0)).astype(float)
    _, sd = q.infer(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=36.0)
    expected = table[6] + (table[7] - table[6]) * (36.0 - 35.0) / 2.5
    np.testing.assert_allclose(sd / raw[:, 1], np.broadcast_to(expected, sd.shape), rtol=1e-5)
    np.testing.assert_allclose(q.sd_factors(len(meta["outputs"]), 35.0), table[6])
    # without an echo time (a model of one protocol), the single factor
    np.testing.assert_allclose(q.sd_factors(len(meta["outputs"])), meta["sd_scale"])

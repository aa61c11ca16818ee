"""Keras models, layers, streaming training with resume, and the Quantifier."""
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from mrs_tf import synthesize  # noqa: E402
from mrs_tf.errors import MRSError, OutputExistsError, ProtocolError  # noqa: E402
from mrs_tf.models import BUILDERS  # noqa: E402
from mrs_tf.preprocess import crop_slice, cropped_spectrum  # noqa: E402
from mrs_tf.train import TrainConfig, output_names, prior_scale, tf_cropped_spectrum, train  # noqa: E402


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("uncertainty", [False, True])
def test_builders_run_round_trip_and_are_scale_invariant(name, uncertainty, tmp_path):
    model = BUILDERS[name](input_points=252, n_outputs=21, output_scale=np.linspace(1, 2, 21),
                           uncertainty=uncertainty, n_nuisance=3, time_points=128 if uncertainty else 0,
                           highpass_bins=12.8 if uncertainty else 0.0)
    rng = np.random.default_rng(0)
    x = {"spectrum": rng.standard_normal((3, 252, 2)).astype("float32")}
    if uncertainty:
        x["fid"] = rng.standard_normal((3, 128, 2)).astype("float32")
    out = model.predict(x, verbose=0)
    assert out["concentrations"].shape == ((3, 2, 21) if uncertainty else (3, 21))
    assert out["nuisance"].shape == (3, 3)
    if uncertainty:
        assert np.all(out["concentrations"][:, 1] > 0)  # sigma is positive
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    for key, value in again.predict(x, verbose=0).items():
        np.testing.assert_array_equal(value, out[key])
    assert json.dumps(again.get_config(), sort_keys=True, default=str) == json.dumps(model.get_config(), sort_keys=True,
                                                                                      default=str)
    # amplitudes scale with the signal; nothing else changes
    scaled = model.predict({k: v * 1e4 for k, v in x.items()}, verbose=0)
    ref = out["concentrations"] * 1e4
    np.testing.assert_allclose(scaled["concentrations"], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zeroed_bins_are_not_read_and_survive_saving(name, tmp_path):
    """``zero_bins``: what lies in those input bins (real scans above 4.0 ppm: the water suppression's and the water
    removal's traces) changes nothing, through the phase alignment and the normalisation too; saved and loaded with
    the model; the rest of the spectrum still counts."""
    from mrs_tf.preprocess.grid import GRID_POINTS, bins_above, grid_ppm

    start, stop = bins_above(4.0)
    assert (start, stop) == (0, int(np.sum(grid_ppm() > 4.0))) and 10 <= stop <= 14  # 4.0-4.2 ppm of 256 points
    model = BUILDERS[name](input_points=GRID_POINTS, n_outputs=5, uncertainty=True, protocol_inputs=2,
                           zero_bins=(start, stop))
    rng = np.random.default_rng(1)
    x = {"spectrum": rng.standard_normal((4, GRID_POINTS, 2)).astype("float32"),
         "protocol": rng.standard_normal((4, 2)).astype("float32")}
    out = model.predict(x, verbose=0)["concentrations"]
    moved = {**x, "spectrum": x["spectrum"].copy()}
    moved["spectrum"][:, start:stop] += 50 * rng.standard_normal((4, stop - start, 2)).astype("float32")
    np.testing.assert_array_equal(model.predict(moved, verbose=0)["concentrations"], out)
    below = {**x, "spectrum": x["spectrum"].copy()}
    below["spectrum"][:, stop:stop + 10] += 5.0
    assert np.abs(model.predict(below, verbose=0)["concentrations"] - out).max() > 1e-3
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(again.predict(moved, verbose=0)["concentrations"], out)


def test_tf_crop_equals_numpy_crop(basis):
    fids, _ = synthesize(basis, 4, snr=30, seed=0)
    sl = crop_slice(basis.n_points, basis.dwell_s, basis.field_mhz)
    np.testing.assert_allclose(np.asarray(tf_cropped_spectrum(fids, sl)),
                               cropped_spectrum(fids, basis.dwell_s, basis.field_mhz), rtol=1e-4, atol=1e-2)
    assert sl.stop - sl.start == 252


def _small(**kw):
    from dataclasses import asdict

    from mrs_tf import SynthesisConfig

    easy = SynthesisConfig(phase0_deg=(-5.0, 5.0), shift_ppm=(-0.02, 0.02), phase1_deg_per_ppm=(0.0, 0.0))
    base = dict(synthesis=asdict(easy), batch_size=64, steps_per_epoch=25, epochs=2, val_size=256, uncertainty=False, snr=(40.0, 100.0),
                learning_rate=2e-3, model_kwargs={"filters": (8, 16, 16, 16), "dense_units": 64, "dropout": 0.0})
    return TrainConfig(**{**base, **kw})


def test_short_training_beats_the_prior(tmp_path, basis):
    from mrs_tf.metabolites import METABOLITES
    from mrs_tf.quantify import Quantifier

    cfg = _small(epochs=4)
    basis = basis.subset(["NAA", "Cr", "PCr", "Ins", "GPC"])  # few outputs: learnable in 100 CPU steps
    model, history = train(cfg, tmp_path / "run", basis=basis, verbose=0)
    # loss of predicting the prior mean: mean over outputs (the 5 and Cr+PCr) of var/scale^2 (uniform priors)
    outputs = output_names(basis.names)
    assert outputs == basis.names + ["Cr+PCr"]
    var = {n: np.ptp(METABOLITES[n].prior_mm) ** 2 / 12 for n in basis.names}
    prior_loss = np.mean([sum(var[p] for p in n.split("+")) for n in outputs] / prior_scale(outputs) ** 2)
    assert history["val_loss"][-1] < 0.5 * prior_loss
    assert history["loss"][-1] < history["loss"][0]
    # the folder is a quantifier
    q = Quantifier.load(tmp_path / "run")
    fids, truth = synthesize(basis, 64, snr=80, seed=3, config=cfg.synthesis_config())
    table = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    assert {"NAA", "NAA_over_tCr", "Cr+PCr", "Cr+PCr_over_tCr"} <= set(table)
    np.testing.assert_allclose(table["Cr+PCr_over_tCr"], 1.0, rtol=1e-5)
    assert np.corrcoef(table["NAA"], truth["NAA"])[0, 1] > 0.8
    # never overwrite a trained model silently
    with pytest.raises(OutputExistsError, match="already holds a trained model"):
        train(cfg, tmp_path / "run", basis=basis, verbose=0)


def test_a_partial_synthesis_keeps_the_training_defaults_and_replaces_only_the_priors_given(tmp_path, basis, capsys):
    """``TrainConfig(synthesis={"priors": {...}})``, as the docs suggested for a foreign signal's prior, trained on
    SynthesisConfig's narrow defaults (no lipids, no baselines, the unwidened priors) without a word. Now the partial
    dict is laid over TRAINING_SYNTHESIS and said on stderr; a prior for a signal the basis lacks is refused."""
    from mrs_tf.cli import main
    from mrs_tf.nn.config import TRAINING_SYNTHESIS
    from mrs_tf.reporting.model_card import _other_settings, _own_priors

    small = basis.subset(["NAA", "Cr", "PCr", "GPC", "PE"])
    cfg = _small(epochs=1, steps_per_epoch=2, val_size=64, synthesis={"priors": {"PE": (0.25, 5.0)}})
    train(cfg, tmp_path / "run", basis=small, verbose=0)
    assert "priors given (mM): PE 0.25-5" in capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())["synthesis"]
    syn = TrainConfig(synthesis=saved).synthesis_config()
    assert syn.lipid_amp == TRAINING_SYNTHESIS.lipid_amp and syn.baseline_amp == TRAINING_SYNTHESIS.baseline_amp
    assert syn.lorentz_hz == TRAINING_SYNTHESIS.lorentz_hz and syn.mm_amp_spread == TRAINING_SYNTHESIS.mm_amp_spread
    assert tuple(syn.priors["PE"]) == (0.25, 5.0)
    assert tuple(syn.priors["NAA"]) == TRAINING_SYNTHESIS.priors["NAA"]  # the others keep their widened prior
    assert _own_priors(saved) == "; except PE 0.25-5"  # the model card's line
    # other settings given (e.g. by --config) are named on the card too; only priors given: no such line
    assert _other_settings(saved) == []
    assert _other_settings({**saved, "first_points_amp": [0.0, 0.08], "lorentz_hz": [1.0, 3.0]}) == [
        "- also, unlike mrs-tf's training defaults: first_points_amp (0.0, 0.08)"]  # lorentz_hz has its own line
    with pytest.raises(MRSError, match="priors given for Foo, which the training basis does not hold"):
        train(_small(synthesis={"priors": {"Foo": (0.0, 1.0)}}), tmp_path / "x", basis=small, verbose=0)
    assert not (tmp_path / "x").exists()
    # the command's --prior NAME=LOW:HIGH: checked before anything is trained
    for bad, says in (("PE=1", "give NAME=LOW:HIGH"), ("PE=2:1", "0 <= LOW < HIGH"), ("Foo=0:1", "unknown metabolite")):
        assert main(["train", "--prior", bad, "--out", str(tmp_path / "y")]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_resume_refuses_settings_that_differ_from_the_runs_recipe(tmp_path, capsys):
    """``mrs-tf train --resume`` trains on the run's saved recipe: a --seed, --prior or --basis given with it was
    ignored without a word. Now every setting that differs is named, and nothing runs; a range in µM is refused."""
    from dataclasses import asdict

    from mrs_tf.cli import main
    from mrs_tf.cli.network import _resume_differences
    from mrs_tf.nn.config import TRAINING_SYNTHESIS

    run = tmp_path / "run"
    run.mkdir()
    saved = json.loads(json.dumps(asdict(TrainConfig(seed=0)), default=list))
    (run / "train_config.json").write_text(json.dumps(saved))
    pe = TRAINING_SYNTHESIS.priors["PE"]
    assert main(["train", "--out", str(run), "--resume", "--seed", "3", "--prior", "PE=0.25:5", "--epochs", "80"]) == 2
    err = capsys.readouterr().err
    assert "seed 3 (the run's: 0)" in err and f"--prior PE=0.25:5 (the run's: PE {pe[0]:g}-{pe[1]:g})" in err
    assert "epochs" not in err.split("differ from it:")[1].split(". Drop")[0]  # more epochs are allowed
    assert main(["train", "--out", str(run), "--resume", "--lr-schedule", "plateau"]) == 2
    assert "lr_schedule plateau (the run's: cosine)" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--highpass-hz", "25"]) == 2
    assert "highpass_hz 25.0 (the run's: 0.0)" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["train_config.json"]  # nothing trained, nothing written
    # the run's own settings repeated (as its model card's command does) are no difference
    assert _resume_differences({"seed": 0, "batch_size": saved["batch_size"], "synthesis": {"priors": {"PE": pe}}},
                               saved) == []
    # with --basis the command's default read range (0.2-4.0 ppm) is no difference to a run started with its own
    saved.update(basis_path=str(tmp_path / "b.BASIS"), ppm_range=[0.2, 4.2])
    (run / "train_config.json").write_text(json.dumps(saved))
    assert main(["train", "--out", str(run), "--resume", "--basis", str(tmp_path / "b.BASIS"), "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "seed 3" in err and "ppm_range" not in err and "basis_path" not in err
    assert main(["train", "--prior", "PE=250:500", "--out", str(tmp_path / "y")]) == 2
    assert "Give the range in mM" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()


def test_the_learning_rate_is_annealed_by_a_cosine_over_the_run(tmp_path, basis):
    """``mrs-tf train`` halved its learning rate only when the validation loss stalled: the benchmark's 40-epoch run
    on the Philips basis ran 20 epochs at 1e-3 and 20 at 5e-4, its loss still falling at the end (-1.016), with
    dropout 0.1 in the head although every spectrum is fresh. Annealed by a cosine, without dropout: -1.075 in the
    same time, test MAPE 0.3-0.8 points lower on every major metabolite (benchmarks/RESULTS.md, 2026-11-30)."""
    from mrs_tf.core.errors import MRSError
    from mrs_tf.nn.config import cosine_learning_rate
    from mrs_tf.nn.models import seed_cnn

    assert TrainConfig().lr_schedule == "cosine"
    cfg = _small(epochs=4, steps_per_epoch=3, val_size=64)
    train(cfg, tmp_path / "run", basis=basis.subset(["NAA", "Cr", "PCr"]), verbose=0)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    col = rows[0].split(",").index("learning_rate")
    lr = [float(r.split(",")[col]) for r in rows[1:]]
    want = [2e-3 * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * e / 4))) for e in range(4)]
    np.testing.assert_allclose(lr, want, rtol=1e-5)
    assert cosine_learning_rate(4, 4, 1.0) == pytest.approx(0.02) and cosine_learning_rate(0, 4, 1.0) == 1.0
    with pytest.raises(MRSError, match="lr_schedule 'step'.*cosine, plateau"):
        TrainConfig(lr_schedule="step")
    # a run saved before the setting existed resumes (and reads) as it trained: plateau, the builders' dropout 0.1
    old = {k: v for k, v in json.loads((tmp_path / "run" / "train_config.json").read_text()).items()
           if k != "lr_schedule"}
    old["model_kwargs"] = {"kernel_size": 7}
    legacy = TrainConfig.from_saved(old)
    assert legacy.lr_schedule == "plateau" and legacy.model_kwargs == {"dropout": 0.1, "kernel_size": 7}
    assert TrainConfig.from_saved({**old, "lr_schedule": "cosine"}).model_kwargs == {"kernel_size": 7}
    # the builders' head has no dropout unless asked for
    names = [layer.name for layer in seed_cnn(input_points=64, n_outputs=3).layers]
    assert "dropout" not in names and "dropout" in [layer.name for layer in seed_cnn(
        input_points=64, n_outputs=3, dropout=0.1).layers]


def test_the_network_can_read_its_input_minus_a_broad_smoothing(tmp_path, basis):
    """``TrainConfig(highpass_hz=25)`` (``mrs-tf train --highpass-hz 25``): the ``HighPass`` front subtracts a 25 Hz
    (FWHM) Gaussian smoothing from the normalised input, so that a 0.6 ppm baseline bump keeps ~5 % of its height and
    a 3.5 Hz line ~80 %; off by default (benchmarks/RESULTS.md, "2026-11-30, second")."""
    from mrs_tf.core.errors import MRSError
    from mrs_tf.nn.config import HIGHPASS_HZ
    from mrs_tf.nn.layers import HighPass

    k = np.arange(600, dtype=float)
    bump = 0.1 * np.exp(-0.5 * ((k - 300) / 33.0) ** 2)  # FWHM 78 bins: 0.6 ppm at 1 Hz per bin, 127.7 MHz
    line = 1.0 / (1.0 + ((k - 200) / 1.75) ** 2)  # a Lorentzian of 3.5 bins FWHM
    x = np.stack([bump + line, bump], -1)[None].astype("float32")
    y = np.asarray(HighPass(25.0)(x))[0]
    assert np.abs(y[:, 1]).max() < 0.06 * 0.1  # the bump: below 6 % of its height, edges included
    assert 0.75 < y[200, 0] - y[200, 1] < 0.9  # the line keeps most of its height
    assert np.abs(np.asarray(HighPass(25.0)(np.ones((1, 50, 2), "float32")))).max() < 1e-6  # a constant: nothing
    with pytest.raises(ValueError, match="fwhm_bins -3"):
        HighPass(-3)
    # mrs-tf train: the width in Hz becomes bins of the protocol; 0 (the default) switches it off
    assert TrainConfig().highpass_hz == 0.0
    assert TrainConfig(highpass_hz=HIGHPASS_HZ).network_kwargs(2048, 5e-4)["highpass_bins"] == pytest.approx(25.6)
    assert TrainConfig(model_kwargs={"kernel_size": 7}).network_kwargs(2048, 5e-4) == {"kernel_size": 7}
    assert TrainConfig(highpass_hz=25.0, model_kwargs={"highpass_bins": 9.0}).network_kwargs(2048, 5e-4) == \
        {"highpass_bins": 9.0}  # the builder's own keyword, where given, wins
    assert TrainConfig.from_saved({"lr_schedule": "cosine"}).highpass_hz == 0.0
    with pytest.raises(MRSError, match="highpass_hz -1.*0 for none"):
        TrainConfig(highpass_hz=-1.0)
    cfg = _small(epochs=1, steps_per_epoch=2, val_size=64, highpass_hz=25.0)
    train(cfg, tmp_path / "run", basis=basis.subset(["NAA", "Cr", "PCr"]), verbose=0)
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    front = model.get_layer("high_pass")
    assert front.fwhm_bins == pytest.approx(25.0 * basis.n_points * basis.dwell_s)
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["highpass_hz"] == 25.0
    cfg = _small(epochs=1, steps_per_epoch=2, val_size=64)
    train(cfg, tmp_path / "off", basis=basis.subset(["NAA", "Cr", "PCr"]), verbose=0)
    assert "high_pass" not in [layer.name for layer in keras.saving.load_model(tmp_path / "off" / "model.keras").layers]


def test_resume_continues_from_the_last_epoch(tmp_path, basis):
    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("killed")

    cfg = _small(epochs=4, steps_per_epoch=5)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", basis=basis, verbose=0, callbacks_extra=[Kill()])
    assert (tmp_path / "run" / "backup").exists() and not (tmp_path / "run" / "model.keras").exists()
    with pytest.raises(OutputExistsError, match="interrupted"):
        train(cfg, tmp_path / "run", basis=basis, verbose=0)
    _, history = train(cfg, tmp_path / "run", resume=True, basis=basis, verbose=0)
    assert len(history["loss"]) == 2  # epochs 3 and 4 only
    epochs = [line.split(",")[0] for line in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]
    assert (tmp_path / "run" / "model.keras").exists() and not (tmp_path / "run" / "backup").exists()
    assert json.loads((tmp_path / "run" / "quantifier.json").read_text())["n_points"] == 2048


def test_a_killed_and_resumed_run_is_the_uninterrupted_run(tmp_path, basis):
    """Issue 16 item 6: killed after epoch 2 of 6 and resumed, training continues the same synthetic stream (not its
    first batches again) with the optimizer and the callbacks' state, so every epoch's validation loss matches the
    uninterrupted run's, and the run reports 6 epochs."""
    from mrs_tf.train import logged_run

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("killed")

    cfg = _small(epochs=6, steps_per_epoch=6)
    train(cfg, tmp_path / "whole", basis=basis, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", basis=basis, verbose=0, callbacks_extra=[Kill()])
    train(cfg, tmp_path / "cut", resume=True, basis=basis, verbose=0)
    whole, cut = logged_run(tmp_path / "whole")["val_loss"], logged_run(tmp_path / "cut")["val_loss"]
    assert len(whole) == len(cut) == 6
    assert json.loads((tmp_path / "cut" / "quantifier.json").read_text())["training"]["epochs_run"] == 6
    np.testing.assert_allclose(cut, whole, rtol=0.02)


def test_resume_of_a_finished_run_trains_it_further_or_refuses(tmp_path, basis):
    """A finished run given --resume: with the epochs it ran, it is refused and nothing is touched (it was retrained
    from scratch and its model replaced); with more epochs, training continues from its best weights and optimizer
    state for the extra epochs only (it started again at epoch 1 with fresh weights)."""
    import os

    from mrs_tf.train import logged_run

    cfg = _small(epochs=3, steps_per_epoch=6)
    run = tmp_path / "run"
    train(cfg, run, basis=basis, verbose=0)
    before = logged_run(run)["val_loss"]
    stamp = os.stat(run / "model.keras").st_mtime_ns
    with pytest.raises(OutputExistsError, match="finished.*3 epochs.*--epochs"):
        train(cfg, run, resume=True, basis=basis, verbose=0)
    assert os.stat(run / "model.keras").st_mtime_ns == stamp
    assert logged_run(run)["val_loss"] == before
    _, history = train(_small(epochs=5, steps_per_epoch=6), run, resume=True, basis=basis, verbose=0)
    assert len(history["loss"]) == 2  # epochs 4 and 5 only
    after = logged_run(run)["val_loss"]
    assert len(after) == 5 and after[:3] == before
    epochs = [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3", "4"]
    # continued, not restarted: the first new epoch is no worse than the run's best so far (a fresh network's first
    # epoch is far above it)
    assert after[3] < min(before) + 0.25 * (before[0] - min(before))
    meta = json.loads((run / "quantifier.json").read_text())["training"]
    assert meta["epochs_run"] == 5
    assert json.loads((run / "train_config.json").read_text())["epochs"] == 5


def test_resumed_monitors_carry_on_counting(basis):
    """EarlyStopping and ReduceLROnPlateau take up the logged epochs' state instead of a fresh patience."""
    from mrs_tf.train import replay_monitors

    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=2)
    for cb in (early, plateau):
        cb.on_train_begin()
    replay_monitors(early, plateau, [1.0, 0.8, 0.85, 0.9, 0.95])
    assert early.best == 0.8 and early.wait == 3  # one more epoch without improvement stops it
    assert plateau.best == 0.8 and plateau.wait == 1  # the cut after epochs 3-4; one epoch waited since


def test_quantifier_refuses_mismatched_or_bad_data(tmp_path, basis):
    from mrs_tf.quantify import Quantifier
    from mrs_tf.models import seed_cnn
    from mrs_tf.train import _quantifier_meta

    model = seed_cnn(filters=(4,), dense_units=8)
    q = Quantifier(model, _quantifier_meta(basis, TrainConfig(), model))
    fids, _ = synthesize(basis, 2, snr=50, seed=1)
    with pytest.raises(ProtocolError, match="this model expects PRESS.*123.2 MHz, 2048 points.*1024 points .the model.s: 2048.*--resample"):
        q.quantify(fids[:, :1024], dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    with pytest.raises(ProtocolError, match="bandwidth 5000 Hz .the model.s: 4000 Hz.*resample"):
        q.quantify(fids, dwell_s=1 / 5000, field_mhz=basis.field_mhz)
    with pytest.raises(ProtocolError, match="field 297.2 MHz .the model.s: 123.2 MHz.*mrs-tf train --basis"):
        q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=297.2)
    with pytest.raises(ProtocolError, match="field and dwell time unknown"):
        q.quantify(fids)
    bad = fids.copy()
    bad[1, 5] = np.inf
    with pytest.raises(MRSError, match=r"spectra \[1\] contain NaN or Inf"):
        q.quantify(bad, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    with pytest.raises(MRSError, match="all zeros"):
        q.quantify(np.zeros_like(fids), dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    with pytest.raises(MRSError, match="no model.keras"):
        Quantifier.load(tmp_path)


def test_phase_alignment_removes_any_zero_order_phase(basis):
    from mrs_tf.layers import PhaseAlignment
    from mrs_tf.models import seed_cnn

    fids, truth = synthesize(basis, 4, snr=1e6, seed=2)
    x = cropped_spectrum(fids * np.exp(-1j * np.deg2rad(truth["phase0_deg"]))[:, None], basis.dwell_s,
                         basis.field_mhz)
    layer = PhaseAlignment()
    ref = np.asarray(layer(x))
    for theta in (37.0, 145.0, -170.0):
        rot = np.exp(1j * np.deg2rad(theta))
        z = (x[..., 0] + 1j * x[..., 1]) * rot
        np.testing.assert_allclose(np.asarray(layer(np.stack([z.real, z.imag], -1).astype("float32"))), ref,
                                   atol=2e-5 * np.abs(ref).max())
    # an absorption-mode spectrum stays within a few degrees of absorption mode (residual: baseline, phase1, tails)
    z = ref[..., 0] + 1j * ref[..., 1]
    assert np.all(np.abs(np.angle(z.sum(1))) < 1e-4)
    residual = np.rad2deg(np.angle(z.sum(1) * np.conj((x[..., 0] + 1j * x[..., 1]).sum(1))))
    assert np.all(np.abs(residual) < 20), residual
    # so a model with the front end gives the same amplitudes at any phase
    model = seed_cnn(filters=(4, 4), dense_units=8)
    a = model.predict(x, verbose=0)["concentrations"]
    z = (x[..., 0] + 1j * x[..., 1]) * np.exp(2.5j)
    b = model.predict(np.stack([z.real, z.imag], -1).astype("float32"), verbose=0)["concentrations"]
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(a).max())
    plain = seed_cnn(filters=(4, 4), dense_units=8, align_phase=False)
    assert not np.allclose(plain.predict(x, verbose=0)["concentrations"],
                           plain.predict(np.stack([z.real, z.imag], -1).astype("float32"), verbose=0)["concentrations"],
                           rtol=1e-2)


def test_tuner_search_of_two_tiny_trials_completes_and_resumes(tmp_path, basis):
    pytest.importorskip("keras_tuner")
    from mrs_tf.tuning import tune

    basis = basis.subset(["NAA", "Cr", "PCr"])
    cfg = _small(batch_size=16, steps_per_epoch=2, val_size=32, uncertainty=True)
    tuner, best = tune(tmp_path / "search", "bayesian", cfg, max_trials=2, max_epochs=1, basis=basis, verbose=0)
    trials = tuner.oracle.trials
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials.values())
    assert best.model in ("seed_cnn", "resnet_cnn") and len(best.model_kwargs["filters"]) >= 2
    saved = json.loads((tmp_path / "search" / "best_config.json").read_text())
    assert saved["model_kwargs"]["kernel_size"] == best.model_kwargs["kernel_size"]
    assert TrainConfig(**saved).learning_rate == pytest.approx(best.learning_rate)
    with pytest.raises(OutputExistsError, match="already holds a search"):
        tune(tmp_path / "search", "bayesian", cfg, max_trials=2, max_epochs=1, basis=basis, verbose=0)
    again, _ = tune(tmp_path / "search", "bayesian", cfg, max_trials=2, max_epochs=1, basis=basis, verbose=0,
                    resume=True)
    assert len(again.oracle.trials) == 2  # nothing re-run
    with pytest.raises(MRSError, match="unknown tuning algorithm"):
        tune(tmp_path / "other", "grid", cfg, basis=basis)


def test_training_progress_is_one_line_per_epoch_in_logs(monkeypatch):
    """A Keras progress bar written into a log file or CI log is one line rewritten hundreds of times per epoch; there
    ``verbose="auto"`` gives one line per epoch, in a terminal the live bar."""
    import io
    import sys

    from mrs_tf.train import progress_verbosity

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert progress_verbosity("auto") == 2
    assert progress_verbosity(0) == 0 and progress_verbosity(1) == 1

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert progress_verbosity("auto") == 1

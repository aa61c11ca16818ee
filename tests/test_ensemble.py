"""Deep ensembles (``TrainConfig(ensemble=K)``, ``mrs-tf train --ensemble K``): K networks read as one."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from mrs_tf.core.errors import MRSError
from mrs_tf.nn.ensemble import combine
from mrs_tf.nn.layers import EnsembleMixture
from mrs_tf.nn.models import seed_cnn
from mrs_tf.physics.synth import synthesize


def test_the_mixture_is_the_members_mean_with_their_spread_added():
    mu = np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0]])  # three members, one spectrum, two outputs
    sd = np.array([[0.1, 0.3], [0.1, 0.4], [0.1, 0.0]])
    out = np.asarray(EnsembleMixture()([np.stack([m, s])[None].astype("float32") for m, s in zip(mu, sd)]))
    assert out.shape == (1, 2, 2)
    np.testing.assert_allclose(out[0, 0], [2.0, 3.0], rtol=1e-6)
    # sqrt(mean sd^2 + mean (mu - mean)^2): output 0: sqrt(0.01 + 2/3); output 1: sqrt(0.25/3 + 6/3)
    np.testing.assert_allclose(out[0, 1], [np.sqrt(0.01 + 2 / 3), np.sqrt(0.25 / 3 + 2.0)], rtol=1e-5)
    # each member's sigma at its calibrated size: member 0's output 1 sd 0.3 counts as 0.6
    scaled = np.asarray(EnsembleMixture([[1.0, 2.0], [1.0, 1.0], [1.0, 1.0]])(
        [np.stack([m, s])[None].astype("float32") for m, s in zip(mu, sd)]))
    np.testing.assert_allclose(scaled[0, 1], [np.sqrt(0.01 + 2 / 3), np.sqrt((0.36 + 0.16) / 3 + 2.0)], rtol=1e-5)
    assert EnsembleMixture.from_config(EnsembleMixture([[1, 2]]).get_config()).sd_scales == [[1.0, 2.0]]
    # members that agree: the members' own sigma, no wider
    same = np.asarray(EnsembleMixture()([np.array([[[1.0], [0.2]]], "float32")] * 4))
    np.testing.assert_allclose(same[0], [[1.0], [0.2]], rtol=1e-6)
    # plain estimates: their mean
    np.testing.assert_allclose(np.asarray(EnsembleMixture()([mu[:, None][k].astype("float32") for k in range(3)])),
                               [[2.0, 3.0]], rtol=1e-6)


def test_combined_members_read_as_their_mixture_and_survive_saving(tmp_path):
    members = [seed_cnn(input_points=64, n_outputs=3, uncertainty=True, filters=(4, 4), dense_units=8,
                        protocol_inputs=2) for _ in range(3)]
    rng = np.random.default_rng(0)
    x = {"spectrum": rng.normal(size=(5, 64, 2)).astype("float32"),
         "protocol": rng.normal(size=(5, 2)).astype("float32")}
    each = np.stack([m.predict(x, verbose=0)["concentrations"] for m in members])
    model = combine(members)
    out = model.predict(x, verbose=0)["concentrations"]
    np.testing.assert_allclose(out[:, 0], each[:, :, 0].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, 1], np.sqrt((each[:, :, 1] ** 2).mean(0) + each[:, :, 0].var(0)), rtol=1e-4)
    model.save(tmp_path / "e.keras")
    again = keras.saving.load_model(tmp_path / "e.keras", compile=False)
    np.testing.assert_allclose(again.predict(x, verbose=0)["concentrations"], out, rtol=1e-6)
    other = seed_cnn(input_points=64, n_outputs=4, uncertainty=True, filters=(4, 4), dense_units=8, protocol_inputs=2)
    with pytest.raises(MRSError, match="differ in their inputs or outputs"):
        combine([members[0], other])
    with pytest.raises(MRSError, match="at least 2"):
        combine(members[:1])


def test_an_ensemble_trains_resumes_and_quantifies(tmp_path, basis):
    """Two members of the small recipe: each a complete run of its own seed, the folder one model whose answer is
    their mean; an interrupted ensemble resumes without training its finished member again."""
    from test_models import _small

    from mrs_tf.nn.train import train
    from mrs_tf.quantify import Quantifier

    basis = basis.subset(["NAA", "Cr", "PCr", "Ins", "GPC"])
    cfg = _small(epochs=2, steps_per_epoch=5, uncertainty=True, ensemble=2, seed=7)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if self.model.name == "seed_cnn" and (tmp_path / "run" / "members" / "seed_7" / "model.keras").exists() \
                    and (tmp_path / "run" / "members" / "seed_8" / "log.csv").exists():
                raise KeyboardInterrupt("killed in the second member")

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", basis=basis, verbose=0, callbacks_extra=[Kill()])
    first = tmp_path / "run" / "members" / "seed_7" / "model.keras"
    stamp = first.stat().st_mtime_ns
    assert (tmp_path / "run" / "members" / "seed_8" / "backup").exists()
    assert not (tmp_path / "run" / "model.keras").exists()
    # resumed without restating the ensemble: the folder's recipe says it
    train(_small(epochs=2, steps_per_epoch=5, uncertainty=True), tmp_path / "run", resume=True, basis=basis, verbose=0)
    assert first.stat().st_mtime_ns == stamp  # the finished member was kept, not trained again
    meta = json.loads((tmp_path / "run" / "quantifier.json").read_text())
    assert meta["ensemble"]["members"] == 2 and meta["training"]["seeds"] == [7, 8]
    assert meta["training"]["member_epochs"] == [2, 2] and len(meta["sd_scale"]) == len(meta["outputs"])
    # its answer is the mean of its members' (sigma calibrated separately for each folder)
    fids, _ = synthesize(basis, 8, snr=60, seed=1, config=cfg.synthesis_config())
    q = Quantifier.load(tmp_path / "run")
    mean = q.infer(fids)[0]
    parts = [Quantifier.load(tmp_path / "run" / "members" / f"seed_{seed}").infer(fids)[0] for seed in (7, 8)]
    np.testing.assert_allclose(mean, np.mean(parts, axis=0), rtol=1e-4, atol=1e-6)
    assert np.abs(parts[0] - parts[1]).max() > 1e-3  # two seeds, two networks
    table = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    assert np.all(np.isfinite(table["NAA"])) and np.all(table["NAA_sd"] > 0)
    # exported for LiteRT, it gives the Keras numbers
    from mrs_tf import export

    export.to_tflite(tmp_path / "run", tmp_path / "run" / "model.tflite")
    lite = Quantifier.load(tmp_path / "run", backend="litert")
    np.testing.assert_allclose(lite.infer(fids)[0], mean, rtol=1e-4, atol=1e-6 * np.abs(mean).max())
    # int8 too: every member's first convolution stays float (found inside the nested members), any scale goes in
    from ai_edge_litert.interpreter import Interpreter

    export.to_tflite(tmp_path / "run", tmp_path / "run" / "model_int8.tflite", quantize="int8", n_representative=32)
    weights = [t for t in Interpreter(model_path=str(tmp_path / "run" / "model_int8.tflite")).get_tensor_details()
               if "conv0" in t["name"] and t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][0] == 8]
    assert not weights, [t["name"] for t in weights]
    q8 = Quantifier.load(tmp_path / "run", backend="litert", tflite="model_int8.tflite")
    naa = q8.infer(fids)[0][:, 0]
    np.testing.assert_allclose(q8.infer(fids * 1e-3)[0][:, 0] / 1e-3, naa, rtol=0.02)


def test_train_ensemble_from_the_command_line(tmp_path, capsys):
    """`mrs-tf train --ensemble 2`: two members under members/, one model that learnt, a card that says so."""
    from mrs_tf import simulate_basis
    from mrs_tf.cli import main

    simulate_basis(metabolites=["NAA", "Cr", "PCr", "Ins", "GPC", "Glu"]).save(tmp_path / "small.BASIS")
    out = tmp_path / "m"
    args = ["train", "--basis", str(tmp_path / "small.BASIS"), "--out", str(out), "--epochs", "6",
            "--steps-per-epoch", "25", "--batch-size", "64", "--test-size", "256"]
    assert main([*args, "--ensemble", "0"]) == 2
    assert "--ensemble 0" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--ensemble", "2"]) == 0
    said = capsys.readouterr().out
    assert "2 networks of 6, 6 epochs" in said
    assert (out / "members" / "seed_0" / "model.keras").exists() and (out / "members" / "seed_1" / "model.keras").exists()
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["NAA"]["slope"] > 0.5 and metrics["Cr+PCr"]["slope"] > 0.5, metrics
    card = (out / "model_card.md").read_text()
    assert "An ensemble of 2 networks of this recipe (seeds 0-1" in card and "6, 6 epochs; in all 12 epochs" in card
    assert json.loads((out / "train_config.json").read_text())["ensemble"] == 2


def test_a_finished_member_asked_for_more_epochs_is_trained_further(tmp_path):
    """--resume --epochs N on a finished ensemble: members asked for fewer epochs than N are not 'finished' (they
    were kept as they were and the new epochs ignored)."""
    from mrs_tf.nn.config import TrainConfig
    from mrs_tf.nn.ensemble import finished

    folder = tmp_path / "seed_0"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"x")
    (folder / "quantifier.json").write_text(json.dumps({"sd_scale": [1.0]}))
    (folder / "train_config.json").write_text(json.dumps({"epochs": 3}))
    assert finished(folder, TrainConfig(epochs=3))
    assert not finished(folder, TrainConfig(epochs=5))
    (folder / "backup").mkdir()
    assert not finished(folder, TrainConfig(epochs=3))

"""The mrs_brain_sim TFDS builder: the tiny config builds offline, loads, matches the physics core, is reproducible."""
import hashlib
import os

import numpy as np
import pytest

from mrs_tf import FileFormatError, MRSError, simulate_basis, synthesize
from mrs_tf.data import build, load
from mrs_tf.preprocess import cropped_spectrum


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfds")
    build("tiny", d)
    return d


def _digests(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if ".tfrecord" in f:
                out[f] = hashlib.sha256(open(os.path.join(dirpath, f), "rb").read()).hexdigest()
    return out


def test_tiny_builds_loads_with_declared_shapes(tiny_dir):
    ds = load("tiny", "train", tiny_dir)
    examples = list(ds.as_numpy_iterator())
    assert len(examples) == 64
    ex = examples[0]
    assert ex["fid"].shape == (2048, 2) and ex["fid"].dtype == np.float32
    assert ex["concentrations"].shape == (21,)
    assert ex["spectrum"].shape[1] == 2 and 200 < ex["spectrum"].shape[0] < 300
    assert set(ex["nuisance"]) >= {"snr", "lw_lorentz_hz", "phase0_deg", "baseline_amp_0"}
    import tensorflow_datasets as tfds

    info = tfds.builder("mrs_brain_sim/tiny", data_dir=str(tiny_dir)).info
    assert info.metadata["metabolite_names"][13] == "NAA"
    assert info.metadata["protocol"]["field_mhz"] == 123.2
    assert info.splits["validation"].num_examples == 16


def test_ground_truth_matches_the_physics_core(tiny_dir):
    ds = load("tiny", "train", tiny_dir)
    by_index = {int(ex["index"]): ex for ex in ds.as_numpy_iterator()}
    basis = simulate_basis()
    fids, truth = synthesize(basis, n=64, snr=(10.0, 100.0), seed=np.random.SeedSequence([20161, 0, 0]), n_jobs=1)
    ex = by_index[5]
    np.testing.assert_array_equal(ex["fid"][:, 0] + 1j * ex["fid"][:, 1], fids[5])
    np.testing.assert_allclose(ex["concentrations"], [truth[n][5] for n in basis.names], rtol=1e-6)
    assert ex["nuisance"]["snr"] == pytest.approx(truth["snr"][5], rel=1e-6)
    np.testing.assert_allclose(ex["spectrum"], cropped_spectrum(fids[5], basis.dwell_s, 123.2)[0], rtol=1e-5,
                               atol=1e-3)


def test_two_builds_in_two_processes_are_byte_identical(tiny_dir, tmp_path):
    """Another process (another hash seed) builds the same bytes: protobuf's map order once differed between
    processes, all three shards with it (issue 16 item 8)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", f"from mrs_tf.data import build; build('tiny', {str(tmp_path)!r})"],
                   check=True, env=env, capture_output=True, timeout=600)
    first, second = _digests(tiny_dir), _digests(tmp_path)
    assert len(first) == 3 and first == second


def test_as_supervised_trains_a_keras_model(tiny_dir):
    import keras

    ds = load("tiny", "train", tiny_dir, as_supervised=True).batch(16)
    x, y = next(iter(ds))
    inputs = keras.Input(shape=x.shape[1:])
    h = keras.layers.Flatten()(keras.layers.Rescaling(1e-4)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(y.shape[-1])(h))
    model.compile("adam", "mse")
    history = model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_bad_config_and_unwritable_dir(tmp_path):
    with pytest.raises(MRSError, match="unknown mrs_brain_sim config 'huge'.*tiny"):
        build("huge", tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(FileFormatError, match="cannot create data dir"):
        build("tiny", blocker / "tfds")  # a data dir that cannot be made (works as root too)
    assert blocker.read_text() == "not a folder"


def test_interrupted_build_leaves_nothing_loadable_and_rebuilds(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds
    from tfds_mrs.mrs_brain_sim import mrs_brain_sim_dataset_builder as mod

    real = mod.synthesize
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed mid-way")
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "synthesize", dying)
    with pytest.raises(KeyboardInterrupt):
        build("tiny", tmp_path)
    with pytest.raises(Exception):
        tfds.load("mrs_brain_sim/tiny", split="train", data_dir=str(tmp_path), download=False)
    monkeypatch.setattr(mod, "synthesize", real)
    ds = load("tiny", "test", tmp_path)
    assert len(list(ds)) == 16


def test_crlb_feature_equals_the_crlb_module_at_the_truth(tiny_dir):
    from mrs_tf.crlb import COMBINATIONS, from_truth
    from mrs_tf.quest import QuestOptions

    ds = load("tiny", "train", tiny_dir)
    by_index = {int(ex["index"]): ex for ex in ds.as_numpy_iterator()}
    basis = simulate_basis()
    _, truth = synthesize(basis, n=64, snr=(10.0, 100.0), seed=np.random.SeedSequence([20161, 0, 0]), n_jobs=1)
    expected = from_truth(basis, truth, QuestOptions(background="none"), rows=[7, 40])
    for j, i in enumerate((7, 40)):
        ex = by_index[i]
        np.testing.assert_allclose(ex["crlb"], [expected[n][j] for n in basis.names], rtol=1e-5)
        np.testing.assert_allclose(ex["crlb_combined"], [expected[c][j] for c in COMBINATIONS], rtol=1e-5)
    # physics: the NAA bound is (relative) ~1/SNR times a factor that grows with the linewidth; a sum's bound is
    # below the sum of its parts' bounds (Cr and PCr are anti-correlated)
    ex = list(by_index.values())
    rel = np.array([e["crlb"][13] / e["concentrations"][13] * e["nuisance"]["snr"] for e in ex])
    width = np.array([e["nuisance"]["lw_lorentz_hz"] + e["nuisance"]["lw_gauss_hz"] for e in ex])
    assert 0.5 < np.median(rel) < 3.0 and np.all(np.isfinite(rel))
    assert np.corrcoef(rel, width)[0, 1] > 0.3
    cr_pcr = [e["crlb_combined"][1] for e in ex]
    parts = [e["crlb"][3] + e["crlb"][16] for e in ex]
    assert np.all(np.array(cr_pcr) < np.array(parts))


def test_beam_build_matches_the_local_build(tiny_dir, tmp_path):
    pytest.importorskip("apache_beam")
    build("tiny", tmp_path, beam_runner="DirectRunner")
    ours = load("tiny", "test", tmp_path, build_if_missing=False)
    local = load("tiny", "test", tiny_dir, build_if_missing=False)
    a = sorted((int(e["index"]), e["fid"].tobytes()) for e in ours.as_numpy_iterator())
    b = sorted((int(e["index"]), e["fid"].tobytes()) for e in local.as_numpy_iterator())
    assert a == b and len(a) == 16


def test_evaluate_on_a_tfds_split_checks_protocol_and_names(tiny_dir):
    """report.load_test_data (mrs-tf evaluate --data tfds:CONFIG): truth by the data set's own metabolite names; a
    model for another protocol, or one quantifying a signal the data set lacks, is refused."""
    import json
    from pathlib import Path

    import mrs_tf
    from mrs_tf.errors import BasisError, ProtocolError
    from mrs_tf.quantify import Quantifier
    from mrs_tf.report import load_test_data

    folder = Path(__file__).resolve().parents[1] / "saved_models" / "press3t_te30"
    meta = json.loads((folder / "quantifier.json").read_text())
    q = Quantifier(None, meta, folder=folder)
    basis, fids, truth = load_test_data(q, ["tfds:tiny:test"], tfds_dir=tiny_dir)
    assert fids.shape == (16, 2048) and len(truth["snr"]) == 16 and basis.names == q.names
    ds = load("tiny", "test", tiny_dir)
    first = min(ds.as_numpy_iterator(), key=lambda e: int(e["index"]))
    assert truth["NAA"][0] == pytest.approx(float(first["concentrations"][list(mrs_tf.ALL_NAMES).index("NAA")]))
    # the bound at the truth (what mrs-tf evaluate --data tfds:... computes) has every parameter it needs, and agrees
    # with the bound stored in the data set (which also knew the per-metabolite shifts)
    from mrs_tf.crlb import from_truth
    from mrs_tf.quest import QuestOptions

    bound = from_truth(basis, truth, QuestOptions(background="none"), rows=[0])
    stored = float(first["crlb"][list(mrs_tf.ALL_NAMES).index("NAA")])
    assert bound["NAA"][0] == pytest.approx(stored, rel=0.15)  # (without the per-metabolite shifts: 7 % here)
    with pytest.raises(ProtocolError, match="297.2 MHz"):
        load_test_data(Quantifier(None, {**meta, "field_mhz": 297.2}), ["tfds:tiny:test"], tfds_dir=tiny_dir)
    with pytest.raises(BasisError, match="no ground truth for Xyz"):
        load_test_data(Quantifier(None, {**meta, "names": meta["names"] + ["Xyz"]}), ["tfds:tiny:test"],
                       tfds_dir=tiny_dir)


def test_a_build_says_what_it_does_not_what_tfds_assumes(tmp_path, capsys):
    """No "Downloading and preparing dataset Unknown size": nothing is downloaded (issue 19 item 3)."""
    build("tiny", tmp_path)
    out = capsys.readouterr().out
    assert "Unknown size" not in out and "Downloading" not in out
    assert "mrs_brain_sim/tiny: synthesising" in out and "nothing is downloaded" in out and "ready in" in out

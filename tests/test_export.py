"""TFLite/LiteRT and SavedModel export: the exported graph gives the Keras numbers; bad input is refused."""
from pathlib import Path
import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("ai_edge_litert")

from mrs_tf import synthesize  # noqa: E402
from mrs_tf.cli import main  # noqa: E402
from mrs_tf.errors import MRSError, OutputExistsError, ProtocolError  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory, basis):
    """A small untrained quantifier with sigma and the combination outputs (25), written like mrs-tf train does."""
    from mrs_tf.models import seed_cnn
    from mrs_tf.train import TrainConfig, _quantifier_meta, _write_json, output_names

    keras.utils.set_random_seed(0)
    d = tmp_path_factory.mktemp("quantifier")
    n_out = len(output_names(basis.names))
    model = seed_cnn(n_outputs=n_out, output_scale=np.linspace(20, 60, n_out), filters=(8, 16), dense_units=32,
                     uncertainty=True)
    model.save(d / "model.keras")
    _write_json(d / "quantifier.json", _quantifier_meta(basis, TrainConfig(), model))
    return d


def test_float_tflite_matches_keras_and_runs_behind_the_quantifier(folder, basis, tmp_path):
    from mrs_tf import export
    from mrs_tf.quantify import Quantifier

    path = export.to_tflite(folder, folder / "model.tflite")
    fids, _ = synthesize(basis, 40, snr=(10, 100), seed=4)
    ref = Quantifier.load(folder).quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    lite = Quantifier.load(folder, backend="litert")
    got = lite.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, batch_size=16)
    assert set(got) == set(ref)
    for key in ("NAA", "NAA_sd", "Cr+PCr", "Cr+PCr_sd", "Glu_over_tCr", "MM"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-4, atol=1e-6 * np.abs(ref[key]).max())
    # the exported graph is scale-free and phase-free like the Keras model
    again = lite.quantify(fids * (1e3 * np.exp(2j)), dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    np.testing.assert_allclose(again["NAA"], got["NAA"] * 1e3, rtol=2e-3)
    # bad input: wrong shape to the runner, protocol mismatch through the quantifier, no overwrite
    with pytest.raises(MRSError, match=r"expects spectra of shape \(n, 2048, 2\).*got \(3, 1024, 2\)"):
        lite.runner.predict(np.zeros((3, 1024, 2), np.float32))
    with pytest.raises(ProtocolError, match="this model expects PRESS"):
        lite.quantify(fids[:, :1024], dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    with pytest.raises(OutputExistsError):
        export.to_tflite(folder, path)
    with pytest.raises(MRSError, match="unknown quantization"):
        export.to_tflite(folder, tmp_path / "x.tflite", quantize="int4")


def test_quantised_exports_are_smaller_and_int8_keeps_a_float_front_end(folder, basis, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from mrs_tf import export
    from mrs_tf.quantify import Quantifier

    sizes = {}
    for mode in ("none", "float16", "dynamic", "int8"):
        sizes[mode] = export.to_tflite(folder, tmp_path / f"{mode}.tflite", quantize=mode,
                                       n_representative=32).stat().st_size
    assert sizes["dynamic"] < 0.5 * sizes["none"] and sizes["float16"] < 0.7 * sizes["none"]
    assert sizes["int8"] < 0.5 * sizes["none"]
    details = Interpreter(model_path=str(tmp_path / "int8.tflite")).get_tensor_details()
    dtypes = {d["dtype"] for d in details}
    assert np.int8 in dtypes and np.float32 in dtypes
    inp = Interpreter(model_path=str(tmp_path / "int8.tflite")).get_input_details()[0]
    assert inp["dtype"] == np.float32  # raw spectra of any scale go in as float
    fids, _ = synthesize(basis, 16, snr=50, seed=5)
    q8 = Quantifier(None, Quantifier.load(folder).meta, runner=export.LiteRTModel(tmp_path / "int8.tflite"))
    got = q8.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
    assert np.all(np.isfinite(got["NAA"])) and np.all(got["NAA_sd"] > 0)
    # no int8 tensor before the normalisation: the graph reads spectra of any absolute scale, as scanner files come
    # (the raw spectrum had been quantised at the representative set's scale: NAA 0 at 1e-2 of it, 0.07x at 1e2)
    front = [d["name"] for d in details if d["dtype"] == np.int8 and len(d["shape"]) == 3
             and d["shape"][-1] == 2]
    assert not front, front
    for scale in (1e-4, 1e3):
        again = q8.quantify(fids * scale, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz)
        np.testing.assert_allclose(np.asarray(again["NAA"]) / scale, got["NAA"], rtol=1e-3)
    # (the accuracy cost of int8 is measured on the trained model: test_shipped_model, benchmarks/export.py)


def test_saved_model_signature_and_cli(folder, basis, tmp_path, capsys):
    import tensorflow as tf

    from mrs_tf.export import full_spectrum, inference_model
    from mrs_tf.quantify import Quantifier
    from mrs_tf.table import ResultTable

    out = tmp_path / "serving"
    assert main(["export", str(folder), "--format", "saved_model", "--out", str(out)]) == 0
    loaded = tf.saved_model.load(str(out))
    fids, _ = synthesize(basis, 4, snr=50, seed=6)
    x = full_spectrum(fids)
    got = loaded.signatures["serving_default"](tf.constant(x))
    ref = inference_model(Quantifier.load(folder)).predict(x, verbose=0)["concentrations"]
    np.testing.assert_allclose(list(got.values())[0].numpy(), ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    assert (out / "quantifier.json").exists()
    # CLI: export a float16 model into the folder and quantify a NIfTI-MRS file with it
    assert main(["export", str(folder), "--quantize", "float16", "--out", str(folder / "model_fp16.tflite")]) == 0
    data = tmp_path / "d.nii.gz"
    assert main(["synth", "--n", "3", "--snr", "50", "--out", str(data)]) == 0
    assert main(["quantify", str(data), "--model", str(folder), "--backend", "litert", "--tflite",
                 "model_fp16.tflite", "--out", str(tmp_path / "r.csv")]) == 0
    table = ResultTable.read_csv(tmp_path / "r.csv")
    assert table.n_rows == 3 and {"NAA", "NAA_sd", "Cr+PCr_over_tCr"} <= set(table)
    capsys.readouterr()
    assert main(["export", str(folder), "--format", "saved_model", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_a_relative_tflite_path_means_the_file_just_exported(tmp_path, monkeypatch):
    """The README's export-then-load: `model.tflite` written in the working folder is the one loaded, not the model
    folder's file of the same name; a bare name that is not there still means the folder's file."""
    import shutil

    from mrs_tf.quantify import Quantifier

    shipped = Path("saved_models/press3t_te30").resolve()
    monkeypatch.chdir(tmp_path)
    shutil.copy(shipped / "model_int8.tflite", tmp_path / "model.tflite")  # "just exported", differs from the folder's
    q = Quantifier.load(shipped, backend="litert", tflite="model.tflite")
    assert q.runner.path.resolve() == (tmp_path / "model.tflite").resolve()
    q = Quantifier.load(shipped, backend="litert", tflite="model_int8.tflite")
    assert q.runner.path.resolve() == (shipped / "model_int8.tflite").resolve()

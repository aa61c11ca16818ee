"""Export a trained quantifier for devices: TFLite/LiteRT (float32, float16, dynamic-range, int8) and SavedModel.

The exported graph is the whole inference path after the FFT: its input ``"spectrum"`` is float32
(batch, n_points, 2), the real and imaginary parts of ``fftshift(fft(fid))`` over the full spectral width (any
scale, any zero-order phase); the graph divides it by its RMS (multiplied back at the end: the network is
scale-free, and an int8 graph then quantises nothing at the scanner's absolute scale), crops the metabolite range
(:class:`CropSpectrum`), aligns the phase, normalises, runs the network and restores the scale, and returns ``"concentrations"`` (batch, 2, outputs): the
amplitudes in row 0 and their sigma in row 1 (or (batch, outputs) for a model without sigma). The FFT stays on the
device's side because TFLite has no complex FFT kernel (complex tensors cannot even be sliced); every DSP library
has one.

Quantisation (``quantize=``):

* ``"none"``: float32;
* ``"float16"``: float16 weights (half the size), float32 compute;
* ``"dynamic"``: int8 weights, float activations;
* ``"int8"``: int8 weights and activations of the convolution, pooling and hidden dense layers, calibrated on a
  representative set of spectra drawn from mrs-tf's simulator for the model's protocol. The scale-dependent
  front end (crop, phase alignment, RMS normalisation), the first convolution (it reads the spectrum, whose small
  peaks sit two orders below NAA's: 8 bits would drown them) and the output head (mean and softplus sigma,
  rescaling) stay float: one int8 scale cannot cover spectra whose absolute scale spans orders of magnitude, and
  the head's precision is the result's.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import MRSError, OutputExistsError
from mrs_tf.nn.layers import CropSpectrum, RestoreScale, SpectrumNormalization
from mrs_tf.nn.litert import LiteRTModel
from mrs_tf.preprocess.spectra import full_spectrum  # noqa: F401  (part of this module's API: the graphs' input)

__all__ = ["QUANTIZATIONS", "CropSpectrum", "inference_model", "representative_spectra", "to_tflite",
           "to_saved_model", "LiteRTModel", "FLOAT_OPS", "full_spectrum"]

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")

#: TFLite op types kept in float in the int8 model (front end and head; see the module docstring)
FLOAT_OPS = ("STRIDED_SLICE", "SUM", "MEAN", "SQUARE", "SQRT", "DIV", "MUL", "ADD", "SUB", "PACK", "UNPACK",
             "RESHAPE", "CONCATENATION", "EXP", "LOG", "SOFTPLUS", "LOGISTIC", "GATHER", "SQUARED_DIFFERENCE",
             "RSQRT", "POW", "ABS")


def _load(folder):
    from mrs_tf.nn.bundle import ModelBundle

    q = folder if hasattr(folder, "meta") else ModelBundle.load(folder)
    if q.model is None:
        raise MRSError("export needs the Keras model (backend='keras'), not an exported one")
    return q


def inference_model(quantifier):
    """Keras model: full spectrum (B, n_points, 2) -> ``{"concentrations": ...}`` (crop inside); for a
    protocol-general network its own inputs (grid spectrum (B, 256, 2) and protocol (B, 2); the device computes the
    grid spectrum, :func:`mrs_tf.preprocess.grid.grid_spectrum` with ``first_point_offset_s`` of the model's
    ``quantifier.json`` (``grid``), as it computes the FFT for the others)."""
    import keras

    from mrs_tf.preprocess.spectra import crop_slice

    q = _load(quantifier)
    if q.general:  # a protocol-general network reads the grid spectrum and the protocol: the model as it is
        return q.model
    sl = crop_slice(q.n_points, q.dwell_s, q.field_mhz, q.ppm_range, q.ref_ppm)
    spectrum = keras.Input((q.n_points, 2), name="spectrum")
    # the raw spectrum's absolute scale taken out first and put back last (the network is exactly scale-free):
    # whatever an int8 conversion quantises at the graph's entry then sees spectra of unit RMS, not the scanner's
    # scale (quantised at the representative set's scale, a spectrum at 1e-2 of it had read NAA 0)
    unit, rms = SpectrumNormalization(name="input_scale")(spectrum)
    cropped = CropSpectrum(sl.start, sl.stop, name="crop")(unit)
    out = q.model({"spectrum": cropped})
    conc = out["concentrations"] if isinstance(out, dict) else out
    conc = RestoreScale([1.0] * int(conc.shape[-1]), name="input_scale_back")([conc, rms])
    return keras.Model(spectrum, {"concentrations": conc}, name=f"{q.model.name}_inference")


def representative_spectra(quantifier, n: int = 256, seed: int = 0) -> np.ndarray:
    """float32 (n, n_points, 2) full spectra synthesised for the model's protocol with the training ranges (SNR
    5-200): the calibration set of int8 quantisation."""
    from mrs_tf.physics.synth import synthesize
    from mrs_tf.nn.train import TRAINING_SYNTHESIS

    q = _load(quantifier)
    if q.general:  # spectra of protocols drawn from the model's space, as in training
        from mrs_tf.nn.general import general_batch

        spectra, protocol, _ = general_batch(q.names, n, seed + 3_000_000, 0)
        return {"spectrum": spectra, "protocol": protocol}
    fids, _ = synthesize(q.basis(), n, snr=(5, 200), seed=seed, config=TRAINING_SYNTHESIS)
    return full_spectrum(fids)


def _refuse(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass overwrite=True (--overwrite) or choose another path")


def to_tflite(quantifier, out: str | os.PathLike, quantize: str = "none", n_representative: int = 256,
              seed: int = 0, overwrite: bool = False) -> Path:
    """Write a ``.tflite`` flatbuffer of :func:`inference_model` (atomic; refuses to overwrite); returns its path."""
    if quantize not in QUANTIZATIONS:
        raise MRSError(f"unknown quantization {quantize!r}; use one of {', '.join(QUANTIZATIONS)}")
    out = Path(out)
    _refuse(out, overwrite)
    q = _load(quantifier)
    # the converter goes through a SavedModel whose endpoints Keras prints ("Saved artifact at ...", TensorSpec
    # lines): the user asked for a .tflite file, not for those
    with contextlib.redirect_stdout(io.StringIO()):
        flat = _convert(q, quantize, n_representative, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(flat)
    os.replace(tmp, out)
    return out


def _convert(q, quantize: str, n_representative: int, seed: int) -> bytes:
    """The flatbuffer of :func:`inference_model` with ``quantize`` (see :func:`to_tflite`)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(inference_model(q))  # weights frozen as constants
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        data = representative_spectra(q, n_representative, seed)

        def rep():
            if isinstance(data, dict):  # a multi-input graph: each sample by input name
                for i in range(len(data["spectrum"])):
                    yield {name: x[i:i + 1] for name, x in data.items()}
                return
            for i in range(len(data)):
                yield [data[i:i + 1]]

        converter.representative_dataset = rep
        # the output head (mean and sigma of every amplitude) stays float too (its precision is the result's), and
        # so does the first convolution: 8 bits of the raw spectrum would drown the small peaks beside NAA
        from ai_edge_litert.interpreter import Interpreter

        plain = tf.lite.TFLiteConverter.from_keras_model(inference_model(q)).convert()
        import keras

        first_conv = next((layer.name for layer in _all_layers(q.model) if isinstance(layer, keras.layers.Conv1D)),
                          None)
        keep = ["/gaussian", "/linear"] + ([f"/{first_conv}"] if first_conv else [])
        head = [t["name"] for t in Interpreter(model_content=plain).get_tensor_details()
                if any(k in t["name"] for k in keep)]
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(FLOAT_OPS), denylisted_nodes=head)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=rep,
                                                             debug_options=options)
        return debugger.get_nondebug_quantized_model()
    return converter.convert()


def _all_layers(model):
    """The layers of ``model`` and of the models nested in it (an ensemble's members), depth first."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        else:
            yield layer


def to_saved_model(quantifier, out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a TensorFlow SavedModel (TF Serving) whose ``serving_default`` signature maps ``spectrum``
    (B, n_points, 2) to ``concentrations``; ``quantifier.json`` is copied beside it."""
    from mrs_tf.core.files import atomic_output

    out = Path(out)
    _refuse(out, overwrite)
    q = _load(quantifier)
    model = inference_model(q)
    # built beside, then moved in entry by entry: --overwrite into a folder holding other files (even the
    # quantifier being exported) replaces only the SavedModel's own entries
    with atomic_output(out, overwrite, directory=True) as tmp:
        staging = tmp / "export"
        model.export(str(staging), format="tf_saved_model", verbose=False)
        for entry in list(staging.iterdir()):
            os.replace(entry, tmp / entry.name)
        staging.rmdir()
        (tmp / "quantifier.json").write_text(json.dumps(q.meta, indent=2))
    return out

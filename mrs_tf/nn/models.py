"""Keras 3 functional models that regress metabolite amplitudes from a cropped spectrum.

Every builder is a plain function returning a ``keras.Model`` with

* input ``"spectrum"``: float32 (B, K, 2), real and imaginary parts of ``np.fft.fftshift(np.fft.fft(fid))`` cropped to
  the metabolite range (:func:`mrs_tf.preprocess.cropped_spectrum`; K = 252 for 0.2-4.2 ppm at the default protocol),
  at any absolute scale and zero-order phase: :class:`~mrs_tf.layers.PhaseAlignment` (``align_phase=True``) rotates
  it to near absorption mode, :class:`~mrs_tf.layers.SpectrumNormalization` divides it by its RMS and
  :class:`~mrs_tf.layers.RestoreScale` multiplies the outputs back;
* ``zero_bins=(start, stop)``: those input bins set to zero first (:class:`~mrs_tf.layers.ZeroBins`; e.g. the grid
  above 4.0 ppm, which real scans' water suppression and water removal distort);
* ``highpass_bins=W``: after normalisation, each channel minus its Gaussian smoothing of FWHM W bins
  (:class:`~mrs_tf.layers.HighPass`): the network reads the lines, not the broad baseline and macromolecule
  background under them (``TrainConfig.highpass_hz`` sets W from the protocol's bin width; off by default);
* optional input ``"fid"``: float32 (B, T, 2), the first T time-domain points (``time_points=T``);
* optional input ``"protocol"``: float32 (B, P), the acquisition's parameters scaled to O(1) (``protocol_inputs=P``;
  protocol-general networks, :mod:`mrs_tf.nn.general`), joined to the features before the dense head;
* output ``"concentrations"``: (B, M) amplitudes in basis units (mM), or (B, 2, M) mean and standard deviation
  with ``uncertainty=True`` (train with :class:`~mrs_tf.layers.GaussianNLL`);
* optional output ``"nuisance"``: (B, P) (e.g. linewidths and shift, ``n_nuisance=P``).

Families: :func:`seed_cnn` (stacked Conv1D + pooling + dense head, the seed work's design), :func:`resnet_cnn`
(residual blocks) and :func:`dilated_cnn` (inception-style parallel dilated convolutions).
"""
from __future__ import annotations

import keras
from keras import layers

from mrs_tf.nn.layers import (GaussianHead, HighPass, MagnitudeChannel, PhaseAlignment, RestoreScale,
                              SpectrumNormalization, ZeroBins)

__all__ = ["seed_cnn", "resnet_cnn", "dilated_cnn", "BUILDERS", "build_model"]


def _inputs(input_points: int, magnitude: bool, time_points: int, align_phase: bool = True,
            protocol_inputs: int = 0, zero_bins=None, highpass_bins: float = 0.0):
    spectrum = keras.Input((input_points, 2), name="spectrum")
    x = ZeroBins(*zero_bins, name="zero_bins")(spectrum) if zero_bins else spectrum
    x = PhaseAlignment(name="align_phase")(x) if align_phase else x
    normalised, rms = SpectrumNormalization(name="normalise")(x)
    if highpass_bins:
        normalised = HighPass(highpass_bins, name="high_pass")(normalised)
    x = MagnitudeChannel(name="magnitude")(normalised) if magnitude else normalised
    inputs, extra = [spectrum], {}
    if time_points:
        fid = keras.Input((time_points, 2), name="fid")
        fid_n, _ = SpectrumNormalization(name="normalise_fid")(fid)
        inputs.append(fid)
        extra["fid"] = fid_n
    if protocol_inputs:  # the protocol (e.g. field and TE, scaled): joins the features before the dense head
        protocol = keras.Input((protocol_inputs,), name="protocol")
        inputs.append(protocol)
        extra["protocol"] = protocol
    return inputs, x, rms, extra


def _head(features, rms, n_outputs: int, output_scale, dense_units: int, dropout: float, uncertainty: bool,
          n_nuisance: int):
    x = layers.Dense(dense_units, activation="relu", name="dense")(features)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    scale = [1.0] * n_outputs if output_scale is None else list(output_scale)
    if len(scale) != n_outputs:
        raise ValueError(f"output_scale has {len(scale)} values for {n_outputs} outputs")
    # the head computes in float32 even under a mixed-precision policy (GPU training)
    z = GaussianHead(n_outputs, name="gaussian", dtype="float32")(x) if uncertainty else \
        layers.Dense(n_outputs, name="linear", dtype="float32")(x)
    outputs = {"concentrations": RestoreScale(scale, name="concentrations", dtype="float32")([z, rms])}
    if n_nuisance:
        outputs["nuisance"] = layers.Dense(n_nuisance, name="nuisance", dtype="float32")(x)
    return outputs


def _pool(kind: str, size: int, name: str):
    """Pooling between stages: ``"max"`` or ``"average"``."""
    if kind == "max":
        return layers.MaxPooling1D(size, name=name)
    if kind == "average":
        return layers.AveragePooling1D(size, name=name)
    raise ValueError(f"pooling must be 'max' or 'average', got {kind!r}")


def _time_branch(fid, filters: int = 32):
    y = layers.Conv1D(filters, 9, strides=2, padding="same", activation="relu", name="fid_conv1")(fid)
    y = layers.Conv1D(filters, 9, strides=2, padding="same", activation="relu", name="fid_conv2")(y)
    return layers.GlobalAveragePooling1D(name="fid_pool")(y)


def _finish(inputs, x, rms, extra, name, n_outputs, output_scale, dense_units, dropout, uncertainty, n_nuisance):
    features = layers.Flatten(name="flatten")(x)
    parts = [features] + ([_time_branch(extra["fid"])] if "fid" in extra else []) + \
        ([extra["protocol"]] if "protocol" in extra else [])
    if len(parts) > 1:
        features = layers.Concatenate(name="features")(parts)
    outputs = _head(features, rms, n_outputs, output_scale, dense_units, dropout, uncertainty, n_nuisance)
    return keras.Model(inputs, outputs, name=name)


def seed_cnn(input_points: int = 252, n_outputs: int = 21, output_scale=None, *, filters=(16, 32, 64, 64),
             kernel_size: int = 9, pool_size: int = 2, pooling: str = "max", dense_units: int = 256,
             dropout: float = 0.0,
             magnitude: bool = True, align_phase: bool = True, uncertainty: bool = False, n_nuisance: int = 0,
             time_points: int = 0, protocol_inputs: int = 0, zero_bins=None, highpass_bins: float = 0.0,
             name: str = "seed_cnn") -> keras.Model:
    """Stacked Conv1D (ReLU) + max pooling blocks, flattened into a dense regression head."""
    inputs, x, rms, extra = _inputs(input_points, magnitude, time_points, align_phase, protocol_inputs, zero_bins,
                                    highpass_bins)
    for i, f in enumerate(filters):
        x = layers.Conv1D(f, kernel_size, padding="same", activation="relu", name=f"conv{i}")(x)
        x = _pool(pooling, pool_size, f"pool{i}")(x)
    return _finish(inputs, x, rms, extra, name, n_outputs, output_scale, dense_units, dropout, uncertainty,
                   n_nuisance)


def resnet_cnn(input_points: int = 252, n_outputs: int = 21, output_scale=None, *, filters=(16, 32, 64, 64),
               kernel_size: int = 7, pool_size: int = 2, pooling: str = "max", dense_units: int = 256,
               dropout: float = 0.0,
               magnitude: bool = True, align_phase: bool = True, uncertainty: bool = False, n_nuisance: int = 0,
               time_points: int = 0, protocol_inputs: int = 0, zero_bins=None, highpass_bins: float = 0.0,
               name: str = "resnet_cnn") -> keras.Model:
    """Residual blocks (two Conv1D + batch norm, identity or 1x1 projection shortcut), pooled between stages."""
    inputs, x, rms, extra = _inputs(input_points, magnitude, time_points, align_phase, protocol_inputs, zero_bins,
                                    highpass_bins)
    for i, f in enumerate(filters):
        shortcut = x if x.shape[-1] == f else layers.Conv1D(f, 1, name=f"proj{i}")(x)
        y = layers.Conv1D(f, kernel_size, padding="same", name=f"res{i}_a")(x)
        y = layers.BatchNormalization(name=f"res{i}_bn_a")(y)
        y = layers.Activation("relu", name=f"res{i}_relu_a")(y)
        y = layers.Conv1D(f, kernel_size, padding="same", name=f"res{i}_b")(y)
        y = layers.BatchNormalization(name=f"res{i}_bn_b")(y)
        x = layers.Activation("relu", name=f"res{i}_out")(layers.Add(name=f"res{i}_add")([shortcut, y]))
        x = _pool(pooling, pool_size, f"pool{i}")(x)
    return _finish(inputs, x, rms, extra, name, n_outputs, output_scale, dense_units, dropout, uncertainty,
                   n_nuisance)


def dilated_cnn(input_points: int = 252, n_outputs: int = 21, output_scale=None, *, filters=(16, 32, 64),
                kernel_size: int = 5, dilations=(1, 2, 4), pool_size: int = 2, dense_units: int = 256,
                dropout: float = 0.0, magnitude: bool = True, align_phase: bool = True, uncertainty: bool = False,
                n_nuisance: int = 0, time_points: int = 0, protocol_inputs: int = 0, zero_bins=None,
                highpass_bins: float = 0.0, name: str = "dilated_cnn") -> keras.Model:
    """Inception-style blocks: parallel Conv1D with dilation rates ``dilations`` (wide receptive field at few
    parameters, for multiplets spread over 0.1-0.3 ppm), concatenated and pooled."""
    inputs, x, rms, extra = _inputs(input_points, magnitude, time_points, align_phase, protocol_inputs, zero_bins,
                                    highpass_bins)
    for i, f in enumerate(filters):
        branches = [layers.Conv1D(f, kernel_size, dilation_rate=d, padding="same", activation="relu",
                                  name=f"block{i}_d{d}")(x) for d in dilations]
        x = layers.Concatenate(name=f"block{i}_cat")(branches)
        x = layers.MaxPooling1D(pool_size, name=f"pool{i}")(x)
    x = layers.Conv1D(filters[-1] // 2, 1, activation="relu", name="squeeze")(x)  # 1x1: fewer dense weights
    return _finish(inputs, x, rms, extra, name, n_outputs, output_scale, dense_units, dropout, uncertainty,
                   n_nuisance)


BUILDERS = {"seed_cnn": seed_cnn, "resnet_cnn": resnet_cnn, "dilated_cnn": dilated_cnn}


def build_model(name: str, **kwargs) -> keras.Model:
    """``BUILDERS[name](**kwargs)`` with a clear error for an unknown family."""
    if name not in BUILDERS:
        from mrs_tf.core.errors import MRSError

        raise MRSError(f"unknown model {name!r}; choose one of {', '.join(BUILDERS)}")
    return BUILDERS[name](**kwargs)

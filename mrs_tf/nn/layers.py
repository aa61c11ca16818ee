"""Keras layers and losses of mrs-tf's networks, registered for ``.keras`` serialisation (package ``mrs_tf``).

* :class:`SpectrumNormalization` divides each spectrum by its RMS and passes the RMS on, so that the network sees
  scale-free inputs; :class:`RestoreScale` multiplies the outputs back (amplitudes are linear in the signal scale).
* :class:`PhaseAlignment` rotates each spectrum by minus the phase of its complex integral (a zero-order phase
  correction front end: an absorption-mode spectrum integrates to a real positive number), so that the network sees
  spectra within a few tens of degrees of absorption mode whatever the acquisition's phase.
* :class:`CropSpectrum` keeps the metabolite range of a full spectrum (exported graphs take the full spectrum).
* :class:`ZeroBins` sets a range of input bins to zero (a fit range inside the input: what lies beyond it on real
  scans, e.g. the water suppression's and the water removal's traces above 4.0 ppm, is not read).
* :class:`HighPass` subtracts a broad Gaussian smoothing from each channel: the lines stay, baselines and the
  macromolecule background under them go.
* :class:`MagnitudeChannel` appends ``|spectrum|`` (phase-independent) to the real and imaginary channels.
* :class:`GaussianHead` turns features into a mean and a positive standard deviation per output.
* :class:`EnsembleMixture` reads K networks' outputs as one (a deep ensemble, :mod:`mrs_tf.nn.ensemble`).
* :class:`WeightedMSE` and :class:`GaussianNLL` weigh every output by ``1/scale^2`` (scale: a typical value, e.g.
  the prior mean concentration), so that a 10 % error counts the same for NAA (12 mM) and GABA (1.5 mM).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = ["PhaseAlignment", "SpectrumNormalization", "RestoreScale", "MagnitudeChannel", "GaussianHead", "WeightedMSE",
           "GaussianNLL", "CropSpectrum", "ZeroBins", "EnsembleMixture", "HighPass"]


@keras.saving.register_keras_serializable(package="mrs_tf")
class SpectrumNormalization(keras.layers.Layer):
    """``x -> (x / rms(x), rms(x))`` per example; rms over every axis but the batch (shape (B, 1))."""

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        axes = tuple(range(1, len(x.shape)))
        rms = ops.sqrt(ops.mean(ops.square(x), axis=axes, keepdims=True)) + self.epsilon
        return x / rms, ops.reshape(rms, (-1, 1))

    def compute_output_shape(self, input_shape):
        return input_shape, (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="mrs_tf")
class RestoreScale(keras.layers.Layer):
    """``(z, rms) -> z * rms * output_scale``: outputs in physical units (e.g. mM) from scale-free predictions.

    ``output_scale`` (one number per output) is the typical ``value / rms`` of the training data, so that ``z`` is
    of order 1. With ``axis=-1`` it multiplies the last axis (shape (B, M) or (B, 2, M) for mean and sd)."""

    def __init__(self, output_scale, **kwargs):
        super().__init__(**kwargs)
        self.output_scale = [float(v) for v in output_scale]

    def call(self, inputs):
        z, rms = inputs
        scale = ops.convert_to_tensor(self.output_scale, dtype=z.dtype)
        rms = ops.reshape(rms, (-1,) + (1,) * (len(z.shape) - 1))
        return z * ops.cast(rms, z.dtype) * scale

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "output_scale": self.output_scale}


@keras.saving.register_keras_serializable(package="mrs_tf")
class PhaseAlignment(keras.layers.Layer):
    """(B, K, 2) real/imag -> the same rotated by ``conj(s) / |s|``, ``s = sum_k (re_k + i im_k)``.

    The integral of a Lorentzian/Voigt line over the range is its area times ``exp(i phase0)`` (dispersion parts
    integrate to about zero), so the rotation removes the zero-order phase up to what baseline, truncated tails and
    first-order phase add. Amplitudes and RMS are unchanged (a rotation); no atan2, so LiteRT runs it with plain ops."""

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        re, im = x[..., 0], x[..., 1]
        sr = ops.sum(re, axis=-1, keepdims=True)
        si = ops.sum(im, axis=-1, keepdims=True)
        norm = ops.sqrt(sr * sr + si * si) + self.epsilon
        cr, ci = sr / norm, si / norm
        return ops.stack([re * cr + im * ci, im * cr - re * ci], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="mrs_tf")
class MagnitudeChannel(keras.layers.Layer):
    """(B, K, 2) real/imag -> (B, K, 3) with ``sqrt(re^2 + im^2)`` appended."""

    def call(self, x):
        mag = ops.sqrt(ops.sum(ops.square(x[..., :2]), axis=-1, keepdims=True) + 1e-12)
        return ops.concatenate([x, mag], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + 1,)


@keras.saving.register_keras_serializable(package="mrs_tf")
class GaussianHead(keras.layers.Layer):
    """Features -> (B, 2, M): row 0 the mean, row 1 a standard deviation ``softplus(.) + min_sd`` (> 0)."""

    def __init__(self, units: int, min_sd: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.min_sd = float(min_sd)
        self.mean = keras.layers.Dense(self.units, name="mean")
        self.sd = keras.layers.Dense(self.units, name="sd", bias_initializer=keras.initializers.Constant(-2.0))

    def build(self, input_shape):
        self.mean.build(input_shape)
        self.sd.build(input_shape)

    def call(self, x):
        mean = self.mean(x)
        sd = ops.softplus(self.sd(x)) + self.min_sd
        return ops.stack([mean, sd], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2, self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "min_sd": self.min_sd}


@keras.saving.register_keras_serializable(package="mrs_tf")
class WeightedMSE(keras.losses.Loss):
    """Mean over outputs of ``((y_pred - y_true) / scale)^2``."""

    def __init__(self, scale, name: str = "weighted_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = [float(v) for v in scale]

    def call(self, y_true, y_pred):
        scale = ops.convert_to_tensor(self.scale, dtype=y_pred.dtype)
        return ops.mean(ops.square((y_pred - ops.cast(y_true, y_pred.dtype)) / scale), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="mrs_tf")
class GaussianNLL(keras.losses.Loss):
    """Gaussian negative log-likelihood of ``y_true`` (B, M) under ``y_pred`` (B, 2, M) = (mean, sd), per output
    ``log(sd/scale) + (y - mean)^2 / (2 sd^2)`` (the constant dropped), averaged over outputs."""

    def __init__(self, scale, name: str = "gaussian_nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = [float(v) for v in scale]

    def call(self, y_true, y_pred):
        scale = ops.convert_to_tensor(self.scale, dtype=y_pred.dtype)
        mean, sd = y_pred[:, 0], y_pred[:, 1]
        err = (ops.cast(y_true, y_pred.dtype) - mean)
        return ops.mean(ops.log(sd / scale) + 0.5 * ops.square(err / sd), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="mrs_tf")
class CropSpectrum(keras.layers.Layer):
    """(B, N, C) -> (B, stop - start, C): bins ``start:stop`` of a full ``fftshift(fft(fid))`` spectrum."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, x):
        return x[:, self.start:self.stop, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.stop - self.start, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="mrs_tf")
class ZeroBins(keras.layers.Layer):
    """(B, N, C) -> (B, N, C) with bins ``start:stop`` set to zero (no weights): the network reads only the rest.
    Placed before the phase alignment and the normalisation, so that neither depends on the zeroed bins either."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)
        if not 0 <= self.start < self.stop:
            raise ValueError(f"ZeroBins needs 0 <= start < stop, got {self.start}, {self.stop}")

    def call(self, x):
        n = x.shape[1]
        keep = [0.0 if self.start <= i < self.stop else 1.0 for i in range(n)]
        return x * ops.reshape(ops.convert_to_tensor(keep, dtype=x.dtype), (1, n, 1))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="mrs_tf")
class EnsembleMixture(keras.layers.Layer):
    """K members' outputs (a list) -> one output of the same shape (no trainable weights).

    (B, 2, M) mean and sd each: the equally weighted mixture of the K Gaussians, mean ``mean_k mu_k`` and sd
    ``sqrt(mean_k (c_k sd_k)^2 + mean_k (mu_k - mean)^2)`` (the members' own spread plus their disagreement; a deep
    ensemble's predictive distribution). ``sd_scales`` (K, M): each member's sigma calibration ``c_k``
    (``sd_scale`` of its ``quantifier.json``), so that its own spread enters the mixture at its measured size;
    default 1. (B, M) plain estimates: their mean."""

    def __init__(self, sd_scales=None, **kwargs):
        super().__init__(**kwargs)
        self.sd_scales = None if sd_scales is None else [[float(v) for v in row] for row in sd_scales]

    def call(self, inputs):
        x = ops.stack(list(inputs), axis=0)
        if len(x.shape) == 3:
            return ops.mean(x, axis=0)
        mu, sd = x[:, :, 0], x[:, :, 1]
        if self.sd_scales is not None:
            sd = sd * ops.convert_to_tensor(self.sd_scales, dtype=sd.dtype)[:, None, :]
        mean = ops.mean(mu, axis=0)
        var = ops.mean(ops.square(sd), axis=0) + ops.mean(ops.square(mu - mean[None]), axis=0)
        return ops.stack([mean, ops.sqrt(var)], axis=1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "sd_scales": self.sd_scales}


@keras.saving.register_keras_serializable(package="mrs_tf")
class HighPass(keras.layers.Layer):
    """``x -> x - smooth(x)``: each channel minus its convolution with a unit-area Gaussian of ``fwhm_bins`` (FWHM,
    in spectral bins), edges padded by repeating the end values. A component three times as broad as ``fwhm_bins``
    (a baseline, a macromolecule background) keeps about 5 % of its height, a Lorentzian line a seventh as broad about
    80 %. Input and output (B, K, C)."""

    def __init__(self, fwhm_bins: float, **kwargs):
        super().__init__(**kwargs)
        self.fwhm_bins = float(fwhm_bins)
        if not (np.isfinite(self.fwhm_bins) and self.fwhm_bins > 0):
            raise ValueError(f"HighPass: fwhm_bins {fwhm_bins!r} must be a positive width (spectral bins)")
        sigma = self.fwhm_bins / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        half = int(np.ceil(3.0 * sigma))
        k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
        self._half = half
        self._kernel = (k / k.sum()).astype("float32").reshape(-1, 1, 1)

    def call(self, x):
        h = self._half
        channels = x.shape[-1]
        k_len = x.shape[1]
        padded = ops.concatenate([ops.repeat(x[:, :1], h, axis=1), x, ops.repeat(x[:, -1:], h, axis=1)], axis=1)
        cols = ops.reshape(ops.transpose(padded, (0, 2, 1)), (-1, k_len + 2 * h, 1))
        smooth = ops.conv(cols, ops.convert_to_tensor(self._kernel, dtype=x.dtype), padding="valid")
        smooth = ops.transpose(ops.reshape(smooth, (-1, channels, k_len)), (0, 2, 1))
        return x - smooth

    def get_config(self):
        return {**super().get_config(), "fwhm_bins": self.fwhm_bins}

"""Running an exported ``.tflite`` quantifier graph with the LiteRT interpreter (``ai_edge_litert``): the runtime of
edge devices, and of ``Quantifier.load(..., backend="litert")``."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import FileFormatError, MRSError

__all__ = ["LiteRTModel"]


class LiteRTModel:
    """A ``.tflite`` quantifier graph run by the LiteRT interpreter (``ai_edge_litert``)."""

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise FileFormatError(f"{self.path}: no such TFLite model")
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        except (ValueError, RuntimeError) as exc:
            raise FileFormatError(f"{self.path}: not a TFLite model ({exc})") from None
        inp = self.interpreter.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"][1:])
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self._batch = None

    def predict(self, spectra: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Full spectra float32 (n, n_points, 2) -> the graph's ``concentrations`` output for each."""
        x = np.asarray(spectra, np.float32)
        if x.ndim != 3 or x.shape[1:] != self.input_shape:
            raise MRSError(f"{self.path.name} expects spectra of shape (n, {', '.join(map(str, self.input_shape))}) "
                           f"(real/imag of fftshift(fft(fid))), got {x.shape}")
        outs = []
        for start in range(0, len(x), batch_size):
            chunk = x[start:start + batch_size]
            if self._batch != len(chunk):
                self.interpreter.resize_tensor_input(self.input_index, (len(chunk),) + self.input_shape)
                self.interpreter.allocate_tensors()
                self._batch = len(chunk)
            self.interpreter.set_tensor(self.input_index, chunk)
            self.interpreter.invoke()
            outs.append(np.array(self.interpreter.get_tensor(self.output_index)))
        return np.concatenate(outs)

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
        details = self.interpreter.get_input_details()
        inp = details[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"][1:])
        # every input by name (a protocol-general graph has "spectrum" and "protocol")
        self.inputs = {d["name"]: (d["index"], tuple(int(v) for v in d["shape"][1:])) for d in details}
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self._batch = None

    def _input_for(self, key: str):
        """(index, shape) of the graph input whose name holds ``key``."""
        for name, value in self.inputs.items():
            if key in name:
                return value
        raise MRSError(f"{self.path.name} has no input named like {key!r} (inputs: {', '.join(self.inputs)})")

    def predict(self, spectra, batch_size: int = 256) -> np.ndarray:
        """Full spectra float32 (n, n_points, 2), or for a multi-input graph a dict ``{"spectrum": ...,
        "protocol": ...}`` of arrays with n rows -> the graph's ``concentrations`` output for each."""
        arrays = ({k: np.asarray(v, np.float32) for k, v in spectra.items()} if isinstance(spectra, dict)
                  else {"": np.asarray(spectra, np.float32)})
        if isinstance(spectra, dict):
            slots = {k: self._input_for(k) for k in arrays}
        else:
            slots = {"": (self.input_index, self.input_shape)}
        for key, x in arrays.items():
            shape = slots[key][1]
            if x.ndim != len(shape) + 1 or x.shape[1:] != shape:
                raise MRSError(f"{self.path.name} expects {key or 'spectra'} of shape (n, "
                               f"{', '.join(map(str, shape))}) (real/imag of the spectrum), got {x.shape}")
        n = len(next(iter(arrays.values())))
        outs = []
        for start in range(0, n, batch_size):
            chunk = {k: x[start:start + batch_size] for k, x in arrays.items()}
            size = len(next(iter(chunk.values())))
            if self._batch != size:
                for key in chunk:
                    index, shape = slots[key]
                    self.interpreter.resize_tensor_input(index, (size,) + shape)
                self.interpreter.allocate_tensors()
                self._batch = size
            for key, x in chunk.items():
                self.interpreter.set_tensor(slots[key][0], x)
            self.interpreter.invoke()
            outs.append(np.array(self.interpreter.get_tensor(self.output_index)))
        return np.concatenate(outs)

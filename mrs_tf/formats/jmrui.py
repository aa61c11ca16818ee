"""jMRUI text files (``.txt``): several FIDs with a header of sampling interval (ms) and transmitter frequency (Hz).

Sign convention: jMRUI stores the complex conjugate of mrs-tf's (NIfTI-MRS) convention; reading and writing
conjugate. Basis files (e.g. from NMRScopeB) name their signals in a ``SignalNames: a;b;c`` header line.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mrs_tf.core.errors import FileFormatError
from mrs_tf.core.files import atomic_output, require_file


def _float(header: dict, key: str, path: Path) -> float:
    if key not in header or not header[key].strip():
        raise FileFormatError(f"{path}: jMRUI header lacks {key}")
    try:
        return float(header[key].replace(",", "."))
    except ValueError:
        raise FileFormatError(f"{path}: jMRUI header {key} = {header[key]!r} is not a number") from None


def read_text(path) -> dict:
    """Read a jMRUI text file: dict with fids (n_signals, N) in mrs-tf convention, dwell_s, field_mhz, names."""
    path = require_file(path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise FileFormatError(f"{path} is not a jMRUI text file") from None
    if not lines or "jmrui" not in lines[0].lower():
        raise FileFormatError(f"{path}: first line is not 'jMRUI Data Textfile'; not a jMRUI text file")
    header: dict[str, str] = {}
    signals: list[list[complex]] = []
    for lineno, line in enumerate(lines[1:], 2):
        text = line.strip()
        if not text:
            continue
        if text.lower().startswith("signal") and "out of" in text.lower():
            signals.append([])
            continue
        if not signals:
            if ":" in text:
                key, _, value = text.partition(":")
                header[key.strip()] = value.strip()
            continue
        parts = text.replace(",", " ").split()
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise FileFormatError(f"{path}, line {lineno}: cannot read {text!r} as numbers") from None
        if len(values) < 2:
            raise FileFormatError(f"{path}, line {lineno}: expected at least 2 columns (real, imaginary); "
                                  f"the file is truncated or corrupt")
        signals[-1].append(complex(values[0], values[1]))
    n = int(_float(header, "PointsInDataset", path))
    count = int(_float(header, "DatasetsInFile", path)) if "DatasetsInFile" in header else len(signals)
    dwell_ms = _float(header, "SamplingInterval", path)
    freq_hz = _float(header, "TransmitterFrequency", path)
    if len(signals) < count or any(len(s) < n for s in signals):
        have = [len(s) for s in signals]
        raise FileFormatError(f"{path}: header announces {count} signals of {n} points, found {have}; "
                              f"the file is truncated")
    fids = np.conj(np.array([s[:n] for s in signals[:count]]))
    if not np.all(np.isfinite(fids)):
        raise FileFormatError(f"{path}: data contain NaN or Inf values")
    names = [s.strip() for s in header.get("SignalNames", "").split(";") if s.strip()]
    if names and len(names) != count:
        raise FileFormatError(f"{path}: {len(names)} SignalNames for {count} signals")
    return {"fids": fids, "dwell_s": dwell_ms * 1e-3, "field_mhz": freq_hz * 1e-6, "names": names or None}


def write_text(path, fids, dwell_s: float, field_mhz: float, names=None, overwrite: bool = False) -> Path:
    """Write FIDs (n_signals, N) given in mrs-tf convention as a jMRUI text file (conjugated), atomically."""
    fids = np.atleast_2d(np.asarray(fids))
    stored = np.conj(fids)
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "w") as fh:
            fh.write("jMRUI Data Textfile\n\n")
            fh.write(f"Filename: {Path(path).name}\n\n")
            fh.write(f"PointsInDataset: {fids.shape[1]}\n")
            fh.write(f"DatasetsInFile: {fids.shape[0]}\n")
            fh.write(f"SamplingInterval: {dwell_s * 1e3:.12E}\n")
            fh.write("ZeroOrderPhase: 0E0\nBeginTime: 0E0\n")
            fh.write(f"TransmitterFrequency: {field_mhz * 1e6:.12E}\n")
            fh.write(f"MagneticField: {field_mhz / 42.577478:.6E}\n")
            fh.write("TypeOfNucleus: 0E0\nNameOfPatient: \nDateOfExperiment: \nSpectrometer: mrs-tf\n")
            fh.write("AdditionalInfo: \n")
            if names is not None:
                fh.write(f"SignalNames: {';'.join(names)}\n")
            fh.write("\n\nSignal and FFT\nsig(real)\tsig(imag)\tfft(real)\tfft(imag)\n")
            for k, sig in enumerate(stored):
                fh.write(f"Signal {k + 1} out of {len(stored)} in file\n")
                spec = np.fft.fftshift(np.fft.fft(sig))
                for s, f in zip(sig, spec):
                    fh.write(f"{s.real:.10E}\t{s.imag:.10E}\t{f.real:.6E}\t{f.imag:.6E}\n")
    return Path(path)

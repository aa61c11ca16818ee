"""LCModel files: ``.BASIS`` basis sets (frequency domain) and ``.RAW``/``.H2O`` time-domain data.

Sign convention: LCModel data share mrs-tf's (NIfTI-MRS) convention, so nothing is conjugated by default.
A ``.BASIS`` file stores, per metabolite, the unshifted DFT ``np.fft.fft(fid)`` (NDATAB complex points), rolled by
``ISHIFT`` points; the header gives ``HZPPPM`` (MHz), ``BADELT`` (dwell, s) and ``ECHOT`` (ms).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import FileFormatError
from mrs_tf.core.files import atomic_output, require_file

_SECTION = re.compile(r"^\s*[$&]\s*([A-Za-z][A-Za-z0-9_]*)")
_END = re.compile(r"[$&]\s*END\b|^\s*/\s*$", re.IGNORECASE)
_PAIR = re.compile(r"([A-Za-z][A-Za-z0-9_()]*)\s*=\s*('(?:[^']*)'|\"(?:[^\"]*)\"|[^,\s]+)")
_NUMBER = re.compile(r"[-+]?(?:nan|inf(?:inity)?|(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?)", re.IGNORECASE)
_FORMAT = "(2E18.10)"


def _value(text: str):
    text = text.strip()
    if text[:1] in "'\"":
        return text[1:-1].strip()
    try:
        return float(text.replace("D", "E").replace("d", "e"))
    except ValueError:
        return text.strip(".").lower() if text.lower() in (".true.", ".false.", ".true", ".false") else text


def _numbers(line: str, path: Path, lineno: int) -> list[float]:
    if "_" not in line:  # plain numbers (every line of a basis's data): float() reads them, 4x faster than the regex
        try:
            return [float(x) for x in line.replace(",", " ").split()]
        except ValueError:
            pass  # Fortran's D exponents, or not numbers: the regex says which
    found = _NUMBER.findall(line)
    rest = _NUMBER.sub(" ", line).replace(",", " ").strip()
    if rest:
        raise FileFormatError(f"{path}, line {lineno}: cannot read {rest!r} as a number")
    return [float(x.replace("D", "E").replace("d", "e")) for x in found]


def _parse(path: Path) -> list[tuple[str, dict, list[float]]]:
    """Split an LCModel file into (section name, key/values, numbers following the section)."""
    try:
        lines = path.read_text(errors="strict").splitlines()
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path} is not an LCModel text file ({exc})") from None
    blocks: list[tuple[str, dict, list[float]]] = []
    current: tuple[str, dict, list[float]] | None = None
    in_header = False
    for lineno, line in enumerate(lines, 1):
        if not in_header:
            match = _SECTION.match(line)
            if match and match.group(1).upper() != "END":
                current = (match.group(1).upper(), {}, [])
                blocks.append(current)
                in_header = True
                line = line[match.end():]
            elif line.strip():
                if current is None:
                    raise FileFormatError(f"{path}, line {lineno}: data before any $SECTION header; not an LCModel file")
                current[2].extend(_numbers(line, path, lineno))
                continue
            else:
                continue
        end = _END.search(line)
        for key, val in _PAIR.findall(line[:end.start()] if end else line):
            current[1][key.upper()] = _value(val)
        if end:
            in_header = False
    if in_header:
        raise FileFormatError(f"{path}: header section ${current[0]} has no $END; the file is truncated")
    return blocks


def _header_value(blocks, key):
    for _, values, _ in blocks:
        if key in values:
            return values[key]
    return None


def _complex(numbers: list[float], n: int, what: str, path: Path) -> np.ndarray:
    if len(numbers) < 2 * n:
        raise FileFormatError(f"{path}: {what} has {len(numbers) // 2} of {n} complex points; the file is truncated")
    if len(numbers) > 2 * n:
        raise FileFormatError(f"{path}: {what} has {len(numbers) // 2} complex points, the header says {n}")
    arr = np.asarray(numbers[: 2 * n], float)
    data = arr[0::2] + 1j * arr[1::2]
    if not np.all(np.isfinite(data)):
        raise FileFormatError(f"{path}: {what} contains NaN or Inf values")
    return data


def read_basis(path) -> dict:
    """Read an LCModel ``.BASIS`` file: dict with names, fids (n, N), dwell_s, field_mhz, te_ms, sequence."""
    path = require_file(path)
    blocks = _parse(path)
    field = _header_value(blocks, "HZPPPM")
    dwell = _header_value(blocks, "BADELT")
    ndata = _header_value(blocks, "NDATAB")
    for key, value in (("HZPPPM (field, MHz)", field), ("BADELT (dwell time)", dwell), ("NDATAB (points)", ndata)):
        if not isinstance(value, float):
            raise FileFormatError(f"{path}: LCModel basis header lacks {key}")
    if dwell < 0:
        raise FileFormatError(f"{path}: BADELT is negative: this is an encrypted LCModel basis, which cannot be read")
    n = int(ndata)
    names, fids = [], []
    for name, values, numbers in blocks:
        if name != "BASIS":
            continue
        metab = values.get("METABO") or values.get("ID")
        if not metab:
            raise FileFormatError(f"{path}: a $BASIS section has no METABO name")
        spec = _complex(numbers, n, f"metabolite {metab}", path)
        spec = np.roll(spec, -int(values.get("ISHIFT", 0) or 0))
        names.append(str(metab))
        fids.append(np.fft.ifft(spec))
    if not names:
        raise FileFormatError(f"{path}: no $BASIS sections (metabolites) found")
    te = _header_value(blocks, "ECHOT")
    seq = _header_value(blocks, "SEQ")
    return {"names": names, "fids": np.array(fids), "dwell_s": float(dwell), "field_mhz": float(field),
            "te_ms": te if isinstance(te, float) else None, "sequence": seq if isinstance(seq, str) else None}


def _write_section(fh, title: str, values: dict) -> None:
    fh.write(f" ${title}\n")
    items = list(values.items())
    for i, (key, value) in enumerate(items):
        text = f"'{value}'" if isinstance(value, str) else (f"{value:.10E}" if isinstance(value, float) else str(value))
        fh.write(f" {key} = {text}{',' if i < len(items) - 1 else ''}\n")
    fh.write(" $END\n")


def _write_numbers(fh, data: np.ndarray) -> None:
    for value in data:
        fh.write(f"{value.real:18.10E}{value.imag:18.10E}\n")


def write_basis(path, names, fids, dwell_s: float, field_mhz: float, te_ms: float | None = None,
                sequence: str | None = None, overwrite: bool = False) -> Path:
    """Write an LCModel ``.BASIS`` file (frequency domain, ISHIFT 0), atomically."""
    fids = np.asarray(fids)
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "w") as fh:
            _write_section(fh, "SEQPAR", {"FWHMBA": 0.0, "HZPPPM": float(field_mhz), "ECHOT": float(te_ms or 0.0),
                                          "SEQ": (sequence or "unknown").upper()})
            _write_section(fh, "BASIS1", {"IDBASI": "mrs-tf", "FMTBAS": _FORMAT, "BADELT": float(dwell_s),
                                          "NDATAB": int(fids.shape[1])})
            for name, fid in zip(names, fids):
                _write_section(fh, "BASIS", {"ID": name, "METABO": name, "CONC": 1.0, "TRAMP": 1.0, "VOLUME": 1.0,
                                             "ISHIFT": 0})
                _write_numbers(fh, np.fft.fft(fid))
    return Path(path)


def read_raw(path) -> dict:
    """Read a ``.RAW``/``.H2O`` file: dict with fid (N,), and field_mhz, dwell_s, te_ms when the header has them."""
    path = require_file(path)
    blocks = _parse(path)
    if not blocks:
        raise FileFormatError(f"{path}: no $NMID header; not an LCModel .RAW file")
    numbers = [x for _, _, nums in blocks for x in nums]
    if len(numbers) % 2:
        raise FileFormatError(f"{path}: odd number of values ({len(numbers)}); the file is truncated")
    fid = _complex(numbers, len(numbers) // 2, "the FID", path)
    if fid.size == 0:
        raise FileFormatError(f"{path}: no data points")
    dwell = next((v for k in ("DELTAT", "BADELT", "DWELLTIME") if isinstance(v := _header_value(blocks, k), float)),
                 None)
    field = _header_value(blocks, "HZPPPM")
    te = _header_value(blocks, "ECHOT")
    return {"fid": fid, "dwell_s": dwell, "field_mhz": field if isinstance(field, float) else None,
            "te_ms": te if isinstance(te, float) else None, "id": _header_value(blocks, "ID")}


def write_raw(path, fid, dwell_s: float | None = None, field_mhz: float | None = None, te_ms: float | None = None,
              name: str = "mrs-tf", overwrite: bool = False) -> Path:
    """Write one FID as an LCModel ``.RAW`` file (with a $SEQPAR giving field, dwell and TE when known)."""
    fid = np.asarray(fid).ravel()
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "w") as fh:
            seqpar = {}
            if field_mhz is not None:
                seqpar["HZPPPM"] = float(field_mhz)
            if dwell_s is not None:
                seqpar["DELTAT"] = float(dwell_s)
            if te_ms is not None:
                seqpar["ECHOT"] = float(te_ms)
            if seqpar:
                _write_section(fh, "SEQPAR", seqpar)
            _write_section(fh, "NMID", {"ID": name, "FMTDAT": _FORMAT, "VOLUME": 1.0, "TRAMP": 1.0})
            _write_numbers(fh, fid)
    return Path(path)

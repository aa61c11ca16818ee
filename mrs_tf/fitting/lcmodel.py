"""LCModel beside mrs-tf: write the .RAW and control files, run a user-given LCModel binary, read its CSV table.

LCModel (Provencher, MRM 30:672, 1993; BSD-3 source) is the field's reference quantifier. mrs-tf does not ship it:
:func:`find_binary` takes a path, ``$LCMODEL`` or an ``lcmodel`` on the PATH, and :func:`build` compiles the
published Fortran source with gfortran when its include files are there. Every call runs in its own temporary
folder; nothing the user owns is written.

``run(fid, basis_file, dwell_s=..., field_mhz=...)`` returns ``{metabolite: concentration}``, ``{metabolite:
%SD}`` and the fit's FWHM (ppm) and S/N as LCModel reports them; concentrations are in the basis's units (with
``water=`` and ``water_conc_mm=``, LCModel's water-scaled institutional units).
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import MRSError
from mrs_tf.formats.lcmodel import write_raw

__all__ = ["LCModelResult", "find_binary", "build", "run", "INCLUDE_FILES"]

#: files the published source includes; the source folder must hold them to build
INCLUDE_FILES = ("lcmodel.inc", "nml_lcmodl.inc", "nml_lcmodel.inc")


@dataclass
class LCModelResult:
    concentrations: dict
    sd_pct: dict
    fwhm_ppm: float = float("nan")
    snr: float = float("nan")
    seconds: float = float("nan")
    control: str = ""
    table: str = field(default="", repr=False)

    def ratio(self, name: str, to: str = "Cr+PCr") -> float:
        """``name`` over ``to`` (LCModel's combination names: 'NAA+NAAG', 'GPC+PCh', 'Cr+PCr', 'Glu+Gln')."""
        den = self.concentrations.get(to, np.nan)
        return float(self.concentrations.get(name, np.nan) / den) if den else float("nan")


def find_binary(path: str | os.PathLike | None = None) -> Path | None:
    """The LCModel executable: ``path``, else ``$LCMODEL``, else ``lcmodel`` on the PATH; None when none runs."""
    for cand in (path, os.environ.get("LCMODEL"), shutil.which("lcmodel")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return Path(cand)
    return None


def build(source_dir: str | os.PathLike, out: str | os.PathLike, include_dir: str | os.PathLike | None = None,
          timeout_s: float = 900) -> Path:
    """Compile ``LCModel.f`` from ``source_dir`` with gfortran into ``out`` (about a minute on 2 cores).

    The source includes :data:`INCLUDE_FILES` (and tissue presets ``muscle-1.inc``, ``liver-1.inc``,
    ``lipid-1.inc``, which brain spectra never use: empty ones are made when missing). MRSError naming what is
    missing when gfortran or an include file is not there."""
    source_dir, out = Path(source_dir), Path(out)
    gfortran = shutil.which("gfortran")
    if gfortran is None:
        raise MRSError("building LCModel needs gfortran (apt-get install gfortran)")
    source = source_dir / "LCModel.f"
    if not source.is_file():
        raise MRSError(f"{source}: no LCModel source there")
    inc = Path(include_dir) if include_dir else source_dir
    missing = [f for f in INCLUDE_FILES if not (inc / f).is_file() and not (source_dir / f).is_file()]
    if missing:
        raise MRSError(f"{source_dir} lacks LCModel's include files {', '.join(missing)}, which LCModel.f needs; "
                       f"put them beside it (or pass include_dir=) to build")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("muscle-1.inc", "liver-1.inc", "lipid-1.inc"):
            if not (inc / preset).is_file() and not (source_dir / preset).is_file():
                Path(tmp, preset).write_text("C     tissue preset not used for brain spectra\n")
        cmd = [gfortran, "-ffpe-summary=none", "-std=legacy", "-O3", "-w", f"-I{inc}", f"-I{source_dir}",
               f"-I{tmp}", str(source), "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise MRSError(f"gfortran failed to build LCModel: {proc.stderr[-2000:]}")
    return out


def _control(values: dict) -> str:
    def fmt(v):
        if isinstance(v, bool):
            return ".true." if v else ".false."
        if isinstance(v, str):
            return f"'{v}'"
        return repr(float(v)) if isinstance(v, float) else str(v)

    lines = [" $LCMODL"] + [f" {k}={fmt(v)}" for k, v in values.items()] + [" $END"]
    return "\n".join(lines) + "\n"


def _read_csv(path: Path) -> tuple[dict, dict]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        raise MRSError(f"LCModel wrote no result table ({path})")
    head, vals = [h.strip() for h in rows[0]], [v.strip() for v in rows[1]]
    conc, sd = {}, {}
    for h, v in zip(head, vals):
        try:
            value = float(v)
        except ValueError:
            continue
        if h.endswith(" %SD"):
            sd[h[:-4].strip()] = value
        elif h.endswith(" Cr+PCr") or h.endswith("/Cr+PCr"):
            continue
        else:
            conc[h] = value
    return conc, sd


def _table_value(text: str, key: str) -> float:
    """The number right after ``key =`` in LCModel's table (e.g. ``FWHM = 0.038 ppm    S/N =  42``)."""
    import re

    match = re.search(re.escape(key) + r"\s*=\s*([-+0-9.eE]+)", text)
    try:
        return float(match.group(1)) if match else float("nan")
    except ValueError:
        return float("nan")


def run(fid, basis_file: str | os.PathLike, *, dwell_s: float, field_mhz: float, binary=None,
        te_ms: float | None = None, water=None, ppm_range=(0.2, 4.0), water_conc_mm: float | None = None,
        extra: dict | None = None, timeout_s: float = 300) -> LCModelResult:
    """Fit one FID (complex, NIfTI-MRS convention) with LCModel and the basis file ``basis_file`` (.BASIS).

    Settings: LCModel's defaults for brain spectra (its simulated lipids and macromolecules, NSIMUL as default,
    spline baseline of standard stiffness), fit range ``ppm_range`` (ppm), eddy-current correction and water
    scaling when ``water`` (an unsuppressed FID) is given. ``extra``: more control variables (e.g. ``{"DKNTMN":
    0.25}``). MRSError when no binary is found or LCModel fails."""
    exe = find_binary(binary)
    if exe is None:
        raise MRSError("no LCModel binary: pass binary=, set $LCMODEL or put lcmodel on the PATH "
                       "(mrs_tf.lcmodel.build compiles the published source)")
    basis_file = Path(basis_file).resolve()
    fid = np.asarray(fid).ravel()
    with tempfile.TemporaryDirectory(prefix="mrs_tf_lcmodel_") as tmp:
        tmp = Path(tmp)
        write_raw(tmp / "data.raw", fid, dwell_s, field_mhz, te_ms)
        values = {"KEY": 210387309, "OWNER": "mrs-tf benchmark", "TITLE": "mrs-tf", "FILBAS": str(basis_file),
                  "FILRAW": str(tmp / "data.raw"), "FILTAB": str(tmp / "out.table"), "LTABLE": 7,
                  "FILCSV": str(tmp / "out.csv"), "LCSV": 11, "FILPS": str(tmp / "out.ps"), "LPS": 0,
                  "HZPPPM": float(field_mhz), "DELTAT": float(dwell_s), "NUNFIL": int(len(fid)),
                  "PPMST": float(max(ppm_range)), "PPMEND": float(min(ppm_range))}
        if te_ms is not None:
            values["ECHOT"] = float(te_ms)
        if water is not None:
            write_raw(tmp / "water.raw", np.asarray(water).ravel(), dwell_s, field_mhz, te_ms)
            values.update({"FILH2O": str(tmp / "water.raw"), "DOECC": True, "DOWS": True})
            if water_conc_mm is not None:
                values["WCONC"] = float(water_conc_mm)
        else:
            values.update({"DOECC": False, "DOWS": False})
        values.update(extra or {})
        control = _control(values)
        start = time.perf_counter()
        proc = subprocess.run([str(exe)], input=control, capture_output=True, text=True, cwd=tmp, timeout=timeout_s)
        seconds = time.perf_counter() - start
        if not (tmp / "out.csv").exists():
            raise MRSError(f"LCModel failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-1500:]}")
        conc, sd = _read_csv(tmp / "out.csv")
        table = (tmp / "out.table").read_text(errors="replace") if (tmp / "out.table").exists() else ""
    return LCModelResult(conc, sd, _table_value(table, "FWHM"), _table_value(table, "S/N"), seconds, control, table)

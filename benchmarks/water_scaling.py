"""Water-scaled concentrations (mM): mrs-tf's and LCModel's against a known truth, then on the Philips volunteers.

    python benchmarks/water_scaling.py [--lcmodel /path/to/lcmodel]   # about a minute

1. **Known truth.** A spectrum made from Osprey's Philips PRESS TE 35 basis (``../shared/data/osprey/basis/``) at
   known concentrations (NAA 10, Cr 4, PCr 4, Glu 10, Ins 6 mM, ...; lines 4 + 3 Hz, SNR 300), in the basis's own
   units (its measured FID amplitude per proton, ``mrs_tf.water.basis_amplitude_per_proton``), and a water
   reference of W = 30,000 mM (one 5 Hz line at 4.65 ppm, 2 protons per molecule), both times a common receiver
   scale. ``mrs-tf fit --basis --water --water-conc-mm W --metab-relax-factor 1`` and LCModel (``WCONC`` = W,
   ``ATTH2O`` = ``ATTMET`` = 1, no ECC) each read it; LCModel also with its basis's first points restored (Osprey's
   files store them halved) and with a wider window for its basis reference area (``RFWBAS``).
2. **The volunteers** (``../shared/data/osprey/invivo_philips_press35/``, ``*_act`` with ``*_ref``): the same two
   with LCModel's defaults for the water (``WCONC`` 35,880 mM, ``ATTH2O`` 0.7, so W = 25,116 mM) and ECC on both.

Prints the tables; asserts nothing. LCModel comes from ``--lcmodel``, ``$LCMODEL``, the PATH, or is built from
``../shared/lcmodel/`` (gfortran); without it only mrs-tf's figures are printed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from invivo_vs_lcmodel import BASIS, SCANS, SUBJECTS, lcmodel_binary, water_of  # noqa: E402

SHOWN = ("NAA+NAAG", "Cr+PCr", "GPC+PCh", "Glu", "Ins")
TRUTH_MM = {"NAA": 10.0, "Cr": 4.0, "PCr": 4.0, "GPC": 1.0, "Ins": 6.0, "Glu": 10.0, "Gln": 3.0, "GSH": 2.0,
            "Tau": 1.5}
WATER_MM = 30_000.0


def truth_of(name: str) -> float:
    return sum(TRUTH_MM.get(part, 0.0) for part in name.split("+"))


def synthetic():
    """(metabolite FID, water FID, basis) at the volunteers' sampling (2,048 points at 2 kHz, 127.731 MHz)."""
    from mrs_tf import BasisSet, SynthesisConfig, synthesize
    from mrs_tf.fitting.basis_prep import prepare_basis
    from mrs_tf.water import basis_amplitude_per_proton

    basis = prepare_basis(BasisSet.load(BASIS), n_points=2048, dwell_s=5e-4, add_mm=False,
                          log=lambda line: None).basis
    names = [n for n in basis.names if n in TRUTH_MM]
    config = SynthesisConfig(lorentz_hz=(4, 4), gauss_hz=(3, 3), shift_ppm=(0, 0), phase0_deg=(0, 0),
                             phase1_deg_per_ppm=(0, 0), baseline_amp=(0, 0), metab_shift_hz=0.0)
    fids, _ = synthesize(basis.subset(names), 1, snr=300.0, seed=1, config=config,
                         concentrations=np.array([[TRUTH_MM[n] for n in names]]))
    per_proton = basis_amplitude_per_proton(basis)[0]
    water = 2 * WATER_MM * per_proton * np.exp(-np.pi * 5.0 * basis.time)
    receiver = 1e3
    return fids[0] * receiver, water * receiver, basis


def mrs_tf_mm(data: Path, water: Path, out: Path, w_mm: float, extra=()) -> dict:
    from mrs_tf.cli import main as cli
    from mrs_tf.table import ResultTable

    code = cli(["fit", "--basis", str(BASIS), str(data), "--water", str(water), "--water-conc-mm", str(w_mm),
                "--metab-relax-factor", "1", "--out", str(out), "--overwrite", "--n-jobs", "1", *extra])
    if code != 0:
        raise SystemExit(f"mrs-tf fit failed (exit {code})")
    table = ResultTable.read_csv(out)
    return {n: float(table[f"{n}_mM"][0]) for n in SHOWN} | {"status": table["status"][0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lcmodel", default=None, help="LCModel binary (default: $LCMODEL, PATH, or build it)")
    parser.add_argument("--lcmodel-include", default=None, help="folder with LCModel's .inc files for the build")
    args = parser.parse_args()
    if not BASIS.exists():
        print(f"reference data not found at {BASIS.parent}; nothing to measure")
        return
    from mrs_tf import BasisSet, lcmodel
    from mrs_tf.formats import nifti
    from mrs_tf.io import read_data

    with tempfile.TemporaryDirectory(prefix="mrs_tf_water_") as tmp:
        work = Path(tmp)
        exe, how = lcmodel_binary(args, work)
        print(how)
        fid, water, basis = synthetic()
        for name, x in (("data", fid), ("water", water)):
            nifti.write(work / f"{name}.nii.gz", x.reshape(1, 1, 1, -1).astype(np.complex128), basis.dwell_s,
                        basis.field_mhz, te_s=0.035, sequence="press")
        rows = {"truth": {n: truth_of(n) for n in SHOWN}}
        rows["mrs-tf fit --water (QUEST)"] = mrs_tf_mm(work / "data.nii.gz", work / "water.nii.gz",
                                                        work / "s.csv", WATER_MM, ["--no-ecc"])
        if exe is not None:
            restored = BasisSet.load(BASIS).save(work / "restored.BASIS")
            for label, basis_file, extra in (
                    ("LCModel, the basis file as it is", BASIS, {}),
                    ("LCModel, its first points restored", restored, {}),
                    ("LCModel, as it is, RFWBAS 80", BASIS, {"RFWBAS": 80.0})):
                res = lcmodel.run(fid, basis_file, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=35.0,
                                  binary=exe, ppm_range=(0.2, 4.0), water=water, water_conc_mm=WATER_MM,
                                  extra={"ATTH2O": 1.0, "ATTMET": 1.0, "DOECC": False, **extra})
                rows[label] = {n: res.concentrations.get(n, np.nan) for n in SHOWN}
        print(f"\n1. Known truth (mM; water {WATER_MM:,.0f} mM, no relaxation), value (% of the truth):")
        print(f"{'':40s}" + "".join(f"{n:>18s}" for n in SHOWN))
        for label, row in rows.items():
            print(f"{label:40s}" + "".join(f"{row[n]:8.2f} ({100 * row[n] / truth_of(n):5.1f} %)" for n in SHOWN))

        w_mm = 35_880.0 * 0.7
        print(f"\n2. The Philips volunteers (mM; W = {w_mm:,.0f} mM, LCModel's WCONC x ATTH2O; ECC on both), "
              f"mrs-tf over LCModel:")
        print(f"{'':10s}{'route':12s}" + "".join(f"{n:>10s}" for n in SHOWN))
        for sub in SUBJECTS:
            scan = SCANS / f"{sub}_PRESS_35_act.sdat"
            ours = mrs_tf_mm(scan, water_of(scan), work / f"{sub}.csv", w_mm)
            print(f"{sub:10s}{'mrs-tf':12s}" + "".join(f"{ours[n]:10.2f}" for n in SHOWN) + f"   {ours['status']}")
            if exe is None:
                continue
            d = read_data(scan)
            w = read_data(water_of(scan), role="water")
            res = lcmodel.run(d["fids"][0], BASIS, dwell_s=d["dwell_s"], field_mhz=d["field_mhz"], te_ms=d["te_ms"],
                              binary=exe, ppm_range=(0.2, 4.0), water=w["fids"][0], water_conc_mm=35_880.0,
                              extra={"ATTH2O": 0.7, "ATTMET": 1.0})
            theirs = {n: res.concentrations.get(n, np.nan) for n in SHOWN}
            print(f"{'':10s}{'LCModel':12s}" + "".join(f"{theirs[n]:10.2f}" for n in SHOWN))
            print(f"{'':10s}{'ratio':12s}" + "".join(f"{ours[n] / theirs[n]:10.2f}" for n in SHOWN))


if __name__ == "__main__":
    main()

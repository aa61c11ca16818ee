"""mrs-tf beside LCModel on real scans: two healthy volunteers, Philips 3 T PRESS TE 35 ms (Osprey's public example
data in ../shared/data/osprey/invivo_philips_press35), with the matching vendor-pulse basis (Osprey's
3T_PRESS_Philips_35ms_noMM.BASIS, no macromolecules).

    python benchmarks/invivo_vs_lcmodel.py               # QUEST + networks trained with train --basis --ensemble 5
    python benchmarks/invivo_vs_lcmodel.py --fast        # CI: the network trained 12 x 40 steps of 64 (shows the path)
    python benchmarks/invivo_vs_lcmodel.py --lcmodel /path/to/lcmodel

Routes, all through the command line as a user runs them, reading the SDAT files directly:
* ``mrs-tf fit`` (QUEST, in-vivo preset: residual water removed by HLSVD, 0.2-4.0 ppm with a spline baseline,
  amplitudes >= 0; the basis's ppm reference corrected and LCModel-style MM + lipids added);
* ``mrs-tf fit`` the same way with mrs-tf's own basis for the scans' protocol (``mrs-tf basis simulate``, 127.73 MHz,
  TE 14 + 21 ms, 2,048 points at 2 kHz), once with ideal pulses and once with shaped refocusing pulses
  (``--refocusing-pulse``, the voxel averaged): what a user without the vendor's basis gets;
* ``mrs-tf train --basis <that basis> --protocol-from <scan> --ensemble 5`` (five seeds read as one; ``--ensemble 1``
  for one network, ``--fast`` trains one briefly) then ``mrs-tf quantify --model`` (water removed first);
* the shipped network ``saved_models/press3t_te30`` (its protocol: 123.2 MHz, TE 30, 4000 Hz: refused here, and
  the refusal is printed); the general network ``saved_models/press3t_short_te`` without flags (its status says
  where the fit cross-check disagrees) and as the start of ``--method hybrid --basis <that basis>``;
* LCModel 6.3 with its default brain settings: its simulated MM and lipids (NSIMUL default), fit range 0.2-4.0 ppm,
  no water reference (DOECC/DOWS off; ratios to Cr+PCr need none), HZPPPM/DELTAT/NUNFIL from the scan. The binary:
  ``--lcmodel``, ``$LCMODEL``, ``lcmodel`` on the PATH, or built from ../shared/lcmodel with gfortran (the source
  needs its include files beside it; ``--lcmodel-include DIR`` points to them). Without a binary the table still
  prints, without the LCModel column.

Prints one table of ratios to tCr (tNAA, tCho, Ins, Glu, Glx), seconds per scan, and each route's difference to
LCModel; the issue's targets are +-10 % (tNAA, tCho, Ins) and +-15 % (Glu). A second LCModel row fits the same scans
with the basis completed by mrs-tf's Gly, Glc and Ala (Osprey's file has 17 metabolites; a brain holds ~1 mM of each
of those three): it shows how much the reference itself rests on the basis's contents. The README's command gives
the water reference (``--water``), which turns on eddy-current correction: that route is compared with LCModel given
the same reference (DOECC), whose own row shows what the correction moves in LCModel. Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SCANS = SHARED / "data" / "osprey" / "invivo_philips_press35"
BASIS = SHARED / "data" / "osprey" / "basis" / "3T_PRESS_Philips_35ms_noMM.BASIS"
SUBJECTS = ("sub-01", "sub-02")
#: (label, output column) of the ratios to tCr
RATIOS = (("tNAA", "NAA+NAAG"), ("tCho", "GPC+PCh"), ("Ins", "Ins"), ("Glu", "Glu"), ("Glx", "Glu+Gln"))
TARGET = {"tNAA": 10, "tCho": 10, "Ins": 10, "Glu": 15}
#: the LCModel row that the routes given the water reference (eddy-current correction) are compared with
WATER_REFERENCE = "LCModel 6.3 + water reference (ECC)"


def water_of(path: Path) -> Path:
    """The unsuppressed water reference acquired with scan ``path`` (``*_act.sdat`` -> ``*_ref.sdat``)."""
    return path.with_name(path.name.replace("_act.", "_ref."))


def lcmodel_binary(args, work: Path):
    from mrs_tf import lcmodel
    from mrs_tf.errors import MRSError

    found = lcmodel.find_binary(args.lcmodel)
    if found:
        return found, f"LCModel binary {found}"
    try:
        t0 = time.perf_counter()
        exe = lcmodel.build(SHARED / "lcmodel", work / "lcmodel", include_dir=args.lcmodel_include)
        return exe, f"LCModel built from {SHARED / 'lcmodel'} in {time.perf_counter() - t0:.0f} s"
    except (MRSError, OSError) as exc:
        return None, f"LCModel skipped: {exc}"


def run_lcmodel(exe, fid, d, water=None) -> tuple[dict, float]:
    """LCModel's ratios to tCr and seconds for ``fid``; ``water``: the unsuppressed reference FID (DOECC: LCModel's
    own eddy-current correction from it)."""
    from mrs_tf import lcmodel

    res = lcmodel.run(fid, BASIS, dwell_s=d["dwell_s"], field_mhz=d["field_mhz"], te_ms=d["te_ms"], binary=exe,
                      ppm_range=(0.2, 4.0), water=water)
    return {label: res.ratio(col) for label, col in RATIOS}, res.seconds


def brain_complete_basis(folder: Path, pulse: str) -> Path:
    """Osprey's Philips basis with mrs-tf's Gly, Glc and Ala (a brain holds ~1 mM of each; the file has 17
    metabolites without them) added in its units and frame: simulated for the same protocol with the shaped pulse
    ``pulse`` (TE 14 + 21 ms), moved onto the file's Cr (its reference offset, +0.03 ppm) and scaled by the two Cr
    signals' norms (3 Hz broadening). Written to ``folder`` as ``<stem>_plus_Gly_Glc_Ala.BASIS``."""
    from mrs_tf import BasisSet
    from mrs_tf.physics.protocols import protocol_basis

    osp = BasisSet.load(BASIS, unknown="keep")
    own = protocol_basis(osp.field_mhz, 35.0, 14.0, n_points=osp.n_points, dwell_s=osp.dwell_s, refocusing=pulse)
    t = own.time
    weight = np.exp(-np.pi * 3.0 * t)
    theirs, ours = osp.fids[osp.index("Cr")] * weight, own.fids[own.index("Cr")] * weight
    offsets = np.arange(-10.0, 10.0, 0.05)  # Hz
    overlap = [abs(np.vdot(ours * np.exp(2j * np.pi * df * t), theirs)) for df in offsets]
    move = np.exp(2j * np.pi * offsets[int(np.argmax(overlap))] * t)
    scale = np.linalg.norm(theirs) / np.linalg.norm(ours)
    add = ["Gly", "Glc", "Ala"]
    plus = BasisSet(list(osp.names) + add, np.vstack([osp.fids, scale * own.fids[[own.index(n) for n in add]] * move]),
                    osp.dwell_s, osp.field_mhz, osp.ref_ppm, dict(osp.protocol))
    return plus.save(folder / f"{BASIS.stem}_plus_Gly_Glc_Ala.BASIS", overwrite=True)


def per_scan(cli, scans, command) -> tuple[list, float, str] | None:
    """A route run once per scan (``command(scan)``: the CLI arguments, writing the CSV after ``--out``): each
    scan's ratios, the mean seconds per scan and the statuses; None when a run fails."""
    from mrs_tf.table import ResultTable

    per, secs, status = [], [], []
    for path in scans:
        args = command(path)
        t0 = time.perf_counter()
        if cli(args) != 0:
            return None
        secs.append(time.perf_counter() - t0)
        table = ResultTable.read_csv(args[args.index("--out") + 1])
        per.append(ratios_from(table, 0))
        status.append(table["status"][0])
    return per, float(np.mean(secs)), ",".join(status)


def ratios_from(table, i, prefix: str = "") -> dict:
    """Row ``i``'s ratios to tCr (``prefix``: e.g. ``crosscheck_fit_``, the network's cross-check fit); Glx from
    Glu+Gln where the table has it (NaN otherwise)."""
    return {label: float(table[f"{prefix}{col}_over_tCr"][i]) if f"{prefix}{col}_over_tCr" in table else float("nan")
            for label, col in RATIOS}


def main() -> None:
    from mrs_tf.cli.fit import SCANNER_FIT_PULSE

    parser = argparse.ArgumentParser()
    parser.add_argument("--fast", action="store_true", help="CI: a short network training (12 x 40 steps of 64)")
    parser.add_argument("--lcmodel", default=None, help="LCModel binary (default: $LCMODEL, PATH, or build it)")
    parser.add_argument("--lcmodel-include", default=None, help="folder with LCModel's .inc files for the build")
    parser.add_argument("--epochs", type=int, default=None, help="network training epochs (default: the command's 40)")
    parser.add_argument("--ensemble", type=int, default=None,
                        help="train --basis --ensemble K: K networks read as one (default 5; --fast: 1)")
    parser.add_argument("--work", default=None, help="folder for the files (default: a temporary one)")
    parser.add_argument("--refocusing-pulse", default=SCANNER_FIT_PULSE,
                        help="shaped pulse of the mrs-tf basis route (mrs_tf.physics.pulses.REFOCUSING_PULSES)")
    parser.add_argument("--general", default=None,
                        help="a protocol-general model folder (default: saved_models/press3t_short_te when there)")
    args = parser.parse_args()
    if not BASIS.exists():
        print(f"reference data not found at {SCANS.parent}; nothing to measure")
        return

    from mrs_tf import lcmodel
    from mrs_tf.cli import main as cli
    from mrs_tf.io import read_data
    from mrs_tf.table import ResultTable

    work = Path(args.work or tempfile.mkdtemp(prefix="mrs_tf_invivo_"))
    work.mkdir(parents=True, exist_ok=True)
    scans = [SCANS / f"{s}_PRESS_35_act.sdat" for s in SUBJECTS]
    rows: dict = {}  # route -> [ratios per scan], seconds per scan, status
    with_water: set = set()  # the mrs-tf routes given the water reference: compared with LCModel given it too

    exe, how = lcmodel_binary(args, work)
    print(how)
    if exe is not None:
        per, secs = [], []
        for path in scans:
            d = read_data(path)
            r, s = run_lcmodel(exe, d["fids"][0], d)
            per.append(r)
            secs.append(s)
        rows["LCModel 6.3"] = (per, float(np.mean(secs)), "-")
        # the same with a brain-complete basis: Osprey's file lacks Gly, Glc and Ala, whose signal LCModel then
        # gives to Ins (and neighbours)
        complete = brain_complete_basis(work, args.refocusing_pulse)
        per, secs = [], []
        for path in scans:
            d = read_data(path)
            res = lcmodel.run(d["fids"][0], complete, dwell_s=d["dwell_s"], field_mhz=d["field_mhz"],
                              te_ms=d["te_ms"], binary=exe, ppm_range=(0.2, 4.0))
            per.append({label: res.ratio(col) for label, col in RATIOS})
            secs.append(res.seconds)
        rows["LCModel 6.3, basis + mrs-tf's Gly/Glc/Ala"] = (per, float(np.mean(secs)), "-")

    # the README's command: the water reference given (--water), so eddy-current correction (Klose) on; compared
    # with LCModel given the same reference (DOECC), not with the rows above
    if exe is not None:
        per, secs = [], []
        for path in scans:
            d = read_data(path)
            water = read_data(water_of(path), role="water")
            r, s = run_lcmodel(exe, d["fids"][0], d, water=water["fids"][0])
            per.append(r)
            secs.append(s)
        rows[WATER_REFERENCE] = (per, float(np.mean(secs)), "-")
    route = "mrs-tf QUEST --water (ECC; vs LCModel ECC)"
    rows[route] = per_scan(cli, scans, lambda path: [
        "fit", "--basis", str(BASIS), str(path), "--water", str(water_of(path)),
        "--out", str(work / f"quest_water_{path.stem}.csv"), "--overwrite", "--n-jobs", "1"])
    assert rows[route] is not None
    with_water.add(route)

    out = work / "quest.csv"
    t0 = time.perf_counter()
    assert cli(["fit", "--basis", str(BASIS), *map(str, scans), "--out", str(out), "--overwrite", "--n-jobs", "1"]) == 0
    secs = (time.perf_counter() - t0) / len(scans)
    table = ResultTable.read_csv(out)
    rows["mrs-tf QUEST (fit, in-vivo)"] = ([ratios_from(table, i) for i in range(len(scans))], secs,
                                           ",".join(table["status"]))

    for label, extra in (("ideal pulses", []), ("shaped pulses", ["--refocusing-pulse", args.refocusing_pulse])):
        own = work / f"mrs_tf_{label.split()[0]}.BASIS"
        assert cli(["basis", "simulate", "--field-mhz", "127.73", "--te1-ms", "14", "--te2-ms", "21", "--points",
                    "2048", "--bandwidth-hz", "2000", "--out", str(own), "--overwrite", *extra]) == 0
        out = work / f"quest_{label.split()[0]}.csv"
        t0 = time.perf_counter()
        assert cli(["fit", "--basis", str(own), *map(str, scans), "--out", str(out), "--overwrite",
                    "--n-jobs", "1"]) == 0
        secs = (time.perf_counter() - t0) / len(scans)
        table = ResultTable.read_csv(out)
        rows[f"mrs-tf QUEST, mrs-tf basis ({label})"] = ([ratios_from(table, i) for i in range(len(scans))], secs,
                                                         ",".join(table["status"]))

    model = work / "net_philips_te35"
    # an ensemble's members that finished in this --work folder before are kept (--resume), not trained again
    if args.ensemble is None:  # one network's in vivo answer depends on its seed by up to 30 points: five of them
        args.ensemble = 1 if args.fast else 5
    again = "--resume" if args.ensemble > 1 and (model / "members").exists() else "--overwrite"
    train = ["train", "--basis", str(BASIS), "--protocol-from", str(scans[0]), "--out", str(model), again]
    if args.fast:
        train += ["--epochs", "12", "--steps-per-epoch", "40", "--batch-size", "64", "--test-size", "256"]
    elif args.epochs:
        train += ["--epochs", str(args.epochs)]
    if args.ensemble > 1:
        train += ["--ensemble", str(args.ensemble)]
    t0 = time.perf_counter()
    code = cli(train)
    train_min = (time.perf_counter() - t0) / 60
    if code == 0:
        out = work / "net.csv"
        t0 = time.perf_counter()
        assert cli(["quantify", *map(str, scans), "--model", str(model), "--out", str(out), "--overwrite"]) == 0
        secs = (time.perf_counter() - t0) / len(scans)
        table = ResultTable.read_csv(out)
        meta = json.loads((model / "quantifier.json").read_text())["training"]
        what = (f"{meta['members']} x {meta['member_epochs'][0]} ep" if meta.get("members")
                else f"{meta['epochs_run']} ep")
        # the training's own time (members kept from an earlier run in --work took theirs then, not now)
        train_min = max(train_min, float(meta.get("seconds", 0.0)) / 60)
        rows[f"network, train --basis ({what}, {train_min:.1f} min)"] = (
            [ratios_from(table, i) for i in range(len(scans))], secs, ",".join(table["status"]))
        if "crosscheck_fit_NAA+NAAG_over_tCr" in table:  # its cross-check: a fit with the training basis
            rows["  its cross-check fit, the training basis"] = (
                [ratios_from(table, i, "crosscheck_fit_") for i in range(len(scans))], secs,
                ",".join(table["crosscheck_fit_status"]))
    else:
        print(f"train --basis: no model (exit {code}, see above)")

    general = Path(args.general) if args.general else ROOT / "saved_models" / "press3t_short_te"
    if (general / "quantifier.json").exists():  # the protocol-general network: the scans as they are, no flags
        out = work / "general.csv"
        t0 = time.perf_counter()
        code = cli(["quantify", *map(str, scans), "--model", str(general), "--out", str(out), "--overwrite"])
        secs = (time.perf_counter() - t0) / len(scans)
        if code == 0:
            table = ResultTable.read_csv(out)
            rows[f"network, {general.name} (no flags)"] = ([ratios_from(table, i) for i in range(len(scans))], secs,
                                                           ",".join(table["status"]))
            if "crosscheck_fit_NAA+NAAG_over_tCr" in table:  # the same command's cross-check fit, beside the network's
                rows["  its cross-check fit, mrs-tf's shaped basis"] = (
                    [ratios_from(table, i, "crosscheck_fit_") for i in range(len(scans))], secs,
                    ",".join(table["crosscheck_fit_status"]))
        else:
            print(f"{general}: exit {code} (see above)")
        # the same with the water reference (ECC on), against LCModel given it too
        found = per_scan(cli, scans, lambda path: [
            "quantify", str(path), "--model", str(general), "--water", str(water_of(path)),
            "--out", str(work / f"general_water_{path.stem}.csv"), "--overwrite"])
        if found is not None:
            rows[f"network, {general.name} --water (ECC)"] = found
            with_water.add(f"network, {general.name} --water (ECC)")
        # the network's answer starting a fit with the scan's own basis (mrs-tf fit's in vivo model, amplitudes >= 0)
        out = work / "hybrid.csv"
        t0 = time.perf_counter()
        code = cli(["quantify", *map(str, scans), "--model", str(general), "--method", "hybrid", "--basis",
                    str(BASIS), "--out", str(out), "--overwrite"])
        secs = (time.perf_counter() - t0) / len(scans)
        if code == 0:
            table = ResultTable.read_csv(out)
            rows[f"hybrid, {general.name} + --basis"] = ([ratios_from(table, i) for i in range(len(scans))], secs,
                                                         ",".join(table["status"]))
    shipped = ROOT / "saved_models" / "press3t_te30"
    code = cli(["quantify", str(scans[0]), "--model", str(shipped), "--out", str(work / "shipped.csv"), "--overwrite"])
    print(f"shipped {shipped.name} on these scans: exit {code} (a refusal names the protocol mismatch above)")

    ref = rows.get("LCModel 6.3")
    print(f"\nratios to tCr, {', '.join(SUBJECTS)}; in brackets: difference to LCModel, for the routes given the "
          f"water reference (ECC) to LCModel given it too (targets: tNAA/tCho/Ins +-10 %, Glu +-15 %)")
    head = f"{'route':44s} {'scan':7s}" + "".join(f"{lab:>16s}" for lab, _ in RATIOS) + f"{'s/scan':>9s}  status"
    print(head)
    print("-" * len(head))
    for route, (per, secs, status) in rows.items():
        against = rows.get(WATER_REFERENCE) if route in with_water else ref
        for k, (sub, r) in enumerate(zip(SUBJECTS, per)):
            cells = ""
            for lab, _ in RATIOS:
                if against is not None and route != "LCModel 6.3":
                    diff = 100 * (r[lab] / against[0][k][lab] - 1)
                    mark = "*" if lab in TARGET and abs(diff) > TARGET[lab] else " "
                    cells += f"{r[lab]:8.3f}({diff:+4.0f}%){mark}".rjust(16)
                else:
                    cells += f"{r[lab]:16.3f}"
            print(f"{route[:44]:44s} {sub:7s}{cells}{secs:9.2f}  {status.split(',')[k] if ',' in status else status}")
    print("(* outside the target)")
    print(f"files in {work}")


if __name__ == "__main__":
    main()

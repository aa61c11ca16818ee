"""What the command groups share: protocol, water and preprocessing options, output checks, water scaling."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from mrs_tf.core.errors import MRSError


def add_protocol(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sequence", default="press", help="press (default), steam, slaser, spin_echo or fid")
    p.add_argument("--field-mhz", type=float, default=123.2, help="proton frequency in MHz (default 123.2 = 3 T)")
    p.add_argument("--te-ms", type=float, default=None, help="echo time (ms)")
    p.add_argument("--te1-ms", type=float, default=None, help="PRESS first sub-echo time (ms)")
    p.add_argument("--te2-ms", type=float, default=None, help="PRESS second sub-echo time (ms)")
    p.add_argument("--tm-ms", type=float, default=None, help="STEAM mixing time (ms)")
    p.add_argument("--n-refocus", type=int, default=4, help="semi-LASER refocusing pulses (default 4)")
    p.add_argument("--points", type=int, default=2048, help="complex points (default 2048)")
    p.add_argument("--bandwidth-hz", type=float, default=4000.0, help="spectral width in Hz (default 4000)")


def add_water(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("water scaling (adds <metabolite>_mM columns; see mrs_tf.water)")
    g.add_argument("--water", default=None, help="unsuppressed water reference (same protocol as the data)")
    g.add_argument("--water-conc-mm", type=float, default=None,
                   help="relaxation- and tissue-corrected water concentration (mM); overrides the tissue model")
    g.add_argument("--metab-relax-factor", type=float, default=None,
                   help="metabolite relaxation correction (>= 1); overrides T1/T2 of the metabolites")
    g.add_argument("--tr-ms", type=float, default=2000.0, help="repetition time for the relaxation model")
    g.add_argument("--te-ms", type=float, default=None, help="echo time (default: the file's or the protocol's)")
    g.add_argument("--tissue", type=float, nargs=3, default=None, metavar=("GM", "WM", "CSF"),
                   help="volume fractions of the voxel (default 0.6 0.4 0)")
    g.add_argument("--basis-amplitude-per-proton", type=float, default=None,
                   help="the basis's FID amplitude at t = 0 per proton per unit concentration (default: measured "
                        "on its Cr/PCr/NAA CH3 singlets; 1 for mrs-tf's basis)")


def add_omit(p: argparse.ArgumentParser, what: str) -> None:
    """``--omit NAME,NAME,...`` (or the flag repeated): basis signals left out (``BasisSet.without``);
    ``args.omit`` is the list of names, or None."""
    p.add_argument("--omit", action="append", type=_names, default=None, metavar="NAME,NAME",
                   help=f"with --basis: signals of the basis to leave out of {what}, comma-separated (e.g. the "
                        f"non-brain signals of an Osprey basis: EtOH,bHB,bHG,Phenyl,Tyros); a name the basis lacks "
                        f"is an error")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no signal name in {text!r}")
    return names


def omitted(args) -> list[str]:
    """The names of every ``--omit`` given, in order (``[]`` without one); MRSError when they come without
    ``--basis`` (mrs-tf's own basis holds the brain's metabolites only)."""
    names = [n for group in (getattr(args, "omit", None) or []) for n in group]
    if names and not getattr(args, "basis", None):
        raise MRSError("--omit leaves signals out of the basis given with --basis: give --basis too (mrs-tf's own "
                       "basis holds the brain's metabolites only)")
    return names


def basis_norm(args, measure) -> float | None:
    """With --water: the basis's FID amplitude per proton per unit concentration (--basis-amplitude-per-proton, or
    ``measure()`` -> (value, per-metabolite dict)); printed, so that a wrong normalisation is visible."""
    if not args.water:
        return None
    if args.basis_amplitude_per_proton is not None:
        if not args.basis_amplitude_per_proton > 0:
            raise MRSError(f"--basis-amplitude-per-proton must be > 0, got {args.basis_amplitude_per_proton}")
        return float(args.basis_amplitude_per_proton)
    value, parts = measure()
    detail = ", ".join(f"{k} {v:.4g}" for k, v in parts.items())
    print(f"basis normalisation: {value:.4g} FID units per proton per unit concentration ({detail})")
    if max(parts.values()) > 1.1 * min(parts.values()):
        print(f"mrs-tf: warning: the basis's reference singlets disagree ({detail}): its metabolites seem normalised "
              f"one by one, so absolute concentrations are only as right as that normalisation", file=sys.stderr)
    return value


def water_scale(args, table, names, data: dict, te_ms: float | None, per_proton: float = 1.0) -> None:
    """Add <name>_mM columns when --water is given (one water FID for all spectra, or one per spectrum);
    ``per_proton``: the basis normalisation of :func:`basis_norm`."""
    if not args.water:
        return
    from mrs_tf.io import read_data
    from mrs_tf.fitting.water import WaterScaling, check_water_protocol, scale_table, water_amplitude

    water = data.get("water") or read_data(args.water, field_mhz=args.field_mhz, dwell_s=dwell_s_from(args), combine=True,
                                           role="water",  # what the data got, no more
                                           restore_first_point=getattr(args, "restore_first_point", True))
    check_water_protocol(water, data)
    n = len(data["fids"])
    if len(water["fids"]) not in (1, n):
        raise MRSError(f"{args.water} holds {len(water['fids'])} water FIDs for {n} spectra; give one, or one per "
                       f"spectrum")
    amp = water_amplitude(water["fids"], water["dwell_s"], water["field_mhz"])
    te = args.te_ms if args.te_ms is not None else (data.get("te_ms") or te_ms)
    if te is None:
        raise MRSError("water scaling needs the echo time: give --te-ms")
    gm, wm, csf = args.tissue if args.tissue else (0.6, 0.4, 0.0)
    scaling = WaterScaling(te_s=te * 1e-3, tr_s=args.tr_ms * 1e-3, f_gm=gm, f_wm=wm, f_csf=csf,
                           water_conc_mm=args.water_conc_mm, metab_relax_factor=args.metab_relax_factor)
    scale_table(table, names, amp if len(amp) == n else amp[0], scaling, basis_protons=per_proton)


def add_preprocessing(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("in vivo preprocessing (on by default; each step is reported in the table)")
    g.add_argument("--no-combine", dest="combine", action="store_false", default=True,
                   help="keep coils and transients (NIfTI-MRS DIM_COIL/DIM_DYN) as separate rows")
    g.add_argument("--combine", dest="combine", action="store_true", help="(default) combine coils, average "
                   "transients")
    g.add_argument("--no-align", dest="align", action="store_false", default=True,
                   help="average transients without frequency/phase alignment (spectral registration)")
    g.add_argument("--ecc", dest="ecc", action="store_true", default=None,
                   help="eddy-current (and zero-order phase) correction from the --water reference (Klose; the "
                        "default when --water is given)")
    g.add_argument("--no-ecc", dest="ecc", action="store_false", help="no eddy-current correction")
    g.add_argument("--keep-first-point", dest="restore_first_point", action="store_false", default=True,
                   help="leave a FID's first point as the file stores it (default: a first point stored halved, the "
                        "DFT's trapezoid weight, as in Philips SDAT files, is doubled back; column "
                        "first_point_restored)")
    g.add_argument("--conjugate", action="store_true",
                   help="the file uses the other frequency sign convention (peaks mirrored about the carrier): "
                        "conjugate the FIDs (and the --water reference) first")


def fit_options(args):
    """QuestOptions from --preset and the flags given."""
    from mrs_tf.fitting.quest import QuestOptions

    opts = QuestOptions.in_vivo() if args.preset == "in-vivo" else QuestOptions()
    changes = {}
    if args.background:
        changes["background"] = args.background
    if args.truncate_ms is not None:
        changes["truncate_ms"] = args.truncate_ms
    if args.water_ppm:
        changes["water_ppm"] = tuple(args.water_ppm)
    if args.no_water_removal:
        changes["water_ppm"] = None
    if args.ppm_range:
        changes["ppm_range"] = tuple(sorted(args.ppm_range))
    if args.nonnegative is not None:
        changes["nonnegative"] = args.nonnegative
    if args.baseline_stiffness is not None:
        changes["baseline_stiffness"] = args.baseline_stiffness
    return opts.with_(**changes)


def refuse_existing(args, *targets) -> None:
    """Check every output before any work, so that a refused run writes nothing."""
    for target in targets:
        if target and Path(target).exists() and not args.overwrite:
            raise MRSError(f"{target} already exists; refusing to overwrite it (use --overwrite)")
        parent = Path(target).parent if target else None
        if parent is not None and not parent.is_dir():  # found now, not after the first output was written
            raise MRSError(f"cannot write {target}: folder {parent} does not exist")


def dwell_s_from(args) -> float | None:
    """Dwell time (s) from --bandwidth-hz, for .RAW files whose header lacks it."""
    return 1.0 / args.bandwidth_hz if args.bandwidth_hz else None


def write_plot(fig, path, overwrite):
    from mrs_tf.reporting.plots import write_html

    write_html(fig, path, overwrite=overwrite)
    print(f"wrote {path}")


def spectra_count(n: int) -> str:
    """``"1 spectrum"``, ``"16 spectra"``."""
    return f"{n} spectrum" if n == 1 else f"{n} spectra"

"""``mrs-tf train``, ``tune``, ``evaluate`` and ``export``: the networks."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path


from mrs_tf.cli.common import add_omit, omitted, refuse_existing
from mrs_tf.core.errors import MRSError


#: the spectral range (ppm) a network of ``mrs-tf train --basis`` reads unless ``--ppm-range`` says otherwise
BASIS_PPM_RANGE = (0.2, 4.0)


def add_parsers(sub) -> None:
    """The group's sub-commands on ``sub`` (argparse sub-parsers)."""
    trn = sub.add_parser("train", help="train a network on spectra synthesised on the fly")
    trn.add_argument("--out", required=True, help="output folder (model.keras, quantifier.json, log.csv)")
    trn.add_argument("--config", default=None,
                     help="TrainConfig JSON (e.g. best_config.json of mrs-tf tune); flags given override it")
    trn.add_argument("--basis", default=None,
                     help="train for your own basis set (.BASIS, NIfTI-MRS, jMRUI text, FSL-MRS folder, Osprey .mat)")
    trn.add_argument("--complete-basis", action="store_true",
                     help="with --basis: add mrs-tf's simulation of the brain metabolites the basis lacks (e.g. Gly, "
                          "Glc, Ala), so that the training spectra carry them as brains do")
    add_omit(trn, "training (and of the network's outputs)")
    trn.add_argument("--prior", action="append", default=None, metavar="NAME=LOW:HIGH",
                     help="a signal's training concentrations, uniform LOW-HIGH (mM, or the basis's units), in place "
                          "of mrs-tf's widened healthy-brain prior, e.g. PE=0.25:5 or Lac=0:15 for a tumour study; "
                          "repeat for more (a network can only report what its training spans)")
    trn.add_argument("--protocol-from", default=None,
                     help="a data file whose points, dwell, field and TE the basis is matched to (with --basis)")
    trn.add_argument("--ppm-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                     help="the spectral range the network reads (ppm; default 0.2 4.2, with --basis 0.2 4.0: above "
                          "4.0 ppm real scans carry the water suppression's and the water removal's traces)")
    trn.add_argument("--test-size", type=int, default=1024, help="fresh test spectra for metrics.json/model card")
    trn.add_argument("--model", default=None, help="seed_cnn (default), resnet_cnn or dilated_cnn")
    trn.add_argument("--model-kwargs", default=None, help='builder keywords as JSON, e.g. \'{"kernel_size": 7}\'')
    trn.add_argument("--epochs", type=int, default=None, help="default 40")
    trn.add_argument("--steps-per-epoch", type=int, default=None, help="default 200")
    trn.add_argument("--batch-size", type=int, default=None, help="default 128")
    trn.add_argument("--learning-rate", type=float, default=None, help="default 1e-3")
    trn.add_argument("--lr-schedule", choices=["cosine", "plateau"], default=None,
                     help="cosine (default): the learning rate annealed over the epochs to 2 %% of --learning-rate; "
                          "plateau: halved whenever the validation loss stalls (mrs-tf's schedule before 2026-11-30)")
    trn.add_argument("--highpass-hz", type=float, default=None, metavar="HZ",
                     help="the network reads its input spectrum minus a Gaussian smoothing of this FWHM (Hz), "
                          "e.g. 25: the lines, less of the broad baseline and macromolecules under them (default 0: "
                          "off; measured in benchmarks/RESULTS.md)")
    trn.add_argument("--seed", type=int, default=None, help="default 0")
    trn.add_argument("--ensemble", type=int, default=None, metavar="K",
                     help="train K networks (seeds SEED ... SEED+K-1) and read them as one (mean of theirs, sigma "
                          "widened where they disagree); K times the training time. On real scans a single "
                          "network's answer depends on its seed (benchmarks/RESULTS.md); default 1")
    trn.add_argument("--no-uncertainty", action="store_true", help="plain MSE, no sigma output")
    trn.add_argument("--tfds", default=None, help="train on mrs_brain_sim/CONFIG instead of streaming")
    trn.add_argument("--resume", action="store_true",
                     help="continue an interrupted run in --out; with more --epochs, train a finished one further "
                          "(from its best weights)")
    trn.add_argument("--overwrite", action="store_true", help="replace a finished model in --out")
    trn.add_argument("--strategy", choices=["mirrored", "multiworker"], default=None,
                     help="tf.distribute strategy (GPUs / several machines; multiworker reads TF_CONFIG)")
    trn.add_argument("--tensorboard", action="store_true")
    tun = sub.add_parser("tune", help="architecture search with keras-tuner (Hyperband or Bayesian optimisation)")
    tun.add_argument("--out", required=True, help="search folder (trials, best_config.json)")
    tun.add_argument("--algorithm", choices=["hyperband", "bayesian"], default="hyperband")
    tun.add_argument("--max-trials", type=int, default=20, help="bayesian: number of trials")
    tun.add_argument("--max-epochs", type=int, default=20, help="epochs per trial at most (Hyperband's budget)")
    tun.add_argument("--steps-per-epoch", type=int, default=100)
    tun.add_argument("--batch-size", type=int, default=128)
    tun.add_argument("--val-size", type=int, default=1024)
    tun.add_argument("--seed", type=int, default=0)
    tun.add_argument("--resume", action="store_true", help="continue the search in --out")
    tun.add_argument("--overwrite", action="store_true", help="discard the search in --out and start again")
    evl = sub.add_parser("evaluate", help="network vs QUEST vs CRLB on a test set: metrics CSV and an HTML report")
    evl.add_argument("--model", default="saved_models/press3t_te30", help="quantifier folder")
    evl.add_argument("--n", type=int, default=2000, help="fresh test spectra to synthesise (default 2000)")
    evl.add_argument("--snr", type=float, nargs=2, default=[10.0, 100.0], metavar=("LOW", "HIGH"))
    evl.add_argument("--seed", type=int, default=0)
    evl.add_argument("--data", nargs="+", default=None,
                     help="instead of fresh spectra: tfds:CONFIG[:SPLIT], or data files with --truth")
    evl.add_argument("--truth", default=None, help="ground-truth CSV of --data files (mrs-tf synth writes one)")
    evl.add_argument("--report", default=None, help="self-contained HTML report")
    evl.add_argument("--out", default=None, help="metrics CSV (default: the report's name with .csv)")
    evl.add_argument("--no-quest", action="store_true", help="network only (no QUEST fits)")
    evl.add_argument("--n-jobs", type=int, default=2, help="QUEST worker processes")
    evl.add_argument("--overwrite", action="store_true")
    exp = sub.add_parser("export", help="export a trained quantifier to TFLite/LiteRT or a SavedModel")
    exp.add_argument("model", help="quantifier folder (model.keras + quantifier.json)")
    exp.add_argument("--format", choices=["tflite", "saved_model"], default="tflite")
    exp.add_argument("--quantize", choices=["none", "float16", "dynamic", "int8"], default="none",
                     help="tflite: float32 (none), float16 weights, int8 weights (dynamic), or int8 (calibrated)")
    exp.add_argument("--out", required=True, help="output .tflite file or SavedModel folder")
    exp.add_argument("--seed", type=int, default=0, help="seed of int8's representative spectra")
    exp.add_argument("--overwrite", action="store_true")


def _train(args) -> None:
    import dataclasses

    from mrs_tf.nn.train import TrainConfig, logged_run, train

    settings = {}
    if args.config:
        try:
            settings = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MRSError(f"--config {args.config}: cannot read a JSON TrainConfig ({exc})") from None
        unknown = set(settings) - {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown:
            raise MRSError(f"--config {args.config}: unknown TrainConfig keys {sorted(unknown)}")
    if args.model_kwargs:
        try:
            settings["model_kwargs"] = json.loads(args.model_kwargs)
        except json.JSONDecodeError as exc:
            raise MRSError(f"--model-kwargs is not JSON ({exc})") from None
    if args.ensemble is not None and args.ensemble < 1:
        raise MRSError(f"--ensemble {args.ensemble}: give the number of networks, 1 or more")
    for key in ("model", "epochs", "steps_per_epoch", "batch_size", "learning_rate", "seed", "ensemble",
                "lr_schedule", "highpass_hz"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.ppm_range:
        low, high = sorted(args.ppm_range)
        if low < 0 or high - low < 1.0:
            raise MRSError(f"--ppm-range {low:g} {high:g}: give a range of at least 1 ppm within the metabolites' "
                           f"(e.g. 0.2 4.0)")
        settings["ppm_range"] = (low, high)
    if args.no_uncertainty:
        settings["uncertainty"] = False
    if args.tfds:
        settings["tfds_config"] = args.tfds
    if args.tensorboard:
        settings["tensorboard"] = True
    omit = omitted(args)
    if args.prior:
        given = settings.get("synthesis", {})
        settings["synthesis"] = {**given, "priors": {**given.get("priors", {}), **priors(args.prior, args.basis)}}
    if args.protocol_from and not args.basis:
        raise MRSError("--protocol-from matches a basis set to data: give --basis too")
    if args.basis:
        settings["basis_path"], settings["protocol_from"] = str(args.basis), args.protocol_from
        settings["complete_basis"] = bool(args.complete_basis)
        if omit:
            settings["omit"] = tuple(omit)
        # a network for the user's scanner basis reads what the fits and LCModel read: the Philips volunteers'
        # residual above 4.0 ppm had moved its Ins/tCr by -14 / -20 % and Glu by -14 / -19 % (0.2-4.0: +16 / +8,
        # +7 / -1 %; benchmarks/RESULTS.md)
        given_ppm_range = "ppm_range" in settings
        settings.setdefault("ppm_range", BASIS_PPM_RANGE)
    saved_path = Path(args.out) / "train_config.json"
    if args.resume and saved_path.exists():  # a resumed run trains on its saved recipe: say which flags it ignores
        asked = {k: v for k, v in settings.items() if k != "ppm_range" or not args.basis or given_ppm_range}
        # a run saved before lr_schedule existed is compared as it trained (TrainConfig.from_saved: plateau), its
        # model_kwargs as its card's command gave them
        raw = json.loads(saved_path.read_text())
        differ = _resume_differences(asked, {**dataclasses.asdict(TrainConfig.from_saved(raw)),
                                             "model_kwargs": raw.get("model_kwargs", {})})
        if differ:
            raise MRSError(f"--resume continues {args.out} with the recipe it was started with; these settings differ "
                           f"from it: {'; '.join(differ)}. Drop them (--epochs may grow), or train afresh with "
                           f"--overwrite or another --out")
    cfg = TrainConfig(**settings)
    _, history = train(cfg, args.out, resume=args.resume, strategy=args.strategy, overwrite=args.overwrite)
    done = json.loads((Path(args.out) / "quantifier.json").read_text())["training"]
    if done.get("members"):
        print(f"wrote {args.out}/model.keras: {done['members']} networks of {', '.join(map(str, done['member_epochs']))}"
              f" epochs (validation loss {done['val_loss']:.4f}; each alone "
              f"{', '.join(f'{v:.4f}' for v in done['member_best_val_loss'])})")
    else:
        print(f"wrote {args.out}/model.keras after {done['epochs_run']} epochs "
              f"(best val_loss {logged_run(args.out)['best_val_loss']:.4f})")
    _card(args, history)


def priors(texts, basis) -> dict:
    """``--prior NAME=LOW:HIGH`` flags -> ``{name: (low, high)}``: mrs-tf's names (and aliases) made canonical; other
    names only with ``--basis`` (its own signals; checked against the basis when it is read)."""
    from mrs_tf.physics.metabolites import canonical_name

    out = {}
    for text in texts:
        name, _, bounds = text.partition("=")
        low, _, high = bounds.partition(":")
        try:
            lo, hi = float(low), float(high)
        except ValueError:
            raise MRSError(f"--prior {text}: give NAME=LOW:HIGH, e.g. PE=0.25:5 (mM)") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
            raise MRSError(f"--prior {text}: LOW and HIGH must be finite with 0 <= LOW < HIGH")
        try:
            name = canonical_name(name)
        except MRSError:
            if not basis:
                raise
        else:  # one of mrs-tf's metabolites: in mM, and none reaches 100 mM in a brain (a range in µM would)
            if hi > MAX_PRIOR_MM:
                raise MRSError(f"--prior {text}: {name} up to {hi:g} mM? Give the range in mM (no brain metabolite "
                               f"reaches {MAX_PRIOR_MM:g} mM; tumour lactate 10-20 mM, e.g. Lac=0:20)")
        out[name.strip()] = (lo, hi)
    return out


#: the highest training concentration ``--prior`` takes for one of mrs-tf's metabolites (mM)
MAX_PRIOR_MM = 100.0

#: TrainConfig fields that a command's flags can set and that a resumed run takes from its own saved recipe instead
_RECIPE = ("model", "model_kwargs", "batch_size", "steps_per_epoch", "learning_rate", "lr_schedule", "highpass_hz",
           "seed", "ensemble", "ppm_range", "uncertainty", "tfds_config", "basis_path", "protocol_from",
           "complete_basis", "omit", "synthesis")


def _resume_differences(settings: dict, saved: dict) -> list[str]:
    """The settings given to ``--resume`` that differ from the saved run's (each as ``name VALUE (the run's: V)``);
    epochs may differ (more train it further). A partial ``synthesis`` is compared field by field, priors by signal."""
    from mrs_tf.nn.config import priors_text, same_setting as same

    out = []
    for key in _RECIPE:
        if key not in settings or key not in saved:
            continue
        mine, theirs = settings[key], saved[key]
        if key in ("basis_path", "protocol_from") and mine and theirs:
            mine, theirs = str(Path(mine).resolve()), str(Path(theirs).resolve())
        if key == "synthesis":
            for field_name, value in mine.items():
                if field_name == "priors":
                    out += [f"--prior {k}={float(v[0]):g}:{float(v[1]):g} (the run's: "
                            f"{priors_text({k: theirs['priors'][k]}) if k in theirs.get('priors', {}) else 'none'})"
                            for k, v in value.items() if not same(v, theirs.get("priors", {}).get(k))]
                elif not same(value, theirs.get(field_name)):
                    out.append(f"synthesis {field_name} {value} (the run's: {theirs.get(field_name)})")
        elif not same(mine, theirs):
            out.append(f"{key} {mine} (the run's: {theirs})")
    return out


def _card(args, history) -> None:
    """metrics.json and model_card.md for a freshly trained folder."""
    from mrs_tf.reporting import model_card
    from mrs_tf.nn.train import TrainConfig, logged_run, training_basis, training_hardware

    cfg = TrainConfig.from_saved(json.loads((Path(args.out) / "train_config.json").read_text()))
    basis = training_basis(cfg)
    done = json.loads((Path(args.out) / "quantifier.json").read_text())["training"]
    best = logged_run(args.out)["best_val_loss"]  # log.csv spans every resumed part
    argv = [a for a in sys.argv[1:] if a != "--resume"]  # the card's command reproduces the whole run
    if done.get("members"):  # an ensemble: its own validation loss; epochs per member
        best = done["val_loss"]
    training = {"minutes": done["seconds"] / 60, "epochs": done["epochs_run"], "steps_per_epoch": cfg.steps_per_epoch,
                "batch_size": cfg.batch_size, "members": done.get("members", 1),
                "member_epochs": done.get("member_epochs"),
                "final_val_loss": best if best is not None else float(min(history["val_loss"])),
                "hardware": training_hardware(),
                "command": "mrs-tf " + " ".join(argv) if sys.argv[0].endswith("mrs-tf") else "mrs-tf train"}
    print(f"mrs-tf: testing on {args.test_size} fresh spectra for metrics.json and model_card.md ...",
          file=sys.stderr, flush=True)
    summary = model_card.measure(args.out, basis, cfg, args.test_size, training)
    problems = model_card.not_learned(summary)
    if problems:
        from mrs_tf.core.errors import TrainingError

        out = Path(args.out)
        for name in ("model.keras", "quantifier.json", "metrics.json", "best.keras"):
            if (out / name).exists():
                os.replace(out / name, out / f"rejected_{name}")
        raise TrainingError(f"the network did not learn ({'; '.join(problems)}); nothing was kept as a model in "
                            f"{out} (its files are renamed rejected_*). Check the basis (units, MM, reference), the "
                            f"protocol, or train longer")
    card = model_card.write(args.out)
    naa = summary["metrics"].get("NAA", {}).get("mape_pct")
    print(f"wrote {card}" + (f" (test NAA MAPE {naa:.1f} %)" if naa is not None else ""))


def _tune(args) -> None:
    from mrs_tf.nn.train import TrainConfig
    from mrs_tf.nn.tuning import tune

    cfg = TrainConfig(steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, val_size=args.val_size,
                      seed=args.seed)
    _, best = tune(args.out, args.algorithm, cfg, max_trials=args.max_trials, max_epochs=args.max_epochs,
                   resume=args.resume, overwrite=args.overwrite)
    print(f"best: {best.model} {json.dumps(best.model_kwargs)} learning rate {best.learning_rate:.2g}\n"
          f"train it: mrs-tf train --config {Path(args.out) / 'best_config.json'} --out MODEL_DIR")


def _evaluate(args) -> None:
    from mrs_tf.reporting import report
    from mrs_tf.quantify.quantifier import Quantifier

    out = args.out or (str(Path(args.report).with_suffix(".csv")) if args.report else None)
    if out is None:
        raise MRSError("give --report REPORT.html and/or --out METRICS.csv")
    refuse_existing(args, out, args.report)
    q = Quantifier.load(args.model)
    if args.data:
        basis, fids, truth = report.load_test_data(q, args.data, args.truth)
        what = f"data {' '.join(args.data)}"
    else:
        basis, fids, truth = report.test_set(q, args.n, args.snr, args.seed)
        what = f"{args.n} fresh spectra, SNR {args.snr[0]:g}-{args.snr[1]:g}, seed {args.seed}"
    comp = report.compare(q, basis, fids, truth, n_jobs=args.n_jobs, quest=not args.no_quest,
                          description=f"Model {args.model} ({q.protocol_text()}) on {what}.")
    comp.metrics.to_csv(out, overwrite=args.overwrite)
    for r in report.summary_rows(comp):
        if r["metabolite"] in ("NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins"):
            quest_part = f", QUEST {r['QUEST_mape_pct']:.2f} %" if "QUEST_mape_pct" in r else ""
            print(f"{r['metabolite']:8s} MAPE network {r['network_mape_pct']:.2f} %{quest_part}; "
                  f"network RMSE / CRLB {r['network_efficiency']:.2f}")
    print(f"wrote {out}")
    if args.report:
        report.write_report(comp, args.report, overwrite=args.overwrite)
        print(f"wrote {args.report}")


def _export(args) -> None:
    from mrs_tf.nn import export

    if args.format == "tflite":
        path = export.to_tflite(args.model, args.out, quantize=args.quantize, seed=args.seed, overwrite=args.overwrite)
    else:
        if args.quantize != "none":
            raise MRSError("--quantize applies to --format tflite only")
        path = export.to_saved_model(args.model, args.out, overwrite=args.overwrite)
    size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"wrote {path} ({size / 1024:.0f} KiB)")

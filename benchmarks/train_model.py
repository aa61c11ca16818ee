"""Train the model shipped in saved_models/press3t_te30 and measure it on a held-out synthetic test set.

    python benchmarks/train_model.py --out saved_models/press3t_te30 --minutes 40     # the shipped model
    python benchmarks/train_model.py --out /tmp/tiny --fast                           # CI: a few steps

Prints per-metabolite MAPE, MAE, bias, regression slope and sigma calibration on 2,048 test spectra (SNR 10-100,
training's nuisance ranges, the default healthy-brain concentration priors, seed fixed) and writes them to
OUT/metrics.json and OUT/model_card.md; prediction throughput is measured batched. Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=40.0, help="wall-clock training budget")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--model", default="seed_cnn")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--model-kwargs", default="{}", help="JSON keyword arguments of the model builder")
    parser.add_argument("--n-test", type=int, default=2048)
    parser.add_argument("--evaluate-only", action="store_true",
                        help="skip training: (re)calibrate sigma and measure the model already in --out")
    args = parser.parse_args()

    import keras

    from mrs_tf import model_card, simulate_basis
    from mrs_tf.nn.config import cosine_learning_rate
    from mrs_tf.train import TrainConfig, train

    class TimeBudget(keras.callbacks.Callback):
        """Stops after ``seconds`` of wall clock and anneals the learning rate over them (cosine, to 2 % of the
        start): a fixed-time budget gets the whole decay instead of plateau steps that come too early."""

        def __init__(self, seconds, lr0):
            super().__init__()
            self.seconds, self.lr0, self.start = seconds, lr0, time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            frac = min(1.0, (time.perf_counter() - self.start) / self.seconds)
            self.model.optimizer.learning_rate.assign(cosine_learning_rate(frac, 1, self.lr0))

        def on_epoch_end(self, epoch, logs=None):
            if time.perf_counter() - self.start > self.seconds:
                self.model.stop_training = True

    cfg = TrainConfig(model=args.model, batch_size=256, steps_per_epoch=100, epochs=400, learning_rate=1e-3,
                      patience=40, val_size=2048, model_kwargs=json.loads(args.model_kwargs))
    if args.fast:
        cfg = TrainConfig(model=args.model, batch_size=64, steps_per_epoch=5, epochs=2, val_size=256)
    basis = simulate_basis()
    if args.evaluate_only:
        import csv

        from mrs_tf.train import calibrate_sd

        cfg = TrainConfig.from_saved(json.load(open(os.path.join(args.out, "train_config.json"))))
        with open(os.path.join(args.out, "log.csv")) as fh:
            log = list(csv.DictReader(fh))
        history = {"loss": [float(r["loss"]) for r in log], "val_loss": [float(r["val_loss"]) for r in log]}
        train_s = json.load(open(os.path.join(args.out, "quantifier.json")))["training"]["seconds"]
        calibrate_sd(args.out, basis, cfg)
    else:
        t0 = time.perf_counter()
        _, history = train(cfg, args.out, resume=args.resume, verbose=2, overwrite=not args.resume,
                           callbacks_extra=[TimeBudget(args.minutes * 60, cfg.learning_rate)])
        train_s = time.perf_counter() - t0

    n_test = 256 if args.fast else args.n_test
    command = "python benchmarks/train_model.py " + " ".join(sys.argv[1:])
    if args.evaluate_only:  # the model was trained by an earlier run: keep its command
        command = f"python benchmarks/train_model.py --out {args.out} --minutes {args.minutes:g}, then {command}"
    training = {"minutes": train_s / 60, "epochs": len(history["loss"]), "steps_per_epoch": cfg.steps_per_epoch,
                "batch_size": cfg.batch_size, "final_val_loss": float(history["val_loss"][-1]),
                "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU", "command": command}
    # the test set: training's nuisance ranges, healthy-brain concentrations (not training's widened priors)
    summary = model_card.measure(args.out, basis, cfg, n_test, training)
    results, rate = summary["metrics"], summary["predict_spectra_per_s"]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores; training {train_s / 60:.1f} min, "
          f"{len(history['loss'])} epochs x {cfg.steps_per_epoch} steps x {cfg.batch_size} spectra; "
          f"prediction {rate:,.0f} spectra/s (batched, FFT + crop included)")
    print(f"{'':9s} {'MAPE %':>7s} {'MAE':>7s} {'bias':>7s} {'slope':>6s} {'in 1sd %':>8s}")
    for name, m in results.items():
        print(f"{name:9s} {m['mape_pct']:7.2f} {m['mae']:7.3f} {m['bias']:+7.3f} {m['slope']:6.3f} "
              f"{m.get('within_1sd_pct', float('nan')):8.1f}")
    path = os.path.join(args.out, "metrics.json")
    print(f"wrote {path}")
    if not args.fast:
        print(f"wrote {model_card.write(args.out)}")


if __name__ == "__main__":
    main()

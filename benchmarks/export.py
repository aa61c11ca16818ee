"""TFLite/LiteRT export of a quantifier: file sizes, single-spectrum latency and the accuracy cost of quantisation.

    python benchmarks/export.py --model saved_models/press3t_te30 --write   # also (re)writes model.tflite and
                                                                             # model_int8.tflite into the folder
    python benchmarks/export.py --model saved_models/press3t_te30 --fast    # CI: 256 spectra, 200 latency calls
    python benchmarks/export.py --model saved_models/press3t_short_te       # a protocol-general model: its grid
                                                                             # input, told TE 30 (default protocol)

For float32, float16, dynamic-range and int8 exports: the size of the .tflite file; the median latency of one
spectrum (batch 1, LiteRT interpreter, XNNPACK, one thread; the graph's input is the full spectrum, so the FFT is
not included); the largest relative difference to Keras; and the MAPE of the five headline signals on the
benchmark test set (SNR 10-100, healthy-brain priors, seed fixed) next to Keras's; and how much NAA moves when the
same spectra come at 1e-3 or 1e3 of their absolute scale (scanner files differ by orders of magnitude; the graphs
must be scale-free). Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HEADLINE = ("NAA", "Cr+PCr", "GPC+PCh", "Glu", "Ins")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="saved_models/press3t_te30")
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--write", action="store_true", help="put model.tflite and model_int8.tflite in --model")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    n, calls = (256, 200) if args.fast else (args.n, args.calls)

    from mrs_tf import export, simulate_basis, synthesize
    from mrs_tf.quantify import Quantifier
    from mrs_tf.train import TrainConfig

    q = Quantifier.load(args.model)
    cfg_path = Path(args.model) / "train_config.json"
    cfg = TrainConfig.from_saved(json.loads(cfg_path.read_text())) if cfg_path.exists() else TrainConfig()
    basis = simulate_basis()
    fids, truth = synthesize(basis, n, snr=(10, 100), seed=np.random.SeedSequence([cfg.seed, 2001]),
                             config=cfg.synthesis_config().with_(priors={}))
    te = 30.0 if q.general else None  # a protocol-general model is told the echo time (the default protocol's)
    ref = q.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=te)
    if q.general:  # its graph reads the ppm grid and the protocol vector
        from mrs_tf.nn.general import protocol_vector

        grid = q.inputs(fids, basis.dwell_s, basis.field_mhz, te)["spectrum"].astype(np.float32)
        vec = protocol_vector(basis.field_mhz, te).astype(np.float32)

        def one_input(i):
            return {"spectrum": grid[i][None], "protocol": vec}
    else:
        spectra = export.full_spectrum(fids)

        def one_input(i):
            return spectra[i][None]

    def mape(table, name):
        tr = sum(truth[p] for p in name.split("+"))
        return float(100 * np.mean(np.abs(table[name] - tr) / tr))

    rows = {"keras": {"size_kb": os.path.getsize(Path(args.model) / "model.keras") / 1024,
                      **{m: mape(ref, m) for m in HEADLINE}}}
    tmp = Path(tempfile.mkdtemp())
    for mode in ("none", "float16", "dynamic", "int8"):
        path = export.to_tflite(q, tmp / f"{mode}.tflite", quantize=mode)
        runner = export.LiteRTModel(path, num_threads=1)
        lite = Quantifier(None, q.meta, runner=runner)
        table = lite.quantify(fids, dwell_s=basis.dwell_s, field_mhz=basis.field_mhz, te_ms=te)
        rel = max(float(np.max(np.abs(table[m] - ref[m]) / np.abs(ref[m]))) for m in q.names)
        # scanner files come at any absolute scale (vendors differ by 1e6): the same spectra at 1e-3 and 1e3 of it
        scale_dev = max(float(np.max(np.abs(np.asarray(lite.quantify(fids * k, dwell_s=basis.dwell_s,
                                                                     field_mhz=basis.field_mhz, te_ms=te)["NAA"])
                                            / k - table["NAA"]) / np.abs(table["NAA"]))) for k in (1e-3, 1e3))
        runner.predict(one_input(0))
        times = []
        for i in range(calls):
            x = one_input(i % n)
            t0 = time.perf_counter()
            runner.predict(x)
            times.append(time.perf_counter() - t0)
        rows[mode] = {"size_kb": path.stat().st_size / 1024, "latency_ms": 1e3 * statistics.median(times),
                      "max_rel_diff": rel, "scale_dev": scale_dev, **{m: mape(table, m) for m in HEADLINE}}
        if args.write and mode in ("none", "int8"):
            shutil.copyfile(path, Path(args.model) / ("model.tflite" if mode == "none" else "model_int8.tflite"))
    print(f"{q.protocol_text()}; {n} test spectra (SNR 10-100), latency: median of {calls} single-spectrum calls, "
          f"LiteRT, 1 thread\n")
    print(f"{'':8s} {'size kB':>8s} {'ms/spec':>8s} {'max rel':>9s} {'scale':>9s} "
          + " ".join(f"{m:>8s}" for m in HEADLINE) + "   (MAPE %)")
    for mode, r in rows.items():
        print(f"{mode:8s} {r['size_kb']:8.0f} {r.get('latency_ms', float('nan')):8.3f} "
              f"{r.get('max_rel_diff', 0.0):9.2e} {r.get('scale_dev', 0.0):9.2e} "
              + " ".join(f"{r[m]:8.2f}" for m in HEADLINE))
    print("(max rel: largest relative difference to Keras over the amplitudes; scale: largest relative change of NAA "
          "when the same spectra come at 1e-3 or 1e3 of their scale)")
    worst = {mode: max(abs(rows[mode][m] - rows["keras"][m]) for m in HEADLINE) for mode in rows if mode != "keras"}
    print("\nlargest |MAPE - Keras MAPE| over the five (percentage points): "
          + ", ".join(f"{k} {v:.2f}" for k, v in worst.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"n": n, "calls": calls, "rows": rows, "worst_pp": worst}, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Physics-core figures: basis simulation time, synthesis throughput (numpy and tf.data), peak memory.

    python benchmarks/physics.py            # full: 20,000 spectra
    python benchmarks/physics.py --fast     # CI: 2,000 spectra

Prints measured figures; asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fast", action="store_true", help="small sizes (CI)")
    parser.add_argument("--n", type=int, default=None, help="spectra for the numpy throughput")
    args = parser.parse_args()
    n = args.n or (2000 if args.fast else 20000)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["MRS_TF_CACHE"] = tempfile.mkdtemp()  # time a real simulation, not the cache

    import numpy as np

    from mrs_tf import simulate_basis, synthesize

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    t0 = time.perf_counter()
    basis = simulate_basis()
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulate_basis()
    t_cached = time.perf_counter() - t0
    print(f"basis simulation, default protocol (PRESS 11+19 ms, 123.2 MHz, 2048 pts, 20 metabolites + MM): "
          f"{t_sim:.2f} s (cached reload {t_cached * 1e3:.1f} ms)")
    for sequence, kw in (("steam", dict(te_ms=20, tm_ms=10)), ("slaser", dict(te_ms=30)),
                         ("press", dict(field_mhz=297.2, bandwidth_hz=8000, te1_ms=11, te2_ms=19))):
        t0 = time.perf_counter()
        simulate_basis(sequence=sequence, **kw)
        print(f"basis simulation, {sequence} {kw}: {time.perf_counter() - t0:.2f} s")

    from mrs_tf import crlb

    fids64, truth64 = synthesize(basis, n=64, seed=2)
    t0 = time.perf_counter()
    crlb.from_truth(basis, truth64)
    print(f"crlb.from_truth, 64 spectra (default BLAS threads outside; one inside): {time.perf_counter() - t0:.2f} s")

    synthesize(basis, n=256, seed=0)  # warm-up
    for jobs in (1, 2):
        t0 = time.perf_counter()
        synthesize(basis, n=n, seed=1, n_jobs=jobs)
        dt = time.perf_counter() - t0
        print(f"numpy synthesis, {n} spectra x 2048 points, n_jobs={jobs}: {n / dt:,.0f} spectra/s")
    t0 = time.perf_counter()
    from mrs_tf.synth import SynthesisConfig

    synthesize(basis, n=n, seed=1, config=SynthesisConfig(metab_shift_hz=0.0, phase1_deg_per_ppm=(0, 0)))
    dt = time.perf_counter() - t0
    print(f"numpy synthesis without per-metabolite shifts and first-order phase: {n / dt:,.0f} spectra/s")

    import tensorflow as tf

    from mrs_tf.data import synthetic_dataset

    batches = max(4, n // 256 // 4)
    ds = synthetic_dataset(basis, batch_size=256, seed=0, n_batches=batches + 2)
    it = iter(ds)
    next(it), next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t0
    print(f"tf.data synthesis (batch 256, AUTOTUNE, tf {tf.__version__}): {batches * 256 / dt:,.0f} spectra/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process, TensorFlow included): {peak:,.0f} MiB")


if __name__ == "__main__":
    main()

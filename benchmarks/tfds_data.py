"""mrs_brain_sim figures: build examples/s, tf.data read examples/s, on-disk size per 10,000 examples.

    python benchmarks/tfds_data.py                    # press3t_te30_snr5-30 (12,000 examples)
    python benchmarks/tfds_data.py --config tiny      # CI
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="press3t_te30_snr5-30")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from mrs_tf.data import build, load

    data_dir = tempfile.mkdtemp()
    t0 = time.perf_counter()
    builder = build(args.config, data_dir)
    t_build = time.perf_counter() - t0
    n = sum(s.num_examples for s in builder.info.splits.values())
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(builder.data_dir) for f in fs)
    print(f"mrs_brain_sim/{args.config}: {n} examples built in {t_build:.1f} s = {n / t_build:,.0f} examples/s")
    print(f"on disk: {size / 2**20:.1f} MiB = {size / n * 1e4 / 2**20:.0f} MiB per 10,000 examples")
    ds = load(args.config, "train", data_dir, as_supervised=True).batch(256).prefetch(tf.data.AUTOTUNE)
    for _ in ds.take(1):
        pass
    t0 = time.perf_counter()
    count = sum(int(x.shape[0]) for x, _ in ds)
    dt = time.perf_counter() - t0
    print(f"reading train (spectrum, concentrations) through tf.data, batch 256: {count / dt:,.0f} examples/s")


if __name__ == "__main__":
    main()

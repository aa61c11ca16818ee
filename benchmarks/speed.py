"""Speed of the network and of QUEST on this machine, measured in one run.

    python benchmarks/speed.py            # network on 20,000 spectra, QUEST on 100
    python benchmarks/speed.py --fast     # 2,000 and 10 (CI)

Network: spectra/s through Quantifier.quantify (FFT, crop and table included) and through the Keras model alone
(a compiled graph on pre-cropped batches), batch 4,096. QUEST: wall seconds per spectrum with 2 worker processes and
the median single-fit time. Prints the ratio. Asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="saved_models/press3t_te30")
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args()
    n_net, n_quest = (2000, 10) if args.fast else (20000, 100)

    from mrs_tf import quest, simulate_basis, synthesize
    from mrs_tf.preprocess import cropped_spectrum
    from mrs_tf.quantify import Quantifier

    q = Quantifier.load(args.model)
    basis = simulate_basis()
    fids, _ = synthesize(basis, 2000, snr=(10, 100), seed=11)
    x = np.resize(fids, (n_net, fids.shape[1]))
    q.quantify(x[:4096], basis.dwell_s, basis.field_mhz)
    t0 = time.perf_counter()
    q.quantify(x, basis.dwell_s, basis.field_mhz)
    full = n_net / (time.perf_counter() - t0)
    crop = cropped_spectrum(x.astype(np.complex64), basis.dwell_s, basis.field_mhz)
    t0 = time.perf_counter()
    for i in range(0, n_net, 4096):
        q._infer(crop[i:i + 4096])
    model_only = n_net / (time.perf_counter() - t0)
    table = quest.fit(fids[:n_quest], basis, n_jobs=2, progress=False)
    t0 = time.perf_counter()
    quest.fit(fids[:n_quest], basis, n_jobs=2, progress=False)
    wall = (time.perf_counter() - t0) / n_quest
    single = float(np.median(table["seconds"]))
    print(f"network ({q.meta.get('model')}): {full:,.0f} spectra/s through Quantifier.quantify "
          f"({n_net:,} spectra, batch 4,096, FFT + crop + table), {model_only:,.0f} spectra/s model alone")
    print(f"QUEST: {wall:.3f} s per spectrum wall with 2 processes ({n_quest} spectra), median fit {single:.3f} s "
          f"on one core")
    print(f"ratio: the network is {wall * full:,.0f}x faster per spectrum (wall, both using the 2 cores)")


if __name__ == "__main__":
    main()

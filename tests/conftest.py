import os

import numpy as np
import pytest

# keep test caches out of the user's home and make TF quiet
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    os.environ["MRS_TF_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def basis():
    """The default protocol's basis (20 metabolites + MM), simulated once per session."""
    from mrs_tf import simulate_basis

    return simulate_basis()


def peak_ppm(fid, dwell, field, lw_hz=1.0, fill=8, ref=4.65, window=None):
    """ppm and height of the tallest real peak (zero-filled, Lorentzian-broadened)."""
    n = len(fid)
    t = np.arange(n) * dwell
    spec = np.fft.fftshift(np.fft.fft(fid * np.exp(-np.pi * lw_hz * t), fill * n))
    ppm = ref - np.fft.fftshift(np.fft.fftfreq(fill * n, dwell)) / field
    sel = np.ones(len(ppm), bool) if window is None else (ppm > window[0]) & (ppm < window[1])
    k = np.argmax(np.where(sel, spec.real, -np.inf))
    return ppm[k], spec.real[k]

"""FIDs stored with the first point halved (the DFT's trapezoid weight): found and restored by the readers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mrs_tf
from mrs_tf.formats.first_point import first_point_state, restore_halved_first_point

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "osprey"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason=f"reference data not found at {SHARED}")


def _spectra(n=40, snr=(300, 1000), seed=4):
    basis = mrs_tf.simulate_basis()
    fids, _ = mrs_tf.synthesize(basis, n, snr=snr, seed=seed)
    return basis, fids


def test_a_halved_first_point_is_found_and_doubled_back_and_an_intact_one_left_alone():
    basis, fids = _spectra()
    assert first_point_state(basis["NAA"]) == "intact"  # mrs-tf's simulation: fid[0] is the signal at t = 0
    states = [first_point_state(f) for f in fids]
    assert "halved" not in states and states.count("intact") >= 15, states  # 23 of 40 decided (the rest: unknown)
    half = fids.copy()
    half[:, 0] *= 0.5
    found = [first_point_state(f) for f in half]
    assert "intact" not in found and found.count("halved") >= 24, found  # 32 of 40
    # one decision for a file, on the sum of its rows: every row restored exactly, the rest untouched
    restored, done = restore_halved_first_point(half)
    assert done
    np.testing.assert_allclose(restored, fids, rtol=1e-12, atol=0)
    same, done = restore_halved_first_point(fids)
    assert not done and same is fids
    # what the halving does to a spectrum: a flat offset of -fid[0]/2 in every bin
    offset = np.fft.fft(half[0]) - np.fft.fft(fids[0])
    np.testing.assert_allclose(offset, -fids[0, 0] / 2, rtol=1e-5)  # single precision
    # basis signals (noise-free) are judged row by row
    halved_basis = basis.fids.copy()
    halved_basis[:, 0] *= 0.5
    back, done = restore_halved_first_point(halved_basis, per_row=True)
    assert done and np.allclose(back, basis.fids)
    assert not restore_halved_first_point(basis.fids, per_row=True)[1]


def test_noise_alone_is_never_called_halved():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(50, 2048)) + 1j * rng.normal(size=(50, 2048))
    assert {first_point_state(f) for f in noise} == {"unknown"}
    assert first_point_state(np.zeros(2048)) == "unknown" and first_point_state(np.ones(100)) == "unknown"


@needs_shared
def test_the_osprey_basis_and_the_philips_scans_are_restored():
    from mrs_tf.io import read_data
    from mrs_tf.formats.first_point import FIRST_POINT_RESTORED

    path = SHARED / "basis" / "3T_PRESS_Philips_35ms_noMM.BASIS"
    stored = mrs_tf.BasisSet.load(path, restore_first_point=False)
    basis = mrs_tf.BasisSet.load(path)
    assert basis.protocol["first_point"] == FIRST_POINT_RESTORED and "first_point" not in stored.protocol
    np.testing.assert_allclose(basis.fids[:, 0], 2 * stored.fids[:, 0])
    np.testing.assert_array_equal(basis.fids[:, 1:], stored.fids[:, 1:])
    assert {first_point_state(f) for f in stored.fids} == {"halved"}
    assert "halved" not in {first_point_state(f) for f in basis.fids}
    assert [first_point_state(f) for f in basis.fids].count("intact") >= len(basis.names) // 2
    # resampled on load: restored before the resampling (a halved point would leak into every resampled point)
    small = mrs_tf.BasisSet.load(path, n_points=2048, dwell_s=1 / 2000)
    assert first_point_state(small["NAA"]) == "intact"
    scan = SHARED / "invivo_philips_press35" / "sub-02_PRESS_35_act.sdat"
    as_stored = read_data(scan, restore_first_point=False)
    d = read_data(scan)
    assert d["preprocessing"]["first_point_restored"] and not as_stored["preprocessing"].get("first_point_restored")
    np.testing.assert_allclose(d["fids"][:, 0], 2 * as_stored["fids"][:, 0])
    water = read_data(scan.with_name("sub-02_PRESS_35_ref.sdat"))
    assert water["preprocessing"]["first_point_restored"]

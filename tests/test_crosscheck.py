"""The network's numbers against a fit of the same spectra (mrs_tf.quantify.crosscheck): tables in, verdicts out."""
from __future__ import annotations

import numpy as np

from mrs_tf.core.table import ResultTable
from mrs_tf.quantify.crosscheck import SAME_BASIS_TOLERANCE, TOLERANCE, cross_check, disagreements


def _table(ins_ratio, ins_rel_sd=0.02, status=None, sd_suffix="_sd"):
    n = len(ins_ratio)
    t = ResultTable({"Cr+PCr": np.full(n, 8.0), "Cr+PCr" + sd_suffix: np.full(n, 0.08),
                     "Ins": 8.0 * np.asarray(ins_ratio), "Ins" + sd_suffix: 8.0 * np.asarray(ins_ratio) * ins_rel_sd,
                     "Ins_over_tCr": np.asarray(ins_ratio, float),
                     "NAA+NAAG_over_tCr": np.full(n, 1.3), "NAA+NAAG": np.full(n, 10.4),
                     "NAA+NAAG" + sd_suffix: np.full(n, 0.1)})
    if status is not None:
        t["status"] = np.asarray(status, dtype=object)
        t["message"] = np.full(n, "", dtype=object)
    return t


def test_a_ratio_beyond_the_tolerance_is_flagged_and_named():
    net = _table([0.60, 0.80, 0.60], status=["ok", "ok", "offset_at_search_limit"])
    fit = _table([0.97, 0.84, 0.97], sd_suffix="_crlb", status=["ok", "ok", "ok"])
    out = cross_check(net, fit)
    assert list(out["status"]) == ["fit_disagrees", "ok", "offset_at_search_limit"]
    assert "Ins/tCr 0.6 (fit 0.97, -38 %)" in out["message"][0] and "NAA" not in out["message"][0]
    assert out["message"][1] == ""
    assert "Ins/tCr" in out["message"][2]  # an earlier flag is kept, the disagreement added to its message
    np.testing.assert_allclose(out["crosscheck_max_diff_pct"], [100 * (0.60 / 0.97 - 1) * -1, 100 * 0.04 / 0.84, 38.1],
                               atol=0.1)
    assert TOLERANCE["Ins"] == 0.20
    # the fit's own numbers beside the network's (the nearer to LCModel on real scans)
    np.testing.assert_allclose(out["crosscheck_fit_Ins_over_tCr"], [0.97, 0.84, 0.97])
    np.testing.assert_allclose(out["crosscheck_fit_Ins_over_tCr_rel_crlb"], np.hypot(0.02, 0.01), rtol=1e-6)


def test_noise_alone_does_not_flag_a_low_snr_spectrum():
    # 40 % apart, but each estimate uncertain by 25 %: within 3 sigma of the two combined
    net = _table([0.60], ins_rel_sd=0.25, status=["ok"])
    fit = _table([1.0], ins_rel_sd=0.25, sd_suffix="_crlb", status=["ok"])
    worst, flagged = disagreements(net, fit)
    assert worst[0] > 0.39 and flagged == [[]]
    assert cross_check(net, fit)["status"][0] == "ok"


def test_a_failed_fit_checks_nothing():
    net = _table([0.60], status=["ok"])
    fit = _table([0.97], sd_suffix="_crlb", status=["poor_fit"])
    out = cross_check(net, fit)
    assert out["status"][0] == "ok" and out["crosscheck_fit_status"][0] == "poor_fit"
    assert np.isnan(out["crosscheck_max_diff_pct"][0]) and np.isnan(out["crosscheck_fit_Ins_over_tCr"][0])


def test_the_message_names_the_users_basis_and_what_to_trust():
    net = _table([0.60], status=["ok"])
    fit = _table([0.97], sd_suffix="_crlb", status=["ok"])
    out = cross_check(net, fit, basis_label="my.BASIS")
    assert out["status"][0] == "fit_disagrees" and "with my.BASIS" in out["message"][0]
    assert "the fit is the better estimate" in out["message"][0]


def test_a_fit_with_the_networks_own_basis_checks_it_closer():
    """A network of ``train --basis`` is cross-checked by a fit with its own training basis: no basis mismatch between
    the two, so the tolerance is tighter. Its tCho/tCr 0.207 on a Philips volunteer (fit 0.173, LCModel 0.163) was 19.7 %
    above the fit, inside the 20 % for mrs-tf's basis, and passed as ``ok``."""
    net = _table([0.97 * 1.18], status=["ok"])
    fit = _table([0.97], sd_suffix="_crlb", status=["ok"])
    assert cross_check(net, fit, basis_label="the network's training basis (b.BASIS)")["status"][0] == "ok"
    out = cross_check(net, fit, basis_label="the network's training basis (b.BASIS)", own_basis=True)
    assert out["status"][0] == "fit_disagrees" and "Ins/tCr 1.14 (fit 0.97, +18 %)" in out["message"][0]
    assert all(SAME_BASIS_TOLERANCE[k] < TOLERANCE[k] for k in TOLERANCE)
    # noise still counts: 18 % apart at 10 % uncertainty each is within 2 sigma of the two
    noisy = _table([0.97 * 1.18], ins_rel_sd=0.10, status=["ok"])
    assert cross_check(noisy, _table([0.97], ins_rel_sd=0.10, sd_suffix="_crlb", status=["ok"]),
                       own_basis=True)["status"][0] == "ok"

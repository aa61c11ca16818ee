"""mrs_tf.evaluate on inputs with known answers."""
import numpy as np
import pytest

from mrs_tf.errors import MRSError
from mrs_tf.evaluate import evaluate, metrics


def _truth(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return {"NAA": rng.uniform(7.5, 17, n), "NAAG": rng.uniform(0.5, 2.5, n), "Cr": rng.uniform(3, 7, n),
            "PCr": rng.uniform(2.5, 5.5, n), "snr": rng.uniform(10, 100, n), "lw_lorentz_hz": rng.uniform(1, 8, n)}


def test_perfect_constant_and_gaussian_estimators():
    truth = _truth()
    perfect = metrics(truth["NAA"], truth["NAA"])
    assert perfect["mape_pct"] == 0 and perfect["rmse"] == 0 and perfect["bias"] == 0
    assert perfect["slope"] == pytest.approx(1) and perfect["intercept"] == pytest.approx(0, abs=1e-9)
    assert perfect["r2"] == pytest.approx(1)
    constant = metrics(np.full(4000, 12.25), truth["NAA"])
    assert constant["slope"] == pytest.approx(0, abs=1e-9) and constant["r2"] == pytest.approx(0, abs=1e-9)
    # mean |x - U(7.5, 17)| / x for x = 12.25 is known in closed form
    x = truth["NAA"]
    assert constant["mape_pct"] == pytest.approx(100 * np.mean(np.abs(12.25 - x) / x))
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.2, 1.0, 4000)
    noisy = truth["NAA"] + sigma * rng.standard_normal(4000)
    m = metrics(noisy, truth["NAA"], sd=sigma, crlb=sigma)
    assert m["within_1sd_pct"] == pytest.approx(68.3, abs=2.5) and m["within_2sd_pct"] == pytest.approx(95.4, abs=1.5)
    assert m["efficiency"] == pytest.approx(np.sqrt(np.mean(sigma ** 2)) / np.mean(sigma), rel=0.05)
    assert m["slope"] == pytest.approx(1, abs=0.03) and abs(m["bias"]) < 0.05
    over = metrics(noisy, truth["NAA"], sd=2 * sigma)
    assert over["within_1sd_pct"] == pytest.approx(95.4, abs=1.5)  # sigma too large -> over-covered


def test_evaluate_tidy_table_bands_combinations_and_ratios():
    truth = _truth()
    exact = {k: truth[k] for k in ("NAA", "NAAG", "Cr", "PCr")}
    exact["NAA+NAAG"] = truth["NAA"] + truth["NAAG"]
    exact["Cr+PCr"] = truth["Cr"] + truth["PCr"]
    exact["NAA_over_tCr"] = truth["NAA"] / exact["Cr+PCr"]
    shrunk = {k: 0.5 * v + 0.5 * np.mean(v) for k, v in exact.items()}
    table = evaluate(truth, {"exact": exact, "shrunk": shrunk}, snr_bands=((10, 50), (50, 100)))
    assert set(table["metabolite"]) == {"NAA", "NAAG", "Cr", "PCr", "NAA+NAAG", "Cr+PCr"}
    assert set(table["snr_band"]) == {"all", "10-50", "50-100"}
    row = [table.row(i) for i in range(table.n_rows) if table["method"][i] == "shrunk"
           and table["metabolite"][i] == "NAA+NAAG" and table["snr_band"][i] == "all"
           and table["quantity"][i] == "amplitude"][0]
    assert row["slope"] == pytest.approx(0.5) and row["n"] == 4000
    bands = [table.row(i) for i in range(table.n_rows) if table["method"][i] == "exact"
             and table["metabolite"][i] == "NAA" and table["quantity"][i] == "amplitude"]
    assert sum(r["n"] for r in bands if r["snr_band"] != "all") == 4000
    ratio = [table.row(i) for i in range(table.n_rows) if table["quantity"][i] == "ratio_tCr"
             and table["method"][i] == "exact" and table["snr_band"][i] == "all"]
    assert len(ratio) == 1 and ratio[0]["metabolite"] == "NAA" and ratio[0]["mape_pct"] == pytest.approx(0, abs=1e-9)
    with pytest.raises(MRSError, match="have \\[10\\] rows; the truth has 4000"):
        evaluate(truth, {"short": {k: v[:10] for k, v in exact.items()}})
    with pytest.raises(MRSError, match="no column 'GABA'"):
        evaluate(truth, {"exact": exact}, names=["GABA"])

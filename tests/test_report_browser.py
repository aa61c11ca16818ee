"""A single-voxel report as a person sees it: headless Chromium renders the page (the plotly figure drawn by its
JavaScript), takes a screenshot, and dumps the DOM it ended with (issue 17). CI installs Chromium (.ci/run)."""
import os
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from mrs_tf.cli import main

MODEL = "saved_models/press3t_te30"


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("no Chromium on the CI machine: .ci/run installs it from Debian's packages")
    pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")


def _chromium(*args, timeout=120) -> subprocess.CompletedProcess:
    cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--hide-scrollbars", "--virtual-time-budget=15000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


class _Page(HTMLParser):
    """What the rendered page holds: plotly's drawn line paths, the concentration table's rows, the headings."""

    def __init__(self):
        super().__init__()
        self.lines, self.rows, self.headings, self.warning_box = [], [], [], False
        self._in_table = self._in_body = self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "path" and "js-line" in (a.get("class") or ""):
            self.lines.append(a.get("d") or "")
        if tag == "table" and a.get("id") == "concentrations":
            self._in_table = True
        if self._in_table and tag == "tbody":
            self._in_body = True
        if self._in_body and tag == "tr":
            self.rows.append([])
        if tag == "h2":
            self._in_h2 = True
        if tag == "div" and a.get("class") == "warnings":
            self.warning_box = True

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = self._in_body = False
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_body and self.rows and data.strip():
            self.rows[-1].append(data.strip())
        if self._in_h2:
            self.headings.append(data.strip())


@pytest.fixture(scope="module")
def single_voxel_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    assert main(["synth", "--n", "1", "--snr", "40", "--seed", "4", "--out", str(tmp / "one.nii.gz")]) == 0
    assert main(["quantify", str(tmp / "one.nii.gz"), "--model", MODEL, "--out", str(tmp / "one.csv"),
                 "--report", str(tmp / "one.html")]) == 0
    return tmp


def test_single_voxel_report_renders_with_its_fit_and_one_row_per_metabolite(single_voxel_report):
    import mrs_tf
    from mrs_tf.crlb import combination_rows
    from mrs_tf.table import ResultTable

    html_path = single_voxel_report / "one.html"
    shot = single_voxel_report / "one.png"
    run = _chromium(f"--screenshot={shot}", "--window-size=1280,1700", html_path.as_uri())
    assert shot.is_file(), run.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), float)
    assert pixels.shape == (1700, 1280)
    assert (pixels < 200).mean() > 0.01, "the screenshot is (nearly) blank"

    dom = _chromium("--dump-dom", html_path.as_uri())
    page = _Page()
    page.feed(dom.stdout)
    # the fit figure was drawn by plotly.js: several traces, each a path through hundreds of points
    drawn = [d for d in page.lines if d.count("L") >= 100]
    assert len(drawn) >= 4, f"plotly drew {len(page.lines)} line paths, {len(drawn)} with data"
    # the order a reader meets: warnings, the run, the figure, then the table
    assert page.headings[0] == "Warnings"
    assert page.headings.index("Concentrations") > 1 and "data, network reconstruction" in page.headings[2]
    # one row per metabolite (and combination) of the model, with the table's values
    q = mrs_tf.Quantifier.read_meta(MODEL)
    expected = list(q.names) + [c for c in combination_rows(q.names) if c not in q.names]
    assert [r[0] for r in page.rows] == expected
    table = ResultTable.read_csv(single_voxel_report / "one.csv")
    naa = next(r for r in page.rows if r[0] == "NAA")
    assert float(naa[1]) == pytest.approx(float(table["NAA"][0]), rel=1e-3)
    assert float(naa[-1]) == pytest.approx(float(table["NAA_over_tCr"][0]), abs=1e-3)


def test_fit_report_of_a_real_scan_puts_its_fit_first_and_one_row_per_basis_signal(tmp_path):
    """``mrs-tf fit --report`` on a Philips in vivo scan (Osprey's example data): the report renders with the fit
    drawn, one row per basis signal with its CRLB %, and mM from the water reference."""
    from pathlib import Path

    from mrs_tf.table import ResultTable

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "osprey"
    basis = shared / "basis" / "3T_PRESS_Philips_35ms_noMM.BASIS"
    scans = shared / "invivo_philips_press35"
    if not basis.exists():
        pytest.skip(f"reference data not found at {shared}")
    assert main(["fit", "--basis", str(basis), str(scans / "sub-01_PRESS_35_act.sdat"), "--water",
                 str(scans / "sub-01_PRESS_35_ref.sdat"), "--out", str(tmp_path / "fit.csv"),
                 "--report", str(tmp_path / "fit.html"), "--n-jobs", "1"]) == 0
    table = ResultTable.read_csv(tmp_path / "fit.csv")
    page = _Page()
    page.feed(_chromium("--dump-dom", (tmp_path / "fit.html").as_uri()).stdout)
    points = [d.count("L") for d in page.lines]  # plotly thins straight runs: smooth traces have fewer points
    assert sum(n >= 200 for n in points) >= 3, points  # data, fit, residual
    assert sum(n >= 40 for n in points) >= 10, points  # and the background and the larger metabolites
    assert page.headings[0] == "Warnings" and page.headings.index("Concentrations") == len(page.headings) - 1
    rows = {r[0]: r for r in page.rows}
    assert "NAA" in rows and "Cr+PCr" in rows and "NAA+NAAG" in rows
    naa = rows["NAA+NAAG"]
    assert float(naa[1]) == pytest.approx(float(table["NAA+NAAG"][0]), rel=1e-3)
    # the columns: concentration, CRLB, CRLB %, /tCr, mM (water-scaled), in that order
    assert float(naa[3]) == pytest.approx(float(table["NAA+NAAG_crlb_pct"][0]), abs=0.6)
    assert float(naa[4]) == pytest.approx(float(table["NAA+NAAG_over_tCr"][0]), abs=1e-3)
    assert float(naa[5]) == pytest.approx(float(table["NAA+NAAG_mM"][0]), abs=0.01)
    assert 6 < float(naa[5]) < 16  # tNAA of a healthy adult brain, mM

"""The README and the manual read as a newcomer runs them: shell blocks must not write the same output twice (the
second command would stop on "already exists; refusing to overwrite"), and the README's Python block runs."""
import re
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README] + sorted((ROOT / "docs").glob("*.md"))


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```(?:{language})\n(.*?)```", path.read_text(), flags=re.S)


def _shell_lines(pages=PAGES):
    for page in pages:
        for block in _blocks(page, "bash|sh|shell"):
            for line in block.splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("mrs-tf "):
                    yield line


def test_readme_commands_write_distinct_outputs():
    outputs = Counter()
    for line in _shell_lines():
        if " --overwrite" in line:
            continue
        for flag, value in re.findall(r"--(out|report|plot|maps)\s+(\S+)", line):
            outputs[value] += 1
    assert outputs, "no mrs-tf commands found in the README's and docs' shell blocks"
    twice = {name: n for name, n in outputs.items() if n > 1}
    assert not twice, f"README and docs commands write these more than once: {twice}"


def test_readme_front_page_is_short_and_keeps_the_test_command():
    """The README is a front page (what, a figure, set-up, the three common tasks, links); the manual is docs/."""
    text = README.read_text()
    assert len(text) < 6000
    assert 'python -m pytest -q -m "not slow"' in text
    assert (ROOT / "docs" / "img" / "report.png").is_file() and "docs/img/report.png" in text
    for link in re.findall(r"\]\((docs/[^)]+)\)", text):
        assert (ROOT / link).is_file(), link


def test_readme_python_block_runs(tmp_path, monkeypatch):
    """The README's Python example, as written: basis, spectra, the shipped network and QUEST on the same spectra."""
    (block,) = _blocks(README, "python")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    network, quest = (np.asarray(v, float) for v in eval(block.strip().splitlines()[-1], scope))
    assert network.shape == (5,) and quest.shape == (5,)
    # both estimate tNAA/tCr of the same spectra: the healthy-brain range, and close to each other
    assert np.all((network > 1.0) & (network < 2.2)) and np.all(np.abs(network - quest) < 0.35)


def test_readme_shell_blocks_run_in_order(tmp_path):
    """Every shell block of the README, in order, in a fresh folder, after the set-up block (the test command itself
    is not re-run): each command must exit 0. The folder sits beside a ``shared`` link, so the README's
    ``../shared/...`` paths resolve as they do from the checkout."""
    import os
    import subprocess
    import sys

    blocks = _blocks(README, "bash|sh|shell")
    assert "pip install" in blocks[0]  # the set-up, done already
    runnable = [b for b in blocks[1:] if "pytest" not in b]
    assert len(runnable) >= 2
    shared = ROOT.parent / "shared"
    if shared.exists():
        (tmp_path / "shared").symlink_to(shared)
    elif "../shared" in "".join(runnable):
        import pytest

        pytest.skip(f"the README's example data are not at {shared}")
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    script = "set -euo pipefail\n" + "\n".join(runnable)
    run = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"README shell blocks failed ({run.returncode}):\n{run.stderr[-3000:]}"
    written = sorted(p.name for p in work.iterdir())
    assert {"demo.nii.gz", "demo.csv", "demo_report.html", "philips.csv", "philips_fit.html"} <= set(written), written

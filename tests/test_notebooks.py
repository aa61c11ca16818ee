"""Every teaching notebook runs top to bottom in FAST mode (its own assertions check meaningful numbers), its
plotly figures carry the MIME bundle JupyterLab renders plus the offline HTML copy, and git holds no outputs."""
import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_seven_notebooks_without_outputs():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]
    for path in NOTEBOOKS:
        book = json.loads(path.read_text())
        code = [c for c in book["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), f"{path.name} has outputs"
        assert any("parameters" in c["metadata"].get("tags", []) and "FAST" in "".join(c["source"]) for c in code)
        assert "colab.research.google.com" in "".join(book["cells"][0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path):
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = "FAST = True"
    client = nbclient.NotebookClient(book, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on any error, including a failed assert
    mimes = {key for cell in book.cells if cell.cell_type == "code" for out in cell.outputs
             for key in out.get("data", {})}
    if any(".show()" in cell.source for cell in book.cells if cell.cell_type == "code"):
        assert "application/vnd.plotly.v1+json" in mimes and "text/html" in mimes, mimes


def _setup_cell(path: Path) -> str:
    book = json.loads(path.read_text())
    (cell,) = [c for c in book["cells"] if c["cell_type"] == "code" and "IN_COLAB" in "".join(c["source"])]
    return "".join(cell["source"])


def test_colab_setup_cell_installs_from_a_zip_or_a_git_address(tmp_path, monkeypatch):
    """The notebooks' first code cell, as Colab runs it (``google.colab`` imported), from an uploaded .zip of the
    repository and from a git address: mrs-tf is installed editable (so saved_models/ comes along) and the notebook
    continues in the checkout's notebooks/ folder. pip runs as a dry run here (CI's environment has mrs-tf)."""
    import subprocess
    import sys
    import types

    cells = {_setup_cell(p) for p in NOTEBOOKS}
    assert len(cells) == 1, "the notebooks' set-up cells differ"
    cell = cells.pop()
    compile(cell, "setup cell", "exec")  # plain Python, no shell magics (!pip, %cd)
    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    commands, real_check_call = [], subprocess.check_call

    def run(cmd, **kwargs):
        commands.append(cmd)
        if cmd[1:4] == ["-m", "pip", "install"]:
            cmd = cmd[:4] + ["--dry-run", "--no-deps", "--no-build-isolation"] + cmd[4:]
        return real_check_call(cmd, stdout=subprocess.DEVNULL, **kwargs)

    monkeypatch.setattr(subprocess, "check_call", run)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    archive = tmp_path / "mrs-tf.zip"
    subprocess.run(["git", "-C", str(repo), "archive", "--format=zip", "--prefix=mrs-tf-main/", "-o", str(archive),
                    "HEAD"], check=True)
    for source, dest in ((str(archive), tmp_path / "from_zip"), (repo.as_uri(), tmp_path / "from_git")):
        monkeypatch.chdir(tmp_path)
        scope: dict = {}
        exec(cell.replace('"/content/mrs-tf.zip"', repr(source)).replace('"/content/mrs-tf"', repr(str(dest))), scope)
        assert scope["IN_COLAB"]
        folder = Path.cwd().parent
        assert Path.cwd().name == "notebooks" and (folder / "saved_models" / "press3t_te30" / "model.keras").is_file()
        assert commands[-1][-2:] == ["-e", str(folder)]
    assert commands[-2][:2] == ["git", "clone"]
    install = scope["install_mrs_tf"]
    with pytest.raises(FileNotFoundError, match="upload a .zip"):
        install(str(tmp_path / "missing.zip"), str(tmp_path / "x"))
    with pytest.raises(FileNotFoundError, match="no pyproject.toml"):
        install(str(tmp_path), str(tmp_path / "y"))
    with pytest.raises(ValueError, match="git address"):
        install("mrs-tf please", str(tmp_path / "z"))

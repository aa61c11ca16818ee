"""The shape of the house: mrs_tf's stages are subpackages that import only from the stages before them, and no
module imports itself back through others (issue 17). Walks every import statement with ``ast``, the ones inside
functions too (a lazy import is still a dependency)."""
import ast
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "mrs_tf"

#: the pipeline, first to last: a stage may import from itself and the stages before it
STAGES = ("core", "formats", "physics", "preprocess", "io", "fitting", "nn", "quantify", "reporting", "cli")


def _modules() -> dict:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: pathlib.Path, mods: dict) -> list[tuple[str, int]]:
    """(imported mrs_tf module, line) for every import in the file; ``from pkg import sub`` counts as ``pkg.sub``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "mrs_tf"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "mrs_tf":
                continue
            for a in node.names:
                sub = f"{module}.{a.name}"
                out.append((sub if sub in mods else module, node.lineno))
    return out


def _graph() -> dict:
    mods = _modules()
    return {name: [(t, line) for t, line in _imports(name, path, mods) if t != name]
            for name, path in mods.items()}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_every_module_belongs_to_a_stage():
    loose = [m for m in _modules() if m not in ("mrs_tf", "mrs_tf._aliases") and _stage(m) is None]
    assert not loose, f"modules outside the stage subpackages {STAGES}: {loose}"


def test_no_upward_imports_between_stages():
    upward = []
    for module, targets in _graph().items():
        here = _stage(module)
        for target, line in targets:
            there = _stage(target)
            if module in ("mrs_tf", "mrs_tf._aliases"):
                continue  # the package facade re-exports the public API
            if there is None:
                upward.append(f"{module}:{line} imports the package facade {target}")
            elif here is not None and STAGES.index(there) > STAGES.index(here):
                upward.append(f"{module}:{line} ({here}) imports {target} ({there}), a later stage")
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    graph = {m: sorted({t for t, _ in targets}) for m, targets in _graph().items()}
    state, circles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_walker_sees_a_planted_upward_import(tmp_path):
    """The check itself can fail: a fitting module that imports reporting is reported."""
    planted = tmp_path / "mrs_tf" / "fitting" / "bad.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("def f():\n    from mrs_tf.reporting import plots\n    from ..nn.train import x\n")
    mods = {"mrs_tf.fitting.bad": planted, "mrs_tf.reporting.plots": planted, "mrs_tf.nn.train": planted}
    targets = [t for t, _ in _imports("mrs_tf.fitting.bad", planted, mods)]
    assert targets == ["mrs_tf.reporting.plots", "mrs_tf.nn.train"]
    assert [STAGES.index(_stage(t)) > STAGES.index("fitting") for t in targets] == [True, True]


@pytest.mark.parametrize("old, new", [("mrs_tf.quest", "mrs_tf.fitting.quest"), ("mrs_tf.crlb", "mrs_tf.fitting.crlb"),
                                      ("mrs_tf.basis", "mrs_tf.physics.basis"), ("mrs_tf.train", "mrs_tf.nn.train"),
                                      ("mrs_tf.io.nifti", "mrs_tf.formats.nifti"),
                                      ("mrs_tf.errors", "mrs_tf.core.errors")])
def test_documented_module_paths_still_import(old, new):
    """The paths from before the stages are the same module objects (so patching one patches the other)."""
    assert importlib.import_module(old) is importlib.import_module(new)
    import mrs_tf

    assert getattr(mrs_tf, old.split(".")[1]) is importlib.import_module(old.rsplit(".", 1)[0] if old.count(".") > 1
                                                                          else old)

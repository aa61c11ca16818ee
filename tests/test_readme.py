"""The README read as a newcomer runs it: shell blocks in order must not write the same output twice (the second
command would stop on "already exists; refusing to overwrite")."""
import re
from collections import Counter
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _shell_lines():
    text = README.read_text()
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, flags=re.S):
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
    assert outputs, "no mrs-tf commands found in the README's shell blocks"
    twice = {name: n for name, n in outputs.items() if n > 1}
    assert not twice, f"README commands write these more than once: {twice}"

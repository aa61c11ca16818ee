"""Writing outputs loses nothing and leaves nothing: a folder given as a file, a full disk and the temporaries of
killed runs (issue 16)."""
import errno
import os
import time

import numpy as np
import pytest

from mrs_tf.core.errors import FileFormatError
from mrs_tf.core.files import atomic_output, remove_stale_temporaries
from mrs_tf.table import ResultTable


def test_a_folder_given_as_the_output_file_is_an_error_not_a_traceback(tmp_path, capsys):
    from mrs_tf.cli import main

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "keep.txt").write_text("mine")
    with pytest.raises(FileFormatError, match="is a folder; give a file name"):
        ResultTable({"a": np.arange(3.0)}).to_csv(tmp_path / "results", overwrite=True)
    assert main(["synth", "--n", "1", "--seed", "0", "--out", str(tmp_path / "results"), "--overwrite"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert (tmp_path / "results" / "keep.txt").read_text() == "mine"


def test_a_full_disk_is_an_error_and_leaves_no_partial_file(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("earlier results")
    with pytest.raises(FileFormatError, match="disk or quota full"):
        with atomic_output(target, overwrite=True) as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "earlier results"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_temporaries_of_killed_runs_are_removed_by_the_next_write(tmp_path):
    old_file, old_dir = tmp_path / ".t.csv.ab12cd_9.csv", tmp_path / ".maps.zz99yy00"
    fresh, other = tmp_path / ".t.csv.qwertyui.csv", tmp_path / ".t.csv.notmine"
    old_file.write_text("x")
    old_dir.mkdir()
    fresh.write_text("a run writing now")
    other.write_text("the user's")
    hours_ago = time.time() - 7200
    for p in (old_file, old_dir, other):
        os.utime(p, (hours_ago, hours_ago))
    ResultTable({"a": np.arange(2.0)}).to_csv(tmp_path / "t.csv")
    assert not old_file.exists() and fresh.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path / "maps") == [old_dir] and not old_dir.exists()


def test_incomplete_tfds_builds_left_by_killed_runs_are_removed(tmp_path):
    from mrs_tf.data import _remove_stale_incomplete

    stale, running = tmp_path / "incomplete.abc123_1.1.0", tmp_path / "incomplete.def456_1.1.0"
    for p in (stale, running):
        (p / "shard").mkdir(parents=True)
    os.utime(stale, (time.time() - 7200,) * 2)
    assert _remove_stale_incomplete(tmp_path / "1.1.0") == [stale]
    assert not stale.exists() and running.exists()


def test_a_models_train_config_is_read_once_per_version_of_the_file(tmp_path, monkeypatch):
    """`Quantifier.quantify` asked for the folder's train_config.json up to three times per call (its synthesis for
    the input checks and the prior columns), each time reading and parsing the file; now once, and again only when
    the file changes."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from mrs_tf.nn.bundle import ModelBundle
    from mrs_tf.nn.config import TrainConfig

    path = tmp_path / "train_config.json"
    path.write_text(json.dumps(asdict(TrainConfig(epochs=3))))
    bundle = ModelBundle(None, {"names": ["NAA"], "n_points": 2048, "dwell_s": 2.5e-4, "field_mhz": 123.2,
                                "ppm_range": [0.2, 4.2]}, folder=tmp_path)
    reads = []
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: reads.append(self.name) or original(self, *a, **k))
    assert [bundle.train_config().epochs for _ in range(3)] == [3, 3, 3]
    assert reads.count("train_config.json") == 1
    path.write_text(json.dumps(asdict(TrainConfig(epochs=7))))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a later version of the file
    assert bundle.train_config().epochs == 7 and reads.count("train_config.json") == 2

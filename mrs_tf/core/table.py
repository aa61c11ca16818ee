"""Result tables: a mapping of column name -> 1-D array, one row per spectrum, written to CSV atomically."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from mrs_tf.core.files import atomic_output

__all__ = ["ResultTable", "status_columns"]


class ResultTable(dict):
    """``{column: array}``, every array of the same length (one row per spectrum).

    Columns keep their insertion order; ``table["NAA"]`` is an array, ``table.row(i)`` a dict.
    """

    @classmethod
    def from_rows(cls, rows: list[dict]) -> "ResultTable":
        columns: list[str] = []
        for row in rows:
            for key in row:
                if key not in columns:
                    columns.append(key)
        table = cls()
        for key in columns:
            values = [row.get(key, np.nan) for row in rows]
            table[key] = np.array(values, dtype=object if any(isinstance(v, str) for v in values) else float)
        return table

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.values()))) if self else 0

    def row(self, i: int) -> dict:
        return {k: v[i] for k, v in self.items()}

    def to_csv(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the table as CSV (atomically; refuses to replace an existing file unless ``overwrite``)."""
        with atomic_output(path, overwrite) as tmp:
            with open(tmp, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(list(self))
                for i in range(self.n_rows):
                    writer.writerow([_fmt(v[i]) for v in self.values()])
        return Path(path)

    @classmethod
    def read_csv(cls, path: str | os.PathLike) -> "ResultTable":
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = []
            for rec in reader:
                row = {}
                for k, v in rec.items():
                    try:
                        row[k] = float(v)
                    except ValueError:
                        row[k] = v
                rows.append(row)
        return cls.from_rows(rows)


def _fmt(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.8g}"
    return str(value)


def status_columns(table, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Copies of ``table``'s ``status`` and ``message`` columns (object arrays of ``n``), ``"ok"`` and ``""`` where it
    has none: for a step that flags spectra on top of what earlier steps said."""
    status = np.asarray(table["status"], dtype=object).copy() if "status" in table else np.full(n, "ok", dtype=object)
    message = np.asarray(table["message"], dtype=object).copy() if "message" in table else np.full(n, "", dtype=object)
    return status, message

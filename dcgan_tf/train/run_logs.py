"""Editing a run's CSV logs (history.csv, steps.csv) after a rollback or a resume."""

import csv
import math
from pathlib import Path

from dcgan_tf.utils.files import written_atomically


def _number(row, index):
    """A row's epoch or step; infinite for a row cut short by a crash, so it is dropped."""
    try:
        return int(float(row[index]))
    except (IndexError, ValueError):
        return math.inf


def trim_logs(run_dir, epoch, step):
    """Drop the history.csv rows after `epoch` and the steps.csv rows after `step`: after a
    rollback or a resume the logs continue from the checkpoint, with no rows trained twice."""
    for name, column, last in (("history.csv", "epoch", epoch), ("steps.csv", "step", step)):
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows or column not in rows[0]:  # opened, then stopped before its header was written
            continue
        index = rows[0].index(column)
        kept = rows[:1] + [row for row in rows[1:] if _number(row, index) <= last]
        if len(kept) < len(rows):
            with written_atomically(path) as (partial,), partial.open("w", newline="") as f:
                csv.writer(f).writerows(kept)

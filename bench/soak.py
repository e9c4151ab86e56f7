"""Soak test of crash safety: train `tiny` with a checkpoint every epoch, kill it at random
moments with SIGKILL or SIGTERM (what schedulers and containers send), resume, and check that
- every resume starts right after the latest checkpoint (train.py's "resuming ... at epoch N"),
- a SIGTERM exits with status 143 after saving (or before training started, with nothing to save),
- no checkpoint is ever unreadable,
- no epoch up to the latest checkpoint is missing from history.csv, steps.csv or samples/,
  and the finished run logs every epoch and every step exactly once.

  python bench/soak.py --kills 20 --epochs 40

Prints one line per kill and a summary. Not part of the test suite (it runs for minutes).
"""

import argparse
import csv
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def default_signals():
    """In the child: SIGINT and SIGTERM with their default actions, whatever this shell gave us."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(work, epochs, resume):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = ["--out", "runs/soak", "--epochs", str(epochs), "--no-export"]
    args += ["--resume"] if resume else ["--preset", "tiny", "--data", "faces.npy"]
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)


def checkpoint_state(run):
    """(epoch counter, training step) of the latest checkpoint, reading every tensor (None if none)."""
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        return None
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)  # every tensor must be readable
    step = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith("g_optimizer/_iterations")]
    return int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")), int(step[0])


def column(path, name):
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [int(float(row[name])) for row in csv.DictReader(f)]


def missing_logs(run, epoch, step, finished=False):
    """What the logs lack for the epochs and steps up to a checkpoint (epoch, step); when the run
    has finished, also anything logged twice or beyond it."""
    epochs, steps = column(run / "history.csv", "epoch"), column(run / "steps.csv", "step")
    step_epochs = set(column(run / "steps.csv", "epoch"))
    grids = {int(p.stem[6:]) for p in (run / "samples").glob("epoch_*.png")}
    problems = [f"epoch {e} missing from {where}" for e in range(1, epoch + 1)
                for where, logged in (("history.csv", epochs), ("steps.csv", step_epochs), ("samples/", grids))
                if e not in logged]
    if sorted(set(s for s in steps if s <= step)) != list(range(1, step + 1)):
        problems.append(f"steps.csv lacks some of steps 1-{step}")
    if finished and (epochs != list(range(1, epoch + 1)) or steps != list(range(1, step + 1))):
        problems.append(f"finished run: history.csv epochs {epochs[:3]}...{epochs[-3:]}, "
                        f"steps.csv not exactly 1-{step} once each")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--max-delay", type=float, default=8.0, help="seconds before a kill, at most")
    parser.add_argument("--sigterm-share", type=float, default=0.5, help="share of the kills that are SIGTERM")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="dcgan-soak-"))
    np.save(work / "faces.npy", np.random.default_rng(0).integers(0, 256, (1024, 16, 16, 3), dtype=np.uint8))
    run = work / "runs" / "soak"
    failures, epochs_seen, resumes, saved_on_term = [], [], 0, 0
    for kill in range(args.kills):
        before = checkpoint_state(run)
        process = start(work, args.epochs, resume=before is not None)
        delay = rng.uniform(1.0, args.max_delay)
        sent = signal.SIGTERM if rng.random() < args.sigterm_share else signal.SIGKILL
        time.sleep(delay)
        finished = process.poll() is not None
        process.send_signal(sent)
        out, err = process.communicate()
        if finished and process.returncode != 0:
            failures.append(f"kill {kill}: train.py failed: {err.strip().splitlines()[-1:]}")
        if sent == signal.SIGTERM and not finished:
            saved_on_term += "interrupted: saved" in err
            if process.returncode != 143 or "Traceback" in err:
                failures.append(f"kill {kill}: SIGTERM gave status {process.returncode}: {err.strip().splitlines()[-1:]}")
        resumed = re.search(r"resuming .* at epoch (\d+)", out)
        if resumed:  # absent when the kill came before the checkpoint was read
            resumes += 1
            if int(resumed.group(1)) != before[0] + 1:
                failures.append(f"kill {kill}: resumed at epoch {resumed.group(1)}, the checkpoint held {before[0]}")
        try:
            state = checkpoint_state(run)
        except Exception as error:  # an unreadable checkpoint is exactly what this looks for
            failures.append(f"kill {kill}: unreadable checkpoint: {error}")
            state = None
        if state is not None:
            failures += [f"kill {kill}: {problem}" for problem in missing_logs(run, *state)]
        epochs_seen.append(state and state[0])
        print(f"kill {kill + 1:3d} ({signal.Signals(sent).name}) after {delay:4.1f}s: latest checkpoint at "
              f"epoch {state and state[0]}, step {state and state[1]}", flush=True)
        if finished:
            break
    process = start(work, args.epochs, resume=True)
    _, err = process.communicate()
    if process.returncode != 0:
        failures.append(f"final resume failed: {err.strip().splitlines()[-1:]}")
    final = checkpoint_state(run) or (None, None)
    if final[0] is not None:
        failures += [f"after the final resume: {problem}" for problem in missing_logs(run, *final, finished=True)]
    monotonic = all(b >= a for a, b in zip(epochs_seen, epochs_seen[1:]) if a is not None and b is not None)
    print(f"\nkills: {len(epochs_seen)}, SIGTERMs that saved a checkpoint: {saved_on_term}, resumes seen to start "
          f"after their checkpoint: {resumes}, final epoch {final[0]} of {args.epochs}, epoch counter never went "
          f"back: {monotonic}, failures: {len(failures)}")
    for failure in failures:
        print("  " + failure)
    sys.exit(1 if failures or final[0] != args.epochs or not monotonic else 0)


if __name__ == "__main__":
    main()

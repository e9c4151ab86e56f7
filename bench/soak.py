"""Soak test of crash safety: train `tiny` with a checkpoint every epoch, SIGKILL it at random
moments, resume, and check that every resume starts right after the latest checkpoint (from
train.py's "resuming ... at epoch N" line), succeeds, and no checkpoint is ever unreadable.

  python bench/soak.py --kills 20 --epochs 40

Prints one line per kill and a summary. Not part of the test suite (it runs for minutes).
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def start(work, epochs, resume):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = ["--out", "runs/soak", "--epochs", str(epochs), "--no-export"]
    args += ["--resume"] if resume else ["--preset", "tiny", "--data", "faces.npy"]
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def checkpoint_epoch(run):
    """The epoch counter of the latest checkpoint, reading it fully (None if there is none)."""
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        return None
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)  # every tensor must be readable
    return int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--max-delay", type=float, default=8.0, help="seconds before a kill, at most")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="dcgan-soak-"))
    np.save(work / "faces.npy", np.random.default_rng(0).integers(0, 256, (1024, 16, 16, 3), dtype=np.uint8))
    run = work / "runs" / "soak"
    failures, epochs_seen, resumes = [], [], 0
    for kill in range(args.kills):
        before = checkpoint_epoch(run)
        process = start(work, args.epochs, resume=before is not None)
        delay = rng.uniform(1.0, args.max_delay)
        time.sleep(delay)
        finished = process.poll() is not None
        process.kill()
        out, err = process.communicate()
        if finished and process.returncode != 0:
            failures.append(f"kill {kill}: train.py failed: {err.strip().splitlines()[-1:]}")
        resumed = re.search(r"resuming .* at epoch (\d+)", out)
        if resumed:  # absent when the kill came before the checkpoint was read
            resumes += 1
            if int(resumed.group(1)) != before + 1:
                failures.append(f"kill {kill}: resumed at epoch {resumed.group(1)}, the checkpoint held {before}")
        try:
            epoch = checkpoint_epoch(run)
        except Exception as error:  # an unreadable checkpoint is exactly what this looks for
            failures.append(f"kill {kill}: unreadable checkpoint: {error}")
            epoch = None
        epochs_seen.append(epoch)
        print(f"kill {kill + 1:3d} after {delay:4.1f}s: latest checkpoint at epoch {epoch}", flush=True)
        if finished:
            break
    process = start(work, args.epochs, resume=True)
    _, err = process.communicate()
    if process.returncode != 0:
        failures.append(f"final resume failed: {err.strip().splitlines()[-1:]}")
    final = checkpoint_epoch(run)
    monotonic = all(b >= a for a, b in zip(epochs_seen, epochs_seen[1:]) if a is not None and b is not None)
    print(f"\nkills: {len(epochs_seen)}, resumes seen to start after their checkpoint: {resumes}, "
          f"final epoch {final} of {args.epochs}, epoch counter never went back: {monotonic}, "
          f"failures: {len(failures)}")
    for failure in failures:
        print("  " + failure)
    sys.exit(1 if failures or final != args.epochs or not monotonic else 0)


if __name__ == "__main__":
    main()

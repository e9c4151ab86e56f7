import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # train.py, generate.py and dcgan_tf
CELEBA_ZIP = ROOT.parent / "shared" / "data" / "celeba_10k.zip"
CELEBA_ATTRS = CELEBA_ZIP.with_name("celeba_10k_attrs.txt")


def random_images(count, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


@pytest.fixture
def image_npy(tmp_path):
    """A small uint8 image array file, enough for a few tiny-preset batches."""
    path = tmp_path / "images.npy"
    np.save(path, random_images(64, 16))
    return path


def checkpoint_state(run):
    """(epoch counter, training step) of a run's latest complete checkpoint; (0, 0) if none."""
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(str(Path(run) / "checkpoints"))
    if latest is None:
        return 0, 0
    reader = tf.train.load_checkpoint(latest)
    step = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith("g_optimizer/_iterations")]
    return int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")), int(step[0])


def epochs_logged(run):
    with open(Path(run) / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]

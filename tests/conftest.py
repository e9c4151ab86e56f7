import csv
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
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


def pytest_addoption(parser):
    group = parser.getgroup("explorer", "tests/test_explore_browser.py")
    group.addoption("--explorer-model", help="drive the page on this model (default: a tiny untrained one)")
    group.addoption("--explorer-screenshot", help="also save the page's screenshot here (docs/explorer.png)")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """An untrained tiny generator exported, with directions.npz for two attributes: Smiling, Male.
    Its kernels are scaled up 8x: at their initial N(0, 0.02) every latent gives about the same grey
    image, and tests could not tell one face from another."""
    from dcgan_tf.config import preset
    from dcgan_tf.model.networks import build_generator
    from dcgan_tf.serve.export import export_generator
    cfg = preset("tiny")
    generator = build_generator(cfg)
    for weight in generator.weights:
        if weight.path.endswith("kernel"):
            weight.assign(8 * weight)
    path = export_generator(generator, cfg, tmp_path_factory.mktemp("explore") / "tiny")
    directions = np.random.default_rng(1).normal(size=(2, cfg.latent_dim))
    np.savez(path / "directions.npz", Smiling=directions[0], Male=directions[1])
    return path


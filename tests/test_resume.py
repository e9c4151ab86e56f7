"""--resume keeps the run's config and its restored state in agreement (train.py in a subprocess)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images
from test_train_cli import run_train


def learning_rates(run):
    reader = tf.train.load_checkpoint(str(run / "checkpoints"))
    return [float(reader.get_tensor(f"{name}/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE"))
            for name in ("d_optimizer", "g_optimizer")]


@pytest.fixture
def one_epoch_run(tmp_path):
    np.save(tmp_path / "faces.npy", random_images(64, 16))
    result = run_train("--preset", "tiny", "--data", "faces.npy", "--epochs", 1, "--ema", 0, "--out", "run",
                       "--no-export", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path, tmp_path / "run"


def test_resume_with_new_learning_rates_trains_with_them(one_epoch_run):
    work, run = one_epoch_run
    assert learning_rates(run) == pytest.approx([2e-4, 2e-4])
    result = run_train("--resume", "--out", "run", "--epochs", 2, "--lr", 5e-5, "--d-lr", 1e-4, "--no-export", cwd=work)
    assert result.returncode == 0, result.stderr
    assert learning_rates(run) == pytest.approx([1e-4, 5e-5])  # the checkpoint's own rates were replaced
    config = json.loads((run / "dcgan_config.json").read_text())
    assert (config["lr"], config["d_lr"]) == (5e-5, 1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("change", [["--conv-dim", 16], ["--spectral-norm", "true"], ["--ema", 0.99]])
def test_a_failed_resume_leaves_the_run_as_it_was(one_epoch_run, change):
    work, run = one_epoch_run
    config_before = (run / "dcgan_config.json").read_bytes()
    result = run_train("--resume", "--out", "run", "--epochs", 2, *change, "--no-export", cwd=work)
    assert result.returncode != 0 and "does not match this model's config" in result.stderr
    assert "Traceback" not in result.stderr
    assert (run / "dcgan_config.json").read_bytes() == config_before
    again = run_train("--resume", "--out", "run", "--epochs", 2, "--no-export", cwd=work)  # the run still resumes
    assert again.returncode == 0, again.stderr


def test_resume_refuses_another_preset(one_epoch_run):
    work, _ = one_epoch_run
    result = run_train("--resume", "--out", "run", "--preset", "dcgan32", cwd=work)
    assert result.returncode != 0
    assert "with its own preset tiny; drop --preset dcgan32" in result.stderr


def test_loading_a_run_without_the_sampling_generator_is_refused(tmp_path):
    from dcgan_tf.config import preset
    from dcgan_tf.model.gan import build_gan
    from dcgan_tf.serve.loader import load
    cfg = preset("tiny")
    gan = build_gan(cfg)
    cfg.save(tmp_path)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(gan=gan), str(tmp_path / "checkpoints"), 1)
    manager.save()  # a checkpoint of the GAN alone: no weights under 'generator'
    with pytest.raises(ValueError, match="does not match this model's config"):
        load(tmp_path)


@pytest.mark.parametrize("args", [["--preset", "tiny", "--data", "faces.npy"], ["--resume"]], ids=["fresh", "resume"])
def test_a_second_process_on_a_run_is_refused(tmp_path, args):
    """Issue 33, case 5: while a process trains a run (holds its lock), a second train.py on the same
    --out, fresh or --resume, stops at once and leaves the run as it was."""
    from dcgan_tf.config import preset
    from dcgan_tf.utils import locks
    np.save(tmp_path / "faces.npy", random_images(64, 16))
    run = tmp_path / "run"
    preset("tiny").replace(data="faces.npy").save(run)
    before = {path: path.read_bytes() for path in run.rglob("*")}
    with locks.exclusive(run / ".lock", "held", "by this test"):
        result = run_train(*args, "--epochs", 1, "--out", "run", "--no-export", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"train.py: error: the run run is in use by process {os.getpid()}: wait for that training to end "
        "(or stop it), or choose another --out")
    assert {path: path.read_bytes() for path in run.rglob("*")} == before

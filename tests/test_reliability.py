"""Failures lose nothing: Ctrl-C, SIGKILL mid-epoch and mid-checkpoint, NaN losses, failed writes."""

import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_tf import training
from dcgan_tf.checkpoints import CheckpointError, TrainingCheckpoint
from dcgan_tf.config import Config, preset
from dcgan_tf.gan import build_gan

from conftest import ROOT, checkpoint_state, epochs_logged, random_images

STEPS_PER_EPOCH = 64  # 1,024 images, batch 16

# train.py with CheckpointManager stalled after the data files of ckpt-<STALL_STEP> are
# written and before the index names it: the moment a crash must not lose the run.
STALLING_TRAIN = """
import os, runpy, sys, time
import tensorflow as tf
stall = "ckpt-" + os.environ["STALL_STEP"]
record = tf.train.CheckpointManager._record_state
def stalled(self):
    if self.latest_checkpoint.endswith(stall):
        print("STALLED", flush=True)
        time.sleep(600)
    record(self)
tf.train.CheckpointManager._record_state = stalled
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def start_train(work, *args, stall_step=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    prefix = [sys.executable, str(ROOT / "train.py")]
    if stall_step is not None:
        env["STALL_STEP"] = str(stall_step)
        prefix = [sys.executable, "-c", STALLING_TRAIN, str(ROOT / "train.py")]
    return subprocess.Popen([*prefix, "--preset", "tiny", "--out", "runs/r", "--no-export", *map(str, args)],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def finish(process, timeout=300):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, out, err


@pytest.fixture
def work(tmp_path):
    np.save(tmp_path / "faces.npy", random_images(STEPS_PER_EPOCH * 16, 16))
    return tmp_path


def resume_to(work, epochs):
    process = start_train(work, "--resume", "--epochs", epochs)
    code, out, err = finish(process)
    assert code == 0, err
    return out


def test_ctrl_c_saves_and_resume_finishes(work):
    run = work / "runs" / "r"
    process = start_train(work, "--data", "faces.npy", "--epochs", 50)
    wait_for(lambda: (run / "samples" / "epoch_001.png").exists(), process)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    code, _, err = finish(process)
    assert code == 130 and "interrupted: saved" in err and "Traceback" not in err, err
    epoch, step = checkpoint_state(run)
    assert epoch >= 1 and f"(epoch {epoch} complete, step {step})" in err  # the state at Ctrl-C was saved
    assert (run / "checkpoints" / f"ckpt-{step}.index").is_file()
    out = resume_to(work, epoch + 1)
    assert f"at epoch {epoch + 1} of {epoch + 1}" in out
    assert checkpoint_state(run)[0] == epoch + 1


def test_sigkill_mid_epoch_resumes_from_the_last_epoch(work):
    run = work / "runs" / "r"
    process = start_train(work, "--data", "faces.npy", "--epochs", 50)
    wait_for(lambda: (run / "samples" / "epoch_002.png").exists(), process)
    time.sleep(0.3)
    process.kill()
    process.wait()
    epoch, step = checkpoint_state(run)
    assert epoch >= 2 and step == epoch * STEPS_PER_EPOCH
    resume_to(work, epoch + 1)
    assert checkpoint_state(run) == (epoch + 1, (epoch + 1) * STEPS_PER_EPOCH)
    assert epochs_logged(run)[-1] == epoch + 1


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(work):
    run = work / "runs" / "r"
    process = start_train(work, "--data", "faces.npy", "--epochs", 5, stall_step=3 * STEPS_PER_EPOCH)
    wait_for(lambda: (run / "checkpoints" / f"ckpt-{3 * STEPS_PER_EPOCH}.index").exists(), process)
    assert any("STALLED" in line for line in iter(process.stdout.readline, ""))  # after a progress bar
    process.kill()
    process.wait()
    assert checkpoint_state(run) == (2, 2 * STEPS_PER_EPOCH)  # the index still names epoch 2
    resume_to(work, 4)
    assert checkpoint_state(run) == (4, 4 * STEPS_PER_EPOCH)


class PoisonWeights(keras.callbacks.Callback):
    """Sets a weight (D's first kernel unless `pick` chooses another) to NaN before step `at`
    (every `at` steps with repeat=True)."""

    def __init__(self, at, repeat=False, pick=lambda gan: gan.discriminator.trainable_weights[0]):
        super().__init__()
        self.at, self.repeat, self.pick, self.done = at, repeat, pick, False

    def on_train_batch_begin(self, batch, logs=None):
        step = self.model.step_count() + 1
        if (step == self.at and not self.done) or (self.repeat and step % self.at == 0):
            weight = self.pick(self.model)
            weight.assign(tf.fill(weight.shape, np.nan))
            self.done = True


def train_tiny(tmp_path, poison, **overrides):
    np.save(tmp_path / "faces.npy", random_images(64, 16))  # 4 steps an epoch
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), **overrides)
    messages = []
    gan, _ = training.train(cfg, tmp_path / "run", verbose=0, log=messages.append, extra_callbacks=[poison])
    return gan, messages


def test_nan_rolls_back_once_and_halves_the_learning_rate(tmp_path):
    gan, messages = train_tiny(tmp_path, PoisonWeights(at=6), epochs=3)
    assert any("NaN/Inf at step 6: rolled back to" in m and "ckpt-4 (epoch 1)" in m for m in messages), messages
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(1e-4)
    saved = Config.load(tmp_path / "run")  # the run says what it trains with, and a resume keeps it
    assert (saved.lr, saved.discriminator_lr) == (pytest.approx(1e-4), pytest.approx(1e-4))
    assert all(np.isfinite(w.numpy()).all() for w in gan.weights)
    assert checkpoint_state(tmp_path / "run") == (3, 12)  # the bad epoch was done again
    assert epochs_logged(tmp_path / "run") == [1, 2, 3]  # the bad epoch's rows were dropped


def test_a_nan_batchnorm_statistic_rolls_back_too(tmp_path):
    # G's moving mean is used only outside training: no loss shows it, the weight check must
    moving_mean = PoisonWeights(at=6, pick=lambda gan: [w for w in gan.generator.weights if "moving_mean" in w.path][0])
    gan, messages = train_tiny(tmp_path, moving_mean, epochs=3)
    assert any("weights became NaN/Inf by step 8" in m and "moving_mean" in m and "ckpt-4 (epoch 1)" in m
               for m in messages), messages
    assert all(np.isfinite(w.numpy()).all() for w in gan.weights)
    assert checkpoint_state(tmp_path / "run") == (3, 12)


@pytest.mark.parametrize("on_nan, expected", [("stop", "NaN/Inf at step 2; stopped"),
                                              ("rollback", "NaN/Inf at step 2; stopped.*already rolled back once")])
def test_nan_stops_with_the_step(tmp_path, on_nan, expected):
    with pytest.raises(training.TrainingStopped, match=expected):
        train_tiny(tmp_path, PoisonWeights(at=2, repeat=True), epochs=2, on_nan=on_nan)
    assert checkpoint_state(tmp_path / "run") == (0, 0)  # only the untrained state was ever good


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    gan = build_gan(preset("tiny"))
    checkpoint = TrainingCheckpoint(gan, tmp_path)
    first = checkpoint.save(1)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.manager, "save", disk_full)
    with pytest.raises(CheckpointError, match=f"No space left on device.*previous checkpoint {first} is intact"):
        checkpoint.save(2)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) == first
    assert checkpoint.restore() == 1


def test_too_little_free_space_is_reported_before_writing(tmp_path, monkeypatch):
    gan = build_gan(preset("tiny"))
    checkpoint = TrainingCheckpoint(gan, tmp_path)
    monkeypatch.setattr("shutil.disk_usage", lambda path: type("Usage", (), {"free": 1000})())
    with pytest.raises(CheckpointError, match="only 0.0 MiB free"):
        checkpoint.save(1)
    assert not list((tmp_path / "checkpoints").glob("ckpt-*"))


def test_same_seed_same_first_epoch_and_samples(tmp_path):
    np.save(tmp_path / "faces.npy", random_images(64, 16))
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"))
    runs = [training.train(cfg, tmp_path / name, verbose=0, log=lambda m: None) for name in ("a", "b")]
    (_, first), (_, second) = runs
    assert first.history == second.history
    grids = [tf.io.read_file(str(tmp_path / name / "samples" / "epoch_001.png")).numpy() for name in ("a", "b")]
    assert grids[0] == grids[1]

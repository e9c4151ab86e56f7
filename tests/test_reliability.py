"""Failures lose nothing: Ctrl-C, SIGKILL mid-epoch and mid-checkpoint, NaN losses, failed writes."""

import csv
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, checkpoint_state, epochs_logged, random_images

from dcgan_tf.config import Config, preset
from dcgan_tf.model.gan import build_gan
from dcgan_tf.train import run, run_logs
from dcgan_tf.train.checkpoints import CheckpointError, TrainingCheckpoint
from dcgan_tf.utils import files, signals
from dcgan_tf.utils.files import written_atomically

STEPS_PER_EPOCH = 64  # 1,024 images, batch 16

# train.py run after a patch (Python code in $PATCH) that makes a failure happen at a chosen moment.
PATCHED_TRAIN = """
import os, runpy, sys
exec(os.environ["PATCH"])
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def stall_checkpoint(step, after_index=False):
    """CheckpointManager stalled once ckpt-<step>'s files are written, before the index names it
    (the moment a crash must not lose the run), or just after (the epoch's checkpoint is done)."""
    return f"""
import time
import tensorflow as tf
record = tf.train.CheckpointManager._record_state
def stalled(self):
    if {after_index}:
        record(self)
    if self.latest_checkpoint.endswith("ckpt-{step}"):
        print("STALLED", flush=True)
        time.sleep(600)
    record(self)
tf.train.CheckpointManager._record_state = stalled
"""


def swallow_a_sigterm(step):
    """SIGTERM sent to the run at <step> and swallowed by library code (an interrupt that comes
    wrapped in an ImportError inside an import is ignored by importers of optional modules)."""
    return f"""
import os, signal, time
from dcgan_tf.train import callbacks
record = callbacks.LossCurves.on_train_batch_end
def swallowing(self, batch, logs=None):
    record(self, batch, logs)
    if self.model.step_count() == {step}:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            print("SWALLOWED", flush=True)
callbacks.LossCurves.on_train_batch_end = swallowing
"""


def default_signals():
    """In the child: SIGINT and SIGTERM with their default actions, whatever the test run inherited
    (a shell's background job starts with SIGINT ignored, and Python then installs no Ctrl-C handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_train(work, *args, patch=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    prefix = [sys.executable, str(ROOT / "train.py")]
    if patch is not None:
        env["PATCH"] = patch
        prefix = [sys.executable, "-c", PATCHED_TRAIN, str(ROOT / "train.py")]
    return subprocess.Popen([*prefix, "--preset", "tiny", "--out", "runs/r", "--no-export", *map(str, args)],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)


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


@pytest.mark.parametrize("sent, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
@pytest.mark.slow
def test_ctrl_c_or_sigterm_saves_and_resume_finishes(work, sent, exit_code):
    run = work / "runs" / "r"
    process = start_train(work, "--data", "faces.npy", "--epochs", 50)
    index = run / "checkpoints" / "checkpoint"
    wait_for(lambda: index.is_file() and f'ckpt-{STEPS_PER_EPOCH}"' in index.read_text(), process)
    time.sleep(0.5)  # in the middle of epoch 2's steps
    process.send_signal(sent)
    code, _, err = finish(process)
    assert code == exit_code and "interrupted: saved" in err and "Traceback" not in err, err
    epoch, step = checkpoint_state(run)
    assert epoch >= 1 and f"(epoch {epoch} complete, step {step})" in err  # the state at the signal was saved
    # every step up to the saved one is logged, also the step the signal interrupted before its callbacks
    assert [logged for logged, _ in steps_logged(run)] == list(range(1, step + 1))
    assert (run / "checkpoints" / f"ckpt-{step}.index").is_file()
    out = resume_to(work, epoch + 1)
    assert f"at epoch {epoch + 1} of {epoch + 1}" in out
    assert checkpoint_state(run)[0] == epoch + 1


@pytest.mark.slow
def test_a_sigterm_that_library_code_swallows_still_saves_and_stops_the_run(work):
    step = STEPS_PER_EPOCH + 6  # in epoch 2
    process = start_train(work, "--data", "faces.npy", "--epochs", 50, patch=swallow_a_sigterm(step))
    code, out, err = finish(process)
    assert "SWALLOWED" in out and code == 143, err
    assert "interrupted: saved" in err and f"step {step + 1})" in err, err  # one step later
    assert checkpoint_state(work / "runs" / "r") == (1, step + 1)


def test_a_signal_inside_a_finalizer_prints_no_traceback_and_still_stops(monkeypatch):
    class SignalsWhenCollected:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)  # its handler runs here, where Python cannot raise

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with signals.stop_signals() as stop:
        SignalsWhenCollected()
        assert stop.exit_code == 143 and unraisable == []  # recorded, and the "Exception ignored" print dropped
        with pytest.raises(signals.Terminated):
            signals.raise_if_stopped()  # what training calls after every step
    assert sys.unraisablehook == unraisable.append
    with signals.stop_signals():  # other unraisable exceptions are still reported
        class FailsWhenCollected:
            def __del__(self):
                raise ValueError("in a finalizer")
        FailsWhenCollected()
    assert [type(event.exc_value) for event in unraisable] == [ValueError]


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_from_the_last_epoch(work):
    run = work / "runs" / "r"
    process = start_train(work, "--data", "faces.npy", "--epochs", 50)
    wait_for(lambda: (run / "samples" / "epoch_003.png").exists(), process)  # epoch 2's checkpoint is done
    time.sleep(0.3)
    process.kill()
    process.wait()
    epoch, step = checkpoint_state(run)
    assert epoch >= 2 and step == epoch * STEPS_PER_EPOCH
    resume_to(work, epoch + 1)
    assert checkpoint_state(run) == (epoch + 1, (epoch + 1) * STEPS_PER_EPOCH)
    assert epochs_logged(run)[-1] == epoch + 1


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(work):
    run = work / "runs" / "r"
    process = start_train(work, "--data", "faces.npy", "--epochs", 5, patch=stall_checkpoint(3 * STEPS_PER_EPOCH))
    wait_for(lambda: (run / "checkpoints" / f"ckpt-{3 * STEPS_PER_EPOCH}.index").exists(), process)
    assert any("STALLED" in line for line in iter(process.stdout.readline, ""))  # after a progress bar
    process.kill()
    process.wait()
    assert checkpoint_state(run) == (2, 2 * STEPS_PER_EPOCH)  # the index still names epoch 2
    resume_to(work, 4)
    assert checkpoint_state(run) == (4, 4 * STEPS_PER_EPOCH)


def steps_logged(run):
    with open(run / "steps.csv") as f:
        return [(int(row["step"]), int(row["epoch"])) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_a_kill_just_after_an_epochs_checkpoint_keeps_its_logs_and_grid(work):
    run = work / "runs" / "r"
    process = start_train(work, "--data", "faces.npy", "--epochs", 5,
                          patch=stall_checkpoint(2 * STEPS_PER_EPOCH, after_index=True))
    assert any("STALLED" in line for line in iter(process.stdout.readline, ""))
    process.kill()
    process.wait()
    assert checkpoint_state(run) == (2, 2 * STEPS_PER_EPOCH)
    assert epochs_logged(run) == [1, 2]  # written before the checkpoint that marks the epoch done
    assert steps_logged(run)[-1] == (2 * STEPS_PER_EPOCH, 2)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    resume_to(work, 3)
    assert epochs_logged(run) == [1, 2, 3]
    assert [step for step, _ in steps_logged(run)] == list(range(1, 3 * STEPS_PER_EPOCH + 1))


@pytest.mark.slow
def test_a_failed_grid_write_stops_with_one_line_and_resume_redoes_the_epoch(work):
    no_space = """
import errno
from PIL import Image
save = Image.Image.save
def full_disk(self, fp, *args, **kwargs):
    if "epoch_002" in str(fp):
        raise OSError(errno.ENOSPC, "No space left on device", str(fp))
    return save(self, fp, *args, **kwargs)
Image.Image.save = full_disk
"""
    run = work / "runs" / "r"
    code, _, err = finish(start_train(work, "--data", "faces.npy", "--epochs", 3, patch=no_space))
    assert code == 1 and "Traceback" not in err, err
    assert "could not write" in err and "epoch_002.png" in err and "(No space left on device)" in err
    assert "continue with --resume" in err.strip().splitlines()[-1]
    assert checkpoint_state(run) == (1, STEPS_PER_EPOCH)
    resume_to(work, 3)
    assert epochs_logged(run) == [1, 2, 3]
    assert (run / "samples" / "epoch_002.png").is_file()


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
    gan, _ = run.train(cfg, tmp_path / "run", verbose=0, log=messages.append, extra_callbacks=[poison])
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
    with pytest.raises(run.TrainingStopped, match=expected):
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
    runs = [run.train(cfg, tmp_path / name, verbose=0, log=lambda m: None) for name in ("a", "b")]
    (_, first), (_, second) = runs
    assert first.history == second.history
    grids = [tf.io.read_file(str(tmp_path / name / "samples" / "epoch_001.png")).numpy() for name in ("a", "b")]
    assert grids[0] == grids[1]


# --- a run whose newest checkpoint is missing or damaged (issue 15, item 1) ---------------

@pytest.fixture(scope="module")
def three_epochs(tmp_path_factory):
    """A tiny run of 3 epochs of 4 steps: ckpt-4, ckpt-8 and ckpt-12."""
    work = tmp_path_factory.mktemp("three")
    np.save(work / "faces.npy", random_images(64, 16))
    code, _, err = finish(start_train(work, "--data", "faces.npy", "--epochs", 3))
    assert code == 0, err
    return work / "runs" / "r"


def damaged_copy(run, tmp_path, damage):
    shutil.copy(run.parent.parent / "faces.npy", tmp_path)  # the run's data, relative to its working directory
    copy = shutil.copytree(run, tmp_path / "runs" / "r")
    newest = copy / "checkpoints" / "ckpt-12.data-00000-of-00001"
    if damage == "missing":
        newest.unlink()
        (copy / "checkpoints" / "ckpt-12.index").unlink()
    elif damage == "truncated":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    else:
        (copy / "checkpoints" / "checkpoint").write_text("not a checkpoint index {")
        newest.write_bytes(newest.read_bytes()[:100])
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("damage, reason", [("missing", "its files are missing"),
                                            ("truncated", "it is damaged (IndexError: Read less bytes than requested)"),
                                            ("index", "it is damaged (IndexError")])
def test_resume_falls_back_to_the_newest_readable_checkpoint(three_epochs, tmp_path, damage, reason):
    run = damaged_copy(three_epochs, tmp_path, damage)
    out = resume_to(tmp_path, 4)
    assert f"skipped ckpt-12 ({reason}" in out
    assert "): using the newest readable checkpoint, runs/r/checkpoints/ckpt-8" in out
    assert "at epoch 3 of 4" in out
    assert checkpoint_state(run) == (4, 16) and epochs_logged(run) == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_fresh_run_never_overwrites_a_run_with_a_damaged_checkpoint(three_epochs, tmp_path):
    run = damaged_copy(three_epochs, tmp_path, "truncated")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, _, err = finish(start_train(tmp_path, "--data", "faces.npy", "--epochs", 1))
    assert code == 1 and "already holds a training run: pass --resume to continue it" in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    for name in ("checkpoints", "samples"):  # logs and grids of a run with no checkpoint count too
        shutil.rmtree(run / name)
    code, _, err = finish(start_train(tmp_path, "--data", "faces.npy", "--epochs", 1))
    assert code == 1 and "holds files of an earlier run (dcgan_config.json, real_batch.png, history.csv, steps.csv, " \
                         "losses.png) but no checkpoint to resume: choose another --out" in err, err
    assert (run / "history.csv").read_bytes() == before[run / "history.csv"]
    for name in ("history.csv", "steps.csv", "losses.png"):  # a start stopped before its first checkpoint
        (run / name).unlink()
    code, _, err = finish(start_train(tmp_path, "--data", "faces.npy", "--epochs", 1))
    assert code == 0, err  # its dcgan_config.json and real_batch.png are all there was: replaced
    assert checkpoint_state(run) == (1, 4)


@pytest.mark.slow
def test_generate_falls_back_too_and_a_damaged_chosen_checkpoint_is_one_line(three_epochs, tmp_path):
    run = damaged_copy(three_epochs, tmp_path, "truncated")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    generate = [sys.executable, str(ROOT / "generate.py")]
    result = subprocess.run([*generate, str(run), "--n", "4", "--out", "a.png"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "skipped ckpt-12 (it is damaged" in result.stderr and (tmp_path / "a.png").is_file()
    result = subprocess.run([*generate, str(run / "checkpoints" / "ckpt-12"), "--out", "b.png"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"generate.py: error: checkpoint {run / 'checkpoints' / 'ckpt-12'} cannot be read: it is damaged")


@pytest.mark.parametrize("sent, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_a_signal_while_starting_ends_with_one_line_and_nothing_saved(work, sent, exit_code):
    process = start_train(work, "--data", "faces.npy", "--epochs", 5)
    time.sleep(1.0)  # TensorFlow is still loading
    process.send_signal(sent)
    code, _, err = finish(process)
    assert code == exit_code and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "train.py: interrupted before training started; nothing was saved"
    assert not (work / "runs" / "r" / "checkpoints").exists()


def test_logs_opened_but_never_written_do_not_stop_a_resume(tmp_path):
    (tmp_path / "history.csv").write_text("")  # a stop just after Keras opened it, before its header
    (tmp_path / "steps.csv").write_text("step,epoch,d_loss\n1,1,0.5\n2,1,0.4\n3,1,0.")  # the last row cut short
    run_logs.trim_logs(tmp_path, 0, 2)
    assert (tmp_path / "history.csv").read_text() == ""
    assert (tmp_path / "steps.csv").read_text().splitlines() == ["step,epoch,d_loss", "1,1,0.5", "2,1,0.4"]


# --- writes through links, folders replaced whole, array files checked first (issue 33) -----

def test_out_writes_through_a_link_and_refuses_a_fifo(tiny_model, tmp_path):
    """Case 6: a symbolic link stays a link to the new file; a FIFO (like a device) is not replaced."""
    from dcgan_tf.cli import generate
    real, link, fifo = tmp_path / "real.png", tmp_path / "link.png", tmp_path / "fifo.png"
    real.write_bytes(b"old")
    link.symlink_to(real)
    os.mkfifo(fifo)
    generate.main([str(tiny_model), "--n", "2", "--out", str(link)])
    assert link.is_symlink() and real.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit) as exit:
        generate.main([str(tiny_model), "--n", "2", "--out", str(fifo)])
    assert exit.value.code == (f"generate.py: error: {fifo} is not a regular file but a device, FIFO or socket; "
                               "writing would replace it: give a file name")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_folder_is_replaced_whole_even_by_a_kill_in_between(tmp_path, monkeypatch):
    """Case 7: the old folder stays in place until the new one is (exchanged in one step); where the
    system cannot exchange, a kill between the two renames leaves it aside and the next write puts it back."""
    target = tmp_path / "export"
    target.mkdir()
    (target / "old").write_text("old")

    def write(name):
        with written_atomically(target) as (partial,):
            partial.mkdir()
            (partial / name).write_text(name)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what a kill leaves: nothing runs after this point
    with monkeypatch.context() as patch:
        patch.setattr(shutil, "rmtree", killed)  # just after the exchange
        with pytest.raises(KeyboardInterrupt):
            write("new")
    assert [p.name for p in target.iterdir()] == ["new"]
    renames = []
    with monkeypatch.context() as patch:
        patch.setattr(files, "_exchange", lambda a, b: False)
        patch.setattr(os, "replace", lambda a, b: renames.append(a) or (killed() if len(renames) == 2 else
                                                                          os.rename(a, b)))
        with pytest.raises(KeyboardInterrupt):
            write("newer")  # the old one moved aside, the new one not yet in place
    assert not target.exists()
    write("newest")
    assert [p.name for p in target.iterdir()] == ["newest"] and sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_an_array_file_declaring_terabytes_is_refused_from_its_header(tiny_model, tmp_path):
    """Case 10: a 128-byte .npy that declares 2^40 values, and a deflated member that inflates to 76 MiB."""
    from dcgan_tf.cli import generate
    from dcgan_tf.edit.directions import Directions
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    with pytest.raises(SystemExit) as exit:
        generate.main([str(tiny_model), "query", "--vector", str(huge), "--out", str(tmp_path / "q.png")])
    assert exit.value.code == (f"generate.py: error: {huge} declares an array of shape (1099511627776,) float64 "
                               "(8192.0 GiB), more than the 256 bytes it may hold here")
    np.savez_compressed(tmp_path / "directions.npz", Smiling=np.zeros(10**7))
    assert (tmp_path / "directions.npz").stat().st_size < 200_000
    with pytest.raises(ValueError, match=r"Smiling declares an array of shape \(10000000,\) float64 \(76.3 MiB\), "
                                         r"more than the 128 bytes it may hold here"):
        Directions.load(tmp_path / "directions.npz", 8)


@pytest.mark.parametrize("arrays, problem", [
    ({"meta": '["Smiling"]'}, "not a readable .npz of directions (meta must be a JSON object, got list)"),
    ({"meta": '{"attributes": 5}'}, "not a readable .npz of directions (meta's attributes must be a list of names, got 5)"),
    ({"meta": '{"attributes": [1]}'}, "not a readable .npz of directions (meta's attributes must be a list of names, got [1])"),
    ({"meta": "[" * 100_000}, "not a readable .npz of directions (meta is JSON nested too deeply)"),
    ({"probe_images": "abc"}, "probe_images must be uint8 images [n, H, W, 3], got <U3 (): fit the directions again"),
], ids=["list", "attributes-5", "non-string-name", "deep", "string-probe"])
def test_crafted_directions_metadata_is_one_line(tmp_path, arrays, problem):
    """Case 16: directions.npz metadata of the wrong shape is a ValueError naming the file, never a traceback."""
    from dcgan_tf.edit.directions import Directions
    path = tmp_path / "directions.npz"
    np.savez(path, Smiling=np.ones(8), **{key: np.array(value) for key, value in arrays.items()})
    with pytest.raises(ValueError) as error:
        Directions.load(path, 8)
    assert str(error.value) == f"{path}: {problem}"


# --- FIFOs where files are read (issue 33, case 14) -----------------------------------------

@pytest.fixture
def deadline():
    """A read that blocks (a FIFO opened for reading) fails the test after 20 s instead of hanging it."""
    def expired(*_):
        raise TimeoutError("blocked reading a FIFO")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_fifo_as_a_checkpoint_file_is_refused_not_waited_on(tmp_path):
    run_dir = tmp_path / "run"
    preset("tiny").save(run_dir)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "ckpt-1.index").write_bytes(b"x")
    fifo = run_dir / "checkpoints" / "ckpt-1.data-00000-of-00001"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(ROOT / "generate.py"), str(run_dir), "--n", "2", "--out", "f.png"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"generate.py: error: {fifo} is a FIFO, device or socket, not a regular file: reading a checkpoint from it "
        "could wait forever; put the real file there")


def test_every_file_a_model_or_label_loader_reads_refuses_a_fifo(tiny_model, tmp_path, deadline):
    from dcgan_tf.data.labels import read_attributes
    from dcgan_tf.data.sources import holdout_count
    from dcgan_tf.edit.classifier import AttributeClassifier
    from dcgan_tf.edit.directions import Directions
    from dcgan_tf.metrics.inception import verify
    from dcgan_tf.serve import loader
    from dcgan_tf.serve.savedmodel import check_ops
    bare = shutil.copytree(tiny_model, tmp_path / "bare", ignore=shutil.ignore_patterns("generator.keras"))
    data = next((bare / "variables").glob("variables.data-*"))
    data.unlink()
    os.mkfifo(data)
    for name in ("config.json", "attrs.txt", "partition.txt", "classifier.keras", "directions.npz", "weights.pt"):
        os.mkfifo(tmp_path / name)
    loads = [(data, lambda: loader.load(bare)), (data, lambda: loader.load(bare, trust_savedmodel=True)),
             (data, lambda: check_ops(bare)),
             (tmp_path / "config.json", lambda: Config.load(tmp_path)),
             (tmp_path / "attrs.txt", lambda: read_attributes(tmp_path / "attrs.txt")),
             (tmp_path / "partition.txt", lambda: holdout_count(str(tmp_path / "partition.txt"))),
             (tmp_path / "classifier.keras", lambda: AttributeClassifier.load(tmp_path / "classifier.keras")),
             (tmp_path / "directions.npz", lambda: Directions.load(tmp_path / "directions.npz", 16)),
             (tmp_path / "weights.pt", lambda: verify(tmp_path / "weights.pt"))]
    for path, load in loads:
        with pytest.raises(files.NotAFile, match=f"^{path} is a FIFO, device or socket, not a regular file: reading "):
            load()

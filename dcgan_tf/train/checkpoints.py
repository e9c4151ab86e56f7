"""Training checkpoints: the GAN, both optimizers and the epoch counter.

The generator that samples are made with (the EMA copy, or G itself without EMA) is also
saved under its own name, `generator`, so load_sampling_generator reads it back into a
bare generator without building the training GAN and its optimizers.

Checkpoints are numbered by training step (ckpt-<step>), so an epoch-end checkpoint and
one written on Ctrl-C in the middle of an epoch never share a name.

Crash safety: tf.train.Checkpoint writes a checkpoint's files first and only then
rewrites the small `checkpoint` index atomically (write, then rename), so the index only
ever names complete checkpoints, and the previous ones stay on disk until a newer one is
complete (max_to_keep). A write that fails (disk full, I/O error) raises CheckpointError
and leaves the previous checkpoint in place. A checkpoint damaged or deleted afterwards is
skipped: readable_checkpoint falls back to the newest one that reads back whole.
"""

import re
import shutil
import sys
from pathlib import Path

import tensorflow as tf

from dcgan_tf.utils.files import regular_files

CHECKPOINT_DIR = "checkpoints"
SPACE_MARGIN = 1.5  # free space wanted, as a multiple of the checkpoint's size


class CheckpointError(RuntimeError):
    pass


class TrainingCheckpoint:
    def __init__(self, gan, run_dir, max_to_keep=3):
        self.gan = gan
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.state = tf.train.Checkpoint(
            gan=gan, d_optimizer=gan.d_optimizer, g_optimizer=gan.g_optimizer, epoch=self.epoch,
            generator=gan.sampling_generator)
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.manager = tf.train.CheckpointManager(self.state, str(self.directory), max_to_keep=max_to_keep)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def save(self, epoch):
        """Save the state after `epoch` complete epochs; returns the checkpoint's path."""
        self._check_free_space()
        self.epoch.assign(epoch)
        step = self.gan.step_count()
        try:
            return self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as error:
            raise CheckpointError(f"could not write checkpoint {self.directory}/ckpt-{step} ({error}); "
                                  f"the previous checkpoint {self.latest} is intact") from None

    def _check_free_space(self):
        needed = SPACE_MARGIN * sum(v.numpy().nbytes for v in self.checkpoint_variables())
        self.directory.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.directory).free
        if free < needed:
            raise CheckpointError(f"only {free / 2**20:.1f} MiB free in {self.directory}, a checkpoint needs "
                                  f"about {needed / 2**20:.1f} MiB; the previous checkpoint {self.latest} is intact")

    def checkpoint_variables(self):
        return [*self.gan.weights, *self.gan.d_optimizer.variables, *self.gan.g_optimizer.variables]

    def restore(self, path=None):
        """Restore the latest (or a given) checkpoint; returns the epochs completed when it was saved."""
        path = path or self.latest
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        _restore_all(self.state, path)
        return int(self.epoch.numpy())


def checkpoint_prefixes(run_dir):
    """Every checkpoint of a run, newest (highest step) first: those the `checkpoint` index names
    and those with files on disk, so a lost index or a lost newest checkpoint hides none."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    regular_files(directory, "a checkpoint")
    names = {p.stem for p in directory.glob("ckpt-*.index")}
    state = tf.train.get_checkpoint_state(str(directory)) if directory.is_dir() else None
    if state is not None:
        names.update(Path(path).name for path in state.all_model_checkpoint_paths)
    numbered = [name for name in names if re.fullmatch(r"ckpt-\d+", name)]
    return [str(directory / name) for name in sorted(numbered, key=lambda name: int(name[5:]), reverse=True)]


def _restore_all(checkpoint, path):
    """Restore every variable of `checkpoint`'s objects from path, or raise: a partial restore
    would leave some weights at their initial values without a word."""
    try:
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
        status.expect_partial()  # the checkpoint may hold more (the optimizers, when reading G alone)
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ValueError(f"checkpoint {path} does not match this model's config "
                         f"(was the architecture, --ema or a stabiliser changed?): {str(error).splitlines()[0]}") from None


def load_sampling_generator(cfg, path):
    """The generator saved in checkpoint `path` for sampling (the EMA weights with --ema),
    built from cfg alone: no discriminator, optimizers or losses."""
    from dcgan_tf.model.networks import build_generator
    generator = build_generator(cfg)
    _restore_all(tf.train.Checkpoint(generator=generator), path)
    return generator


def has_checkpoint(run_dir):
    """Whether a run has any checkpoint files, readable or not."""
    return bool(checkpoint_prefixes(run_dir))


def unreadable(prefix):
    """Why a checkpoint cannot be restored (files missing, truncated or corrupt), or None if every
    tensor reads back (TensorFlow verifies each one's checksum)."""
    if not Path(prefix + ".index").is_file():
        return "its files are missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # TensorFlow raises IndexError, OpError, ... for damaged files
        return f"it is damaged ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    return None


def readable_checkpoint(run_dir, prefix=None, log=lambda message: print(message, file=sys.stderr)):
    """`prefix` if it reads back whole (else ValueError), or without one the newest checkpoint of
    run_dir that does; logs which newer ones were skipped. FileNotFoundError if none is readable."""
    if prefix is not None:
        regular_files(Path(prefix).parent, "a checkpoint")
        reason = unreadable(prefix)
        if reason:
            raise ValueError(f"checkpoint {prefix} cannot be read: {reason}; choose another one")
        return prefix
    skipped = []
    for candidate in checkpoint_prefixes(run_dir):
        reason = unreadable(candidate)
        if reason is None:
            if skipped:
                log(f"skipped {'; '.join(skipped)}: using the newest readable checkpoint, {candidate}")
            return candidate
        skipped.append(f"{Path(candidate).name} ({reason})")
    raise FileNotFoundError(f"no readable checkpoint in {Path(run_dir) / CHECKPOINT_DIR}"
                            + (f": {'; '.join(skipped)}" if skipped else ""))

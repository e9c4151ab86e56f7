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
and leaves the previous checkpoint in place.
"""

import shutil
from pathlib import Path

import tensorflow as tf

CHECKPOINT_DIR = "checkpoints"
SPACE_MARGIN = 1.5  # free space wanted, as a multiple of the checkpoint's size


class CheckpointError(RuntimeError):
    pass


class TrainingCheckpoint:
    def __init__(self, gan, run_dir, max_to_keep=3):
        self.gan = gan
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(
            gan=gan, d_optimizer=gan.d_optimizer, g_optimizer=gan.g_optimizer, epoch=self.epoch,
            generator=gan.sampling_generator)
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=max_to_keep)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    @staticmethod
    def latest_in(run_dir):
        return tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR))

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
        _restore_all(self.checkpoint, path)
        return int(self.epoch.numpy())


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
    from .models import build_generator
    generator = build_generator(cfg)
    _restore_all(tf.train.Checkpoint(generator=generator), path)
    return generator


def has_checkpoint(run_dir):
    return TrainingCheckpoint.latest_in(run_dir) is not None

"""Training checkpoints: the GAN, both optimizers and the epoch counter.

tf.train.Checkpoint writes each checkpoint's files first and then rewrites the small
`checkpoint` index atomically, so the index only ever names complete checkpoints and
the previous ones stay on disk until a newer one is complete (max_to_keep).
"""

from pathlib import Path

import tensorflow as tf

CHECKPOINT_DIR = "checkpoints"


class TrainingCheckpoint:
    def __init__(self, gan, run_dir, max_to_keep=3):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(
            gan=gan, d_optimizer=gan.d_optimizer, g_optimizer=gan.g_optimizer, epoch=self.epoch)
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=max_to_keep)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def save(self, epoch):
        self.epoch.assign(epoch)
        return self.manager.save(checkpoint_number=epoch)

    def restore(self, path=None, generator_only=False):
        """Restore the latest (or a given) checkpoint; returns the epoch it was saved at."""
        path = path or self.latest
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        try:
            status = self.checkpoint.restore(path)
            if generator_only:
                status.expect_partial()
            else:
                status.assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise ValueError(f"checkpoint {path} does not match this model's config "
                             f"(was the architecture changed?): {str(error).splitlines()[0]}") from None
        return int(self.epoch.numpy())


def has_checkpoint(run_dir):
    return tf.train.latest_checkpoint(str(Path(run_dir) / CHECKPOINT_DIR)) is not None

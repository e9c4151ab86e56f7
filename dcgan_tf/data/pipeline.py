"""The tf.data pipeline: in-memory uint8 images (and labels) -> shuffled float batches in [-1, 1]."""

import numpy as np
import tensorflow as tf

from dcgan_tf.data.decoding import DataError


def check_batch_size(count, batch_size):
    if count < batch_size:
        raise DataError(f"only {count} images for a batch size of {batch_size}: lower --batch-size or add data")


def make_dataset(images, batch_size, seed=0, shuffle=True, labels=None):
    """uint8 images -> batches of float32 in [-1, 1], reshuffled every epoch; with labels
    (one row of 0/1 attribute values per image) batches of (images, float32 labels).

    The pipeline shuffles indices and gathers each batch with numpy, so the images are
    never copied into a graph constant and a memory-mapped array is read lazily.
    Full batches only: one batch shape for XLA, and equal shares for every replica.
    """
    count, size = len(images), images.shape[1]
    check_batch_size(count, batch_size)
    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    indices = indices.batch(batch_size, drop_remainder=True)

    def gather(batch_indices):
        rows = np.sort(batch_indices)
        return [np.asarray(images[rows])] + ([] if labels is None else [np.asarray(labels[rows], np.float32)])

    def to_float(batch, *batch_labels):
        batch = tf.cast(tf.ensure_shape(batch, (batch_size, size, size, 3)), tf.float32) / 127.5 - 1.0
        if labels is None:
            return batch
        return batch, tf.ensure_shape(batch_labels[0], (batch_size, labels.shape[1]))

    kinds = [tf.uint8] + ([] if labels is None else [tf.float32])
    batches = indices.map(lambda i: tuple(tf.numpy_function(gather, [i], kinds, stateful=False)),
                          num_parallel_calls=tf.data.AUTOTUNE)
    batches = batches.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # The data is one in-memory array, not files: multi-worker sharding must split batches.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)

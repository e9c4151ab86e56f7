"""Latent vectors and image conversion shared by training, generation and export.

Latent vectors come from TensorFlow's stateless RNG so the same (seed, n) gives the
same faces in Python, in a tf.function and inside an exported SavedModel.
"""

import tensorflow as tf


def sample(n, latent_dim, seed):
    """n standard-normal latent vectors, a pure function of (n, latent_dim, seed)."""
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0x5EED, tf.int64)])
    return tf.random.stateless_normal(tf.stack([n, latent_dim]), seed=seed)


def to_uint8(images):
    """[-1, 1] floats -> uint8 pixels."""
    images = tf.cast(images, tf.float32)
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)

"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to real and fake
images before the discriminator, in both updates, so a GAN trained on a few thousand
images does not let D memorise them. Written for images in [-1, 1], NHWC.

  --diffaugment color,translation,cutout

With a probability p (adaptive augmentation, dcgan_tf.model.ada) each policy is applied to
each image with probability p instead, as StyleGAN2-ADA's pipeline does.
"""

import tensorflow as tf

from dcgan_tf.model.latent import RANDOM_ALGORITHM
from dcgan_tf.train.distribute import replica_rows


def _draw(shape, seed, low, high, dtype=tf.float32):
    """Per-image random values, drawn for the global batch (see distribute.replica_rows)."""
    return replica_rows(lambda n: tf.random.stateless_uniform([n, *shape[1:]], seed=seed, minval=low, maxval=high,
                                                              dtype=dtype, alg=RANDOM_ALGORITHM), shape[0])


def _uniform(batch, seed, low=0.0, high=1.0):
    return _draw([batch, 1, 1, 1], seed, low, high)


def color(x, seed):
    """Random brightness, saturation and contrast per image."""
    batch = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3, alg=RANDOM_ALGORITHM)
    x = x + (_uniform(batch, seeds[0]) - 0.5)
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * _uniform(batch, seeds[1], 0.0, 2.0) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * _uniform(batch, seeds[2], 0.5, 1.5) + mean


def translation(x, seed, ratio=0.125):
    """Shift each image by up to ratio of its size, filling with zeros (mid-grey)."""
    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    max_shift = tf.cast(tf.cast(height, tf.float32) * ratio + 0.5, tf.int32)
    shifts = _draw([batch, 2], seed, -max_shift, max_shift + 1, tf.int32)
    rows = tf.range(height)[None, :] - shifts[:, :1]  # [batch, height]: source row of each output row
    cols = tf.range(width)[None, :] - shifts[:, 1:]
    valid = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    rows, cols = tf.clip_by_value(rows, 0, height - 1), tf.clip_by_value(cols, 0, width - 1)
    gathered = tf.gather(tf.gather(x, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    return gathered * tf.cast(valid, x.dtype)[..., None]


def cutout(x, seed, ratio=0.5):
    """Zero a random square of half the image size in each image."""
    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    size = tf.cast(tf.cast(height, tf.float32) * ratio + 0.5, tf.int32)
    centres = _draw([batch, 2], seed, 0, height + (1 - size % 2), tf.int32)
    rows = tf.range(height)[None, :] - centres[:, :1] + size // 2
    cols = tf.range(width)[None, :] - centres[:, 1:] + size // 2
    inside = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None, :]
    return x * (1.0 - tf.cast(inside, x.dtype))[..., None]


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


def parse(spec):
    """'color,translation' -> ('color', 'translation'); '' -> ()."""
    names = tuple(name.strip() for name in spec.split(",") if name.strip())
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}; choose from {', '.join(AUGMENTATIONS)}")
    return names


GATE_STREAM = 1 << 20  # folded into a policy's seed for its per-image coin flips


def diff_augment(x, names, seed, p=None):
    """Apply the named augmentations in order, each with its own stateless seed: to every image,
    or with a probability p (a scalar) to each image independently (the others pass unchanged)."""
    for index, name in enumerate(names):
        policy_seed = tf.random.experimental.stateless_fold_in(seed, index, alg=RANDOM_ALGORITHM)
        augmented = AUGMENTATIONS[name](x, policy_seed)
        if p is None:
            x = augmented
        else:
            gate_seed = tf.random.experimental.stateless_fold_in(policy_seed, GATE_STREAM, alg=RANDOM_ALGORITHM)
            x = tf.where(_uniform(tf.shape(x)[0], gate_seed) < p, augmented, x)
    return x

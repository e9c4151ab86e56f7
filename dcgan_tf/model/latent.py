"""Latent vectors and image conversion shared by training, generation and export.

Latent vectors come from TensorFlow's stateless RNG so the same (seed, n) gives the
same faces in Python, in a tf.function and inside an exported SavedModel.
"""

import math

import numpy as np
import tensorflow as tf

# Pinned (TensorFlow's default picks per device), so a seed gives the same faces on every device.
RANDOM_ALGORITHM = "philox"


def _seed(seed):
    return tf.stack([tf.cast(seed, tf.int64), tf.constant(0x5EED, tf.int64)])


def sample(n, latent_dim, seed, truncation=None, first=0):
    """n latent vectors, a pure function of (n, latent_dim, seed, truncation): rows first..first+n-1
    of the seed's stream, so sample(n, first=k) equals sample(k + n)[k:] and a long stream can be
    drawn a batch at a time (see LatentStream).

    With truncation=psi each value is drawn from the normal truncated to [-psi, psi]
    (the "truncation trick": fewer, cleaner faces), by inverting the normal CDF.
    """
    if truncation is not None and not truncation > 0:
        raise ValueError(f"truncation must be positive, got {truncation}")
    # The ops of tf.random.stateless_normal / stateless_uniform with alg=RANDOM_ALGORITHM, the
    # Philox counter advanced to the first value wanted: each counter step gives 4 values.
    start = first * latent_dim
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=_seed(seed))
    counter += tf.constant([start // 4, 0], tf.uint64)
    alg = tf.random.Algorithm.PHILOX.value
    shape = tf.stack([start % 4 + n * latent_dim])
    if truncation is None:
        values = tf.raw_ops.StatelessRandomNormalV2(shape=shape, key=key, counter=counter, alg=alg)
    else:
        edge = 0.5 * math.erfc(truncation / math.sqrt(2))  # P(z < -psi)
        low, high = tf.constant(edge, tf.float32), tf.constant(1.0 - edge, tf.float32)
        uniform = tf.raw_ops.StatelessRandomUniformV2(shape=shape, key=key, counter=counter, alg=alg)
        values = tf.math.ndtri(uniform * (high - low) + low)
    return tf.reshape(values[start % 4:], tf.stack([n, latent_dim]))


class LatentStream:
    """The vectors of sample(n, latent_dim, seed, truncation), drawn only when sliced, so a
    million faces never hold a million latent vectors at once. Works with batching.in_batches."""

    def __init__(self, n, latent_dim, seed, truncation=None):
        self.n, self.latent_dim, self.seed, self.truncation = n, latent_dim, seed, truncation

    def __len__(self):
        return self.n

    def __getitem__(self, rows):
        start, stop, step = rows.indices(self.n)
        if step != 1:
            raise ValueError("a LatentStream is sliced in order, step 1")
        return sample(max(stop - start, 0), self.latent_dim, self.seed, self.truncation, first=start).numpy()


def from_seeds(seeds, latent_dim, truncation=None):
    """One latent vector per seed, each the face `generate.py --n 1 --seed SEED` makes."""
    return np.concatenate([sample(1, latent_dim, seed, truncation).numpy() for seed in seeds])


def walk(seeds, steps, latent_dim, truncation=None, method="slerp"):
    """The walk `generate.py interpolate --seeds ... --steps N` shows: from each seed's face to the next."""
    return interpolate(from_seeds(seeds, latent_dim, truncation), steps, method)


def interpolate(points, steps, method="slerp"):
    """A walk through latent points: `steps` vectors from each point to the next (the last included).

    slerp follows the great circle between the two vectors, keeping their norm typical of
    a Gaussian sample, where a straight line passes through low-norm, washed-out faces.
    """
    points = np.asarray(points, np.float64)
    if len(points) < 2 or steps < 2:
        raise ValueError("interpolate: need at least two points and two steps")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    walk = [_segment(a, b, t, method)[:-1] for a, b in zip(points[:-1], points[1:])]
    return np.concatenate(walk + [points[-1:]]).astype(np.float32)


def _segment(a, b, t, method):
    if method == "linear":
        return (1 - t) * a + t * b
    if method != "slerp":
        raise ValueError(f"interpolate: method must be linear or slerp, got {method!r}")
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:  # (anti)parallel to numerical precision: the line is the arc
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def moved(z, directions, strengths):
    """z moved `strength` units along each named unit direction (one per attribute: latent editing)."""
    return z + sum(strength * directions[name] for name, strength in strengths.items())


def query_points(latent_dim, vector=None):
    """The fixed latent queries of the Udacity project: all 0s, all 0.5s, all 1s, and an optional vector."""
    points = [np.full(latent_dim, value, np.float32) for value in (0.0, 0.5, 1.0)]
    if vector is not None:
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.size != latent_dim:
            raise ValueError(f"the query vector has {vector.size} values, the model's latent space has {latent_dim}")
        if not np.isfinite(vector).all():  # it would be drawn as a black tile
            raise ValueError("the query vector holds NaN or Inf values: give finite numbers")
        points.append(vector)
    return np.stack(points)

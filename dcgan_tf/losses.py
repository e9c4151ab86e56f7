"""GAN losses on discriminator logits, one function pair per loss.

Each returns the per-replica mean over the batch; the train step divides by the
number of replicas itself, so every loss scales the same way under tf.distribute.
"""

import tensorflow as tf


def _bce(logits, target):
    labels = tf.fill(tf.shape(logits), tf.cast(target, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def bce_discriminator(real_logits, fake_logits, label_smoothing=0.0):
    """Real images towards 1 - label_smoothing (one-sided smoothing), fakes towards 0."""
    return _bce(real_logits, 1.0 - label_smoothing) + _bce(fake_logits, 0.0)


def bce_generator(fake_logits):
    """The non-saturating generator loss: -log D(G(z))."""
    return _bce(fake_logits, 1.0)


LOSSES = {
    "bce": (bce_discriminator, bce_generator),
}


def get(name):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]

"""Gradient penalties on the discriminator (the critic), added to its loss.

Both need a per-sample critic: D(x_i) must depend on image i alone, so the gradient of the
batch's summed output with respect to image i is that image's own gradient. BatchNorm in D
mixes the batch and breaks this, so a penalty is only accepted with --d-norm none or layer
(dcgan_tf.config). Both are computed on the images D is trained on, after DiffAugment, as
StyleGAN2-ADA does for R1.
"""

import tensorflow as tf

PENALTIES = ("none", "wgan-gp", "r1")


def _squared_gradient_norms(critic, points):
    with tf.GradientTape() as tape:
        tape.watch(points)
        outputs = critic(points)
    grads = tf.cast(tape.gradient(outputs, points), tf.float32)  # of the summed outputs: per-sample gradients
    return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])


def wgan_gp(critic, real, fake, mix):
    """(||grad D(x_hat)|| - 1)^2 at x_hat = mix * real + (1 - mix) * fake (Gulrajani et al. 2017);
    mix is [batch, 1, 1, 1] uniform in [0, 1]."""
    points = mix * real + (1.0 - mix) * tf.cast(fake, real.dtype)
    return tf.reduce_mean(tf.square(tf.sqrt(_squared_gradient_norms(critic, points) + 1e-12) - 1.0))


def r1(critic, real):
    """||grad D(x)||^2 / 2 on real images (Mescheder et al. 2018)."""
    return 0.5 * tf.reduce_mean(_squared_gradient_norms(critic, real))

"""GAN losses on discriminator logits, one function pair per loss, and the gradient penalties.

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


def hinge_discriminator(real_logits, fake_logits, label_smoothing=0.0):
    """max(0, 1 - D(x)) + max(0, 1 + D(G(z))) (Lim & Ye 2017; SNGAN, BigGAN)."""
    margin = 1.0 - label_smoothing
    return tf.reduce_mean(tf.nn.relu(margin - real_logits)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))


def hinge_generator(fake_logits):
    return -tf.reduce_mean(fake_logits)


def lsgan_discriminator(real_logits, fake_logits, label_smoothing=0.0):
    """Least squares (Mao et al. 2017): (D(x) - 1)^2 / 2 + D(G(z))^2 / 2."""
    target = 1.0 - label_smoothing
    return 0.5 * tf.reduce_mean(tf.square(real_logits - target)) + 0.5 * tf.reduce_mean(tf.square(fake_logits))


def lsgan_generator(fake_logits):
    return 0.5 * tf.reduce_mean(tf.square(fake_logits - 1.0))


def wgan_discriminator(real_logits, fake_logits, label_smoothing=0.0):
    """The critic's Wasserstein loss, D(G(z)) - D(x); pair it with --gp wgan-gp (Gulrajani et al. 2017)."""
    return tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits)


def wgan_generator(fake_logits):
    return -tf.reduce_mean(fake_logits)


LOSSES = {
    "bce": (bce_discriminator, bce_generator),
    "hinge": (hinge_discriminator, hinge_generator),
    "lsgan": (lsgan_discriminator, lsgan_generator),
    "wgan": (wgan_discriminator, wgan_generator),
}


def get(name):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


# --- gradient penalties on the discriminator (the critic), added to its loss -----------------
# Both need a per-sample critic: D(x_i) must depend on image i alone, so the gradient of the
# batch's summed output with respect to image i is that image's own gradient. BatchNorm in D
# mixes the batch and breaks this, so a penalty is only accepted with --d-norm none or layer
# (dcgan_tf.config, whose PENALTIES names them). Both are computed on the images D is trained
# on, after DiffAugment, as StyleGAN2-ADA does for R1.


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

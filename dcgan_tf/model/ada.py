"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data").

On a small training set D memorises the real images and grows sure of them. ADA measures
that as r_t = E[sign(D(real))] and feeds it back into p, the probability with which each
augmentation is applied to each image D sees, real or fake (dcgan_tf.model.augment): p starts
at 0, rises while r_t is above a target (0.6 in the paper) and falls while it is below, by
as much per adjustment as lets it go from 0 to 1 in `kimg` thousand images.

The train step adds the signs of D's real logits to the accumulators here, on the device;
the AdaptAugmentation callback reads them every `interval` steps, moves p and starts the
next interval, so the host reads nothing in between. Under tf.distribute every replica
accumulates its own share (on-read variables) and reading sums the shares: r_t is the
mean over the global batch. p, the last r_t and the accumulators are variables of the
GAN, so a checkpoint holds them and a resumed run carries on where it stopped.
"""

import keras
import numpy as np
import tensorflow as tf

LOG_KEYS = ("augment_p", "ada_r_t")  # what the train step logs: the p it used, the last r_t measured


def _scalar(name, summed=False):
    """A float32 scalar variable; a summed one keeps one share per replica, summed when read."""
    extra = dict(aggregation="sum", synchronization="on_read") if summed else {}
    return keras.Variable(0.0, dtype="float32", trainable=False, name=name, **extra)


class AdaptiveAugment(keras.layers.Layer):
    """The state of adaptive augmentation: p, the last r_t and the sums of the current interval."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.p = _scalar("augment_p")
        self.r_t = _scalar("ada_r_t")
        self.sign_sum = _scalar("real_sign_sum", summed=True)
        self.count = _scalar("real_count", summed=True)
        self.built = True  # the variables exist from the start, for checkpoint restores

    def accumulate(self, real_logits):
        """In the train step: add the signs of D's logits on (augmented) real images."""
        signs = tf.sign(tf.cast(real_logits, tf.float32))
        self.sign_sum.assign_add(tf.reduce_sum(signs))
        self.count.assign_add(tf.cast(tf.size(signs), tf.float32))

    def adjust(self, target, kimg):
        """On the host, between steps: r_t over the images accumulated since the last call, and
        p moved towards keeping r_t at target by count / (kimg * 1000), within [0, 1]."""
        count = float(self.count.numpy())
        if count == 0:
            return
        r_t = float(self.sign_sum.numpy()) / count
        step = np.sign(r_t - target) * count / (kimg * 1000)
        self.p.assign(float(np.clip(float(self.p.numpy()) + step, 0.0, 1.0)))
        self.r_t.assign(r_t)
        self.sign_sum.assign(0.0)
        self.count.assign(0.0)

    def logs(self):
        return {"augment_p": tf.identity(self.p), "ada_r_t": tf.identity(self.r_t)}


class AdaptAugmentation(keras.callbacks.Callback):
    """Adjusts the GAN's AdaptiveAugment every `interval` training steps (counted from the
    run's first step, so a resumed run keeps the same schedule)."""

    def __init__(self, interval, target, kimg):
        super().__init__()
        self.interval, self.target, self.kimg = int(interval), float(target), float(kimg)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.model.step_count()
        self.next_adjustment = (self.epoch_start // self.interval + 1) * self.interval

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1 batch is the last step of the execution.
        step = self.epoch_start + batch + 1
        if step >= self.next_adjustment:
            self.model.ada.adjust(self.target, self.kimg)
            self.next_adjustment = (step // self.interval + 1) * self.interval

"""The generator's exponential moving average (EMA): the weights that samples, evaluation
and exports use.

A GAN generator's weights wander from step to step around a good solution; their running
average makes smoother, better faces (Yazici et al. 2019, "The unusual effectiveness of
averaging in GAN training"; StyleGAN's G_ema). The average is a second copy of the
generator, a tracked sub-model of the GAN, so checkpoints save and restore it like any
other weights and a loaded run can read it back without building the training GAN.

After each generator update the average moves towards the new weights with decay
min(decay, t / (t + 10)) at step t, the warm-up of tf.train.ExponentialMovingAverage:
the first update starts the average at the trained weights, and the barely-trained early
weights are forgotten quickly (with a constant 0.999 they would still weigh 21% after
1,560 steps). BatchNorm statistics are copied each step, as StyleGAN2 copies buffers; but
they are the raw generator's, whose activations differ from the average's, so at the end of
each epoch the run replaces them with the average's own ("standing statistics", as BigGAN
computes them): StandingStatistics, measured better on held-out FID (docs/stabilisers.md).
"""

import keras
import tensorflow as tf

WARMUP_STEPS = 10.0


def averaged_copy(generator):
    """A copy of the generator (same layers, same weights) to hold the average; not trainable."""
    copy = keras.models.clone_model(generator)
    copy.set_weights(generator.get_weights())
    copy.trainable = False
    return copy


def decay_at(decay, step):
    step = tf.cast(step, tf.float32)
    return tf.minimum(tf.constant(decay, tf.float32), step / (step + WARMUP_STEPS))


def update(average, generator, decay, step):
    """One EMA update of `average` towards `generator`'s current weights (see the module doc)."""
    rate = decay_at(decay, step)

    def apply(*_):
        for target, source in zip(average.weights, generator.weights):
            if source.trainable:
                rate_ = tf.cast(rate, target.dtype)
                target.assign(rate_ * target + (1.0 - rate_) * tf.cast(source, target.dtype))
            else:
                target.assign(source)

    # Written in cross-replica context: under tf.distribute one value goes to every replica's
    # copy (G's weights already agree after the update), where a replica-context write to a
    # mirrored variable would need an aggregation the cloned layers do not declare.
    replica = tf.distribute.get_replica_context()
    if replica is None:
        apply()
    else:
        replica.merge_call(apply)


class StandingStatistics:
    """Sets the BatchNorm moving statistics of `average` to the mean batch statistics of its own
    activations over batches of its inputs (z, or [z, attributes]), in training mode as in training.
    Built once per generator, so a run that recomputes them every epoch traces the pass once."""

    def __init__(self, average):
        self.average = average
        self.norms = [layer for layer in average.layers if isinstance(layer, keras.layers.BatchNormalization)]
        if not self.norms:
            return
        probe = keras.Model(average.inputs, [layer.input for layer in self.norms])

        @tf.function  # an eager pass per batch costs several times as much
        def moments(inputs):
            return [tf.nn.moments(tf.cast(x, tf.float32), axes=list(range(len(x.shape) - 1)))
                    for x in probe(inputs, training=True)]
        self.moments = moments

    def __call__(self, batches):
        if not self.norms:
            return
        sums = [[0.0, 0.0] for _ in self.norms]
        for inputs in batches:
            inputs = inputs if isinstance(inputs, list) else [inputs]  # the probe's inputs are a list
            for total, (mean, variance) in zip(sums, self.moments(inputs)):
                total[0] += mean
                total[1] += variance
        # The probe's training-mode pass also moved the statistics by the layers' momentum: overwrite them.
        for layer, (mean, variance) in zip(self.norms, sums):
            layer.moving_mean.assign(tf.cast(mean / len(batches), layer.moving_mean.dtype))
            layer.moving_variance.assign(tf.cast(variance / len(batches), layer.moving_variance.dtype))

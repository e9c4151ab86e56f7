"""Generator and discriminator, built from a Config.

Initialisation follows the DCGAN paper: weights N(0, 0.02),
biases 0, BatchNorm gamma N(1, 0.02). Under a mixed-precision policy the generator's
tanh output and the discriminator's logit stay float32 so the losses are computed in
full precision.
"""

import keras
import tensorflow as tf
from keras import layers

WEIGHT_STDDEV = 0.02


@keras.saving.register_keras_serializable(package="dcgan_tf")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras BatchNormalization whose training pass runs TensorFlow's fused kernel
    (FusedBatchNormV3: oneDNN on CPU, cuDNN on GPU). Keras 3 computes the batch statistics
    and the normalisation as separate ops; on keras64's 32x64x64x512 generator activations
    forward + backward took 0.12 s fused against 0.30 s here. Same variables and
    semantics (biased batch variance in the moving average), so checkpoints are
    interchangeable with the Keras layer. It cannot synchronise replicas: under a
    multi-replica strategy the models use Keras' synchronized layer instead.
    """

    def call(self, inputs, training=None, mask=None):
        if not training or len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, self.gamma, self.beta, epsilon=self.epsilon,
                                                             is_training=True)
        count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
        variance = variance * (count - 1.0) / count  # the op returns the unbiased variance
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        return tf.cast(y, inputs.dtype)


def _init(seed):
    return keras.initializers.RandomNormal(0.0, WEIGHT_STDDEV, seed=seed)


def _batch_norm(seed, fused):
    gamma = keras.initializers.RandomNormal(1.0, WEIGHT_STDDEV, seed=seed)
    if fused:
        return FusedBatchNormalization(gamma_initializer=gamma)
    # synchronized: under a tf.distribute strategy the statistics are those of the global
    # batch, so N replicas train the same model as one device.
    return layers.BatchNormalization(gamma_initializer=gamma, synchronized=True)


def _activation(name):
    return layers.ReLU() if name == "relu" else layers.LeakyReLU(negative_slope=0.2)


def build_generator(cfg, seed=None, fused_batchnorm=None):
    """fused_batchnorm: None follows cfg.fused_batchnorm; False for a multi-replica strategy
    or a model that must load with Keras alone."""
    seed = cfg.seed if seed is None else seed
    fused = cfg.fused_batchnorm if fused_batchnorm is None else fused_batchnorm
    dense_filters = cfg.conv_dim * cfg.g_dense_mult
    model = keras.Sequential(name="generator")
    model.add(keras.Input((cfg.latent_dim,)))
    model.add(layers.Dense(cfg.g_start * cfg.g_start * dense_filters, kernel_initializer=_init(seed)))
    model.add(layers.Reshape((cfg.g_start, cfg.g_start, dense_filters)))
    if cfg.g_dense_norm:
        model.add(_batch_norm(seed + 1, fused))
        model.add(_activation(cfg.g_activation))
    for i, mult in enumerate(cfg.g_mult):
        model.add(layers.Conv2DTranspose(cfg.conv_dim * mult, cfg.kernel, strides=2, padding="same",
                                         kernel_initializer=_init(seed + 2 + i)))
        model.add(_batch_norm(seed + 20 + i, fused))
        model.add(_activation(cfg.g_activation))
    if cfg.g_out == "conv":
        model.add(layers.Conv2D(3, 5, padding="same", kernel_initializer=_init(seed + 40)))
    else:
        model.add(layers.Conv2DTranspose(3, cfg.kernel, strides=2, padding="same", kernel_initializer=_init(seed + 40)))
    model.add(layers.Activation("tanh", dtype="float32"))
    return model


def _d_norm(kind, seed, fused):
    """D's normalisation layer: BatchNorm mixes the batch; LayerNorm (over each image's
    features) and none keep D per-sample, as a gradient penalty needs."""
    if kind == "batch":
        return _batch_norm(seed, fused)
    return layers.LayerNormalization(axis=(1, 2, 3)) if kind == "layer" else None


def build_discriminator(cfg, seed=None, fused_batchnorm=None):
    seed = (cfg.seed if seed is None else seed) + 100
    fused = cfg.fused_batchnorm if fused_batchnorm is None else fused_batchnorm

    def weighted(layer, **kwargs):  # kwargs: the wrapper's own dtype, so a float32 logit stays float32
        return layers.SpectralNormalization(layer, **kwargs) if cfg.spectral_norm else layer

    model = keras.Sequential(name="discriminator")
    model.add(keras.Input((cfg.image_size, cfg.image_size, 3)))
    for i, mult in enumerate(cfg.d_mult):
        model.add(weighted(layers.Conv2D(cfg.conv_dim * mult, cfg.kernel, strides=2, padding="same",
                                         kernel_initializer=_init(seed + i))))
        norm = _d_norm(cfg.d_norm, seed + 20 + i, fused) if i > 0 else None  # none on the input layer (DCGAN paper)
        if norm is not None:
            model.add(norm)
        model.add(layers.LeakyReLU(negative_slope=0.2))
    model.add(layers.Flatten())
    if cfg.d_dropout:
        model.add(layers.Dropout(cfg.d_dropout, seed=seed + 40))
    model.add(weighted(layers.Dense(1, kernel_initializer=_init(seed + 41), dtype="float32"), dtype="float32"))
    return model


def sizes(cfg):
    """(weights, activations per image) of G and D, from the config alone: the weight count is
    exact (spectral norm's vectors aside); activations count each layer's outputs, D's three
    times (on the real batch, the fake batch and again for G's update)."""
    weights, g_values, d_values = 0, 0, 0
    side, channels = cfg.g_start, cfg.conv_dim * cfg.g_dense_mult
    weights += (cfg.latent_dim + 1) * side * side * channels
    if cfg.g_dense_norm:
        weights += 4 * channels
    g_values += side * side * channels * (3 if cfg.g_dense_norm else 1)
    widths = [cfg.conv_dim * mult for mult in cfg.g_mult] + [3]
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        kernel = 5 if last and cfg.g_out == "conv" else cfg.kernel
        side = side if last and cfg.g_out == "conv" else side * 2
        weights += kernel * kernel * channels * width + width * (1 if last else 5)  # BatchNorm: 4 per channel
        g_values += side * side * width * (2 if last else 3)  # conv, BatchNorm, activation (tanh)
        channels = width
    side, channels = cfg.image_size, 3
    for i, mult in enumerate(cfg.d_mult):
        width, side = cfg.conv_dim * mult, -(-side // 2)
        norm = cfg.d_norm if i else "none"  # BatchNorm: 4 per channel; LayerNorm: 2 per feature
        weights += cfg.kernel * cfg.kernel * channels * width + width
        weights += {"batch": 4 * width, "layer": 2 * side * side * width, "none": 0}[norm]
        d_values += side * side * width * (2 if norm == "none" else 3)
        channels = width
    weights += side * side * channels + 1
    return weights, g_values + 3 * (d_values + cfg.image_size ** 2 * 3)


def training_bytes(cfg):
    """About the memory training needs beyond TensorFlow's own (float32): each weight with its
    gradient, Adam's two moments and the EMA copy, and the activations of one batch."""
    weights, activations = sizes(cfg)
    return 4 * (5 * weights + cfg.batch_size * activations)

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
    or a model that must load with Keras alone.

    With cfg.condition the generator takes [z, attributes] (inputs named so) and reads
    the attribute vector, 1 present and 0 absent, concatenated to z before its Dense layer.
    """
    seed = cfg.seed if seed is None else seed
    fused = cfg.fused_batchnorm if fused_batchnorm is None else fused_batchnorm
    stack = _generator_layers(cfg, seed, fused)
    if cfg.condition:
        z = keras.Input((cfg.latent_dim,), name="z")
        attributes = keras.Input((len(cfg.condition),), name="attributes")
        return keras.Model([z, attributes], _apply(stack, layers.Concatenate()([z, attributes])), name="generator")
    model = keras.Sequential(name="generator")
    model.add(keras.Input((cfg.latent_dim,)))
    for layer in stack:
        model.add(layer)
    return model


def _apply(stack, x):
    for layer in stack:
        x = layer(x)
    return x


def _generator_layers(cfg, seed, fused):
    dense_filters = cfg.conv_dim * cfg.g_dense_mult
    stack = [layers.Dense(cfg.g_start * cfg.g_start * dense_filters, kernel_initializer=_init(seed)),
             layers.Reshape((cfg.g_start, cfg.g_start, dense_filters))]
    if cfg.g_dense_norm:
        stack += [_batch_norm(seed + 1, fused), _activation(cfg.g_activation)]
    for i, mult in enumerate(cfg.g_mult):
        stack += [layers.Conv2DTranspose(cfg.conv_dim * mult, cfg.kernel, strides=2, padding="same",
                                         kernel_initializer=_init(seed + 2 + i)),
                  _batch_norm(seed + 20 + i, fused),
                  _activation(cfg.g_activation)]
    if cfg.g_out == "conv":
        stack.append(layers.Conv2D(3, 5, padding="same", kernel_initializer=_init(seed + 40)))
    else:
        stack.append(layers.Conv2DTranspose(3, cfg.kernel, strides=2, padding="same", kernel_initializer=_init(seed + 40)))
    stack.append(layers.Activation("tanh", dtype="float32"))
    return stack


def generator_weight_count(cfg):
    """The number of weights build_generator(cfg) makes, counted from cfg without building it
    (a loader checks a config's size before anything is allocated)."""
    dense_filters = cfg.conv_dim * cfg.g_dense_mult
    units = cfg.g_start * cfg.g_start * dense_filters
    count = (cfg.latent_dim + len(cfg.condition) + 1) * units
    batch_norm = lambda channels: 4 * channels  # gamma, beta, moving mean and variance
    count += batch_norm(dense_filters) if cfg.g_dense_norm else 0
    channels = dense_filters
    for mult in cfg.g_mult:
        count += (cfg.kernel * cfg.kernel * channels + 1) * cfg.conv_dim * mult + batch_norm(cfg.conv_dim * mult)
        channels = cfg.conv_dim * mult
    out_kernel = 5 if cfg.g_out == "conv" else cfg.kernel
    return count + (out_kernel * out_kernel * channels + 1) * 3


def _d_norm(kind, seed, fused):
    """D's normalisation layer: BatchNorm mixes the batch; LayerNorm (over each image's
    features) and none keep D per-sample, as a gradient penalty needs."""
    if kind == "batch":
        return _batch_norm(seed, fused)
    return layers.LayerNormalization(axis=(1, 2, 3)) if kind == "layer" else None


def build_discriminator(cfg, seed=None, fused_batchnorm=None):
    """With cfg.condition, D takes [images, attributes] and sees the attributes as cfg.d_condition says:

    - "projection" (Miyato & Koyama 2018, "cGANs with Projection Discriminator"): the logit is
      psi(phi(x)) + <W y, phi(x)>, phi(x) D's features before its last Dense layer psi and W y
      a learned embedding of the attribute vector y: for each attribute present, D adds how
      well the image's features match that attribute.
    - "concat": y joins the image as constant input channels, one per attribute (the
      conditional GAN of Mirza & Osindero 2014 on a convolutional D).
    """
    seed = (cfg.seed if seed is None else seed) + 100
    fused = cfg.fused_batchnorm if fused_batchnorm is None else fused_batchnorm
    trunk, head = _discriminator_layers(cfg, seed, fused)
    if not cfg.condition:
        model = keras.Sequential(name="discriminator")
        model.add(keras.Input((cfg.image_size, cfg.image_size, 3)))
        for layer in [*trunk, head]:
            model.add(layer)
        return model
    size, count = cfg.image_size, len(cfg.condition)
    images = keras.Input((size, size, 3), name="images")
    attributes = keras.Input((count,), name="attributes")
    if cfg.d_condition == "concat":
        maps = layers.Reshape((size, size, count))(layers.RepeatVector(size * size)(attributes))
        features = _apply(trunk, layers.Concatenate()([images, maps]))
        return keras.Model([images, attributes], head(features), name="discriminator")
    features = _apply(trunk, images)
    embedding = _weighted(cfg, layers.Dense(features.shape[-1], use_bias=False, kernel_initializer=_init(seed + 42)))
    projection = layers.Dot(axes=1, dtype="float32")([embedding(attributes), features])
    return keras.Model([images, attributes], layers.Add(dtype="float32")([head(features), projection]),
                       name="discriminator")


def _weighted(cfg, layer, **kwargs):
    """The layer, spectrally normalised with cfg.spectral_norm; kwargs: the wrapper's own dtype,
    so a float32 logit stays float32."""
    return layers.SpectralNormalization(layer, **kwargs) if cfg.spectral_norm else layer


def _discriminator_layers(cfg, seed, fused):
    """(the feature layers phi: one stride-2 Conv2D per d_mult entry, Flatten, Dropout; the logit layer psi)."""
    trunk = []
    for i, mult in enumerate(cfg.d_mult):
        trunk.append(_weighted(cfg, layers.Conv2D(cfg.conv_dim * mult, cfg.kernel, strides=2, padding="same",
                                                  kernel_initializer=_init(seed + i))))
        norm = _d_norm(cfg.d_norm, seed + 20 + i, fused) if i > 0 else None  # none on the input layer (DCGAN paper)
        if norm is not None:
            trunk.append(norm)
        trunk.append(layers.LeakyReLU(negative_slope=0.2))
    trunk.append(layers.Flatten())
    if cfg.d_dropout:
        trunk.append(layers.Dropout(cfg.d_dropout, seed=seed + 40))
    head = _weighted(cfg, layers.Dense(1, kernel_initializer=_init(seed + 41), dtype="float32"), dtype="float32")
    return trunk, head


def sizes(cfg):
    """(weights, activations per image) of G and D, from the config alone: the weight count is
    exact (spectral norm's vectors aside); activations count each layer's outputs, D's three
    times (on the real batch, the fake batch and again for G's update)."""
    weights, g_values, d_values = 0, 0, 0
    count = len(cfg.condition)  # a conditional model's attributes: G's Dense and D's projection or input read them
    side, channels = cfg.g_start, cfg.conv_dim * cfg.g_dense_mult
    weights += (cfg.latent_dim + count + 1) * side * side * channels
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
    side, channels = cfg.image_size, 3 + (count if cfg.d_condition == "concat" else 0)
    for i, mult in enumerate(cfg.d_mult):
        width, side = cfg.conv_dim * mult, -(-side // 2)
        norm = cfg.d_norm if i else "none"  # BatchNorm: 4 per channel; LayerNorm: 2 per feature
        weights += cfg.kernel * cfg.kernel * channels * width + width
        weights += {"batch": 4 * width, "layer": 2 * side * side * width, "none": 0}[norm]
        d_values += side * side * width * (2 if norm == "none" else 3)
        channels = width
    weights += side * side * channels * (1 + (count if cfg.d_condition == "projection" else 0)) + 1
    return weights, g_values + 3 * (d_values + cfg.image_size ** 2 * 3)


def training_bytes(cfg):
    """About the memory training needs beyond TensorFlow's own (float32): each weight with its
    gradient, Adam's two moments and the EMA copy, and the activations of one batch."""
    weights, activations = sizes(cfg)
    return 4 * (5 * weights + cfg.batch_size * activations)

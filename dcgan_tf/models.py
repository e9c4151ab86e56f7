"""Generator and discriminator, built from a Config.

Initialisation follows the DCGAN paper (and the seed projects): weights N(0, 0.02),
biases 0, BatchNorm gamma N(1, 0.02). Under a mixed-precision policy the generator's
tanh output and the discriminator's logit stay float32 so the losses are computed in
full precision.
"""

import keras
from keras import layers

WEIGHT_STDDEV = 0.02


def _init(seed):
    return keras.initializers.RandomNormal(0.0, WEIGHT_STDDEV, seed=seed)


def _batch_norm(seed):
    # synchronized: under a tf.distribute strategy the statistics are those of the global
    # batch, so N replicas train the same model as one device (no effect on one device).
    return layers.BatchNormalization(gamma_initializer=keras.initializers.RandomNormal(1.0, WEIGHT_STDDEV, seed=seed),
                                     synchronized=True)


def _activation(name):
    return layers.ReLU() if name == "relu" else layers.LeakyReLU(negative_slope=0.2)


def build_generator(cfg, seed=None):
    seed = cfg.seed if seed is None else seed
    dense_filters = cfg.conv_dim * cfg.g_dense_mult
    model = keras.Sequential(name="generator")
    model.add(keras.Input((cfg.latent_dim,)))
    model.add(layers.Dense(cfg.g_start * cfg.g_start * dense_filters, kernel_initializer=_init(seed)))
    model.add(layers.Reshape((cfg.g_start, cfg.g_start, dense_filters)))
    if cfg.g_dense_norm:
        model.add(_batch_norm(seed + 1))
        model.add(_activation(cfg.g_activation))
    for i, mult in enumerate(cfg.g_mult):
        model.add(layers.Conv2DTranspose(cfg.conv_dim * mult, cfg.kernel, strides=2, padding="same",
                                         kernel_initializer=_init(seed + 2 + i)))
        model.add(_batch_norm(seed + 20 + i))
        model.add(_activation(cfg.g_activation))
    if cfg.g_out == "conv":
        model.add(layers.Conv2D(3, 5, padding="same", kernel_initializer=_init(seed + 40)))
    else:
        model.add(layers.Conv2DTranspose(3, cfg.kernel, strides=2, padding="same", kernel_initializer=_init(seed + 40)))
    model.add(layers.Activation("tanh", dtype="float32"))
    return model


def build_discriminator(cfg, seed=None):
    seed = (cfg.seed if seed is None else seed) + 100
    normalise = layers.SpectralNormalization if cfg.spectral_norm else (lambda layer: layer)
    model = keras.Sequential(name="discriminator")
    model.add(keras.Input((cfg.image_size, cfg.image_size, 3)))
    for i, mult in enumerate(cfg.d_mult):
        model.add(normalise(layers.Conv2D(cfg.conv_dim * mult, cfg.kernel, strides=2, padding="same",
                                          kernel_initializer=_init(seed + i))))
        if i > 0:  # as in the DCGAN paper, no BatchNorm on the input layer
            model.add(_batch_norm(seed + 20 + i))
        model.add(layers.LeakyReLU(negative_slope=0.2))
    model.add(layers.Flatten())
    if cfg.d_dropout:
        model.add(layers.Dropout(cfg.d_dropout, seed=seed + 40))
    model.add(normalise(layers.Dense(1, kernel_initializer=_init(seed + 41), dtype="float32")))
    return model

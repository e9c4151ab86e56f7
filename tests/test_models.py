import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_tf.config import preset
from dcgan_tf.model.networks import (
    FusedBatchNormalization,
    build_discriminator,
    build_generator,
)

# Parameter counts worked out by hand from the layer list (keras64: Dense 1,056,768 +
# ConvT 262,272 + 524,544 + 2,097,664 + BN 3,584 + Conv2D 38,403).
EXPECTED = {
    "keras64": ((64, 64, 3), 3_983_235, 405_825),
    "dcgan32": ((32, 32, 3), 2_966_723, 2_762_177),
    "dcgan64": ((64, 64, 3), 3_587_267, 2_768_321),  # G: Dense 827,392 + BN 2,048 + ConvT 2,097,408 + ...
    "tiny": ((16, 16, 3), 11_219, 2_777),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_shapes_and_parameter_counts(name):
    cfg = preset(name)
    shape, g_params, d_params = EXPECTED[name]
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    assert generator.output_shape == (None, *shape)
    assert discriminator.output_shape == (None, 1)
    assert (generator.count_params(), discriminator.count_params()) == (g_params, d_params)


def test_conv_dim_scales_widths():
    small, wide = build_generator(preset("dcgan32", conv_dim=32)), build_generator(preset("dcgan32", conv_dim=128))
    assert wide.count_params() > 3 * small.count_params()


@pytest.mark.parametrize("build", [build_generator, build_discriminator])
def test_dcgan_initialisation(build):
    model = build(preset("keras64"))

    def values(kind):
        return np.concatenate([w.numpy().ravel() for w in model.weights if kind in w.path])
    kernels, biases, gammas = values("kernel"), values("bias"), values("gamma")
    assert abs(kernels.mean()) < 1e-3 and kernels.std() == pytest.approx(0.02, rel=0.02)
    assert np.all(biases == 0)
    assert gammas.mean() == pytest.approx(1.0, abs=0.005) and gammas.std() == pytest.approx(0.02, rel=0.15)


def test_another_image_size_builds_that_size():
    generator = build_generator(preset("dcgan32", image_size=64))
    assert generator.output_shape == (None, 64, 64, 3)
    assert build_discriminator(preset("dcgan32", image_size=64)).output_shape == (None, 1)


def test_fused_batchnorm_matches_the_keras_layer():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (8, 6, 6, 5)), tf.float32)
    weights = tf.constant(rng.normal(size=x.shape), tf.float32)  # a loss whose gradients are far from 0
    layers = [FusedBatchNormalization(), keras.layers.BatchNormalization()]
    results = []
    for layer in layers:
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * weights)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance, layer(x, training=False)])
    for fused, plain in zip(*results):
        np.testing.assert_allclose(np.asarray(fused), np.asarray(plain), rtol=1e-4, atol=1e-4)
    assert float(tf.reduce_min(results[0][5])) > 1.05  # the moving variance moved towards the batch variance, 9


@pytest.mark.parametrize("name, overrides", [
    ("keras64", {}), ("dcgan32", {}), ("tiny", {}), ("tiny", {"g_dense_norm": True, "g_out": "deconv", "g_start": 2}),
    ("keras64", {"image_size": 40, "d_dropout": 0.0, "kernel": 3}), ("tiny", {"d_norm": "layer"}),
    ("tiny", {"d_norm": "none"}),
])
def test_sizes_from_the_config_match_the_built_models(name, overrides):
    """models.sizes (the memory check of a run, before anything is built) follows the builders."""
    from dcgan_tf.model.networks import sizes
    cfg = preset(name, **overrides)
    generator, discriminator = build_generator(cfg), build_discriminator(cfg)
    weights, activations = sizes(cfg)
    assert weights == generator.count_params() + discriminator.count_params()
    outputs = sum(int(np.prod(layer.output.shape[1:])) for model in (generator, discriminator) for layer in model.layers)
    assert outputs <= activations <= 4 * outputs

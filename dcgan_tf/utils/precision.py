"""Where the project computes in which precision, each setting scoped to the code it is for.

- `policy`: a run's --mixed-precision applies to its generator and discriminator only. Keras
  takes a layer's compute dtype from the global policy when the layer is built; the FID
  Inception that --eval-every builds during training, attribute classifiers and exports must
  compute in float32 whatever the run trains in, or their scores would depend on it.
- `tf32_disabled`: on NVIDIA Ampere and later GPUs TensorFlow computes float32 convolutions and
  matmuls in TF32 by default: their inputs keep 10 of float32's 23 mantissa bits, so a product
  is off by up to about 1e-3 of its size instead of 1e-7. The FID features are claimed to match
  the reference network to 2e-5 and an export is checked against its generator; neither holds
  in TF32. Training keeps TF32 (its speed, and its results need no such agreement).
"""

import contextlib

import keras
import tensorflow as tf


@contextlib.contextmanager
def policy(name):
    """Layers built inside compute in `name`; the global policy is restored on leaving."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@contextlib.contextmanager
def tf32_disabled():
    """float32 convolutions and matmuls in full float32 inside (also as a decorator); the previous
    setting after."""
    previous = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(previous)

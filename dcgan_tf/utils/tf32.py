"""TensorFloat-32 off where the project claims float32 results.

On NVIDIA Ampere and later GPUs TensorFlow computes float32 convolutions and matmuls in
TF32 by default: their inputs keep 10 of float32's 23 mantissa bits, so a product is off by
up to about 1e-3 of its size instead of 1e-7. The FID features are claimed to match the
reference network to 2e-5 and an export is checked against its generator; neither holds
in TF32. Training keeps TF32 (its speed, and its results need no such agreement), so the
setting is switched off around those computations only, not for the whole process.
"""

import contextlib


@contextlib.contextmanager
def disabled():
    """float32 convolutions and matmuls in full float32 inside (also as a decorator); the previous
    setting after."""
    import tensorflow as tf
    previous = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(previous)

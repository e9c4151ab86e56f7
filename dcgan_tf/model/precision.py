"""The mixed-precision policy of a run's GAN, and of nothing else.

Keras takes a layer's compute dtype from the global policy when the layer is built. A run's
--mixed-precision applies to the generator and discriminator only: the FID Inception that
--eval-every builds during training, attribute classifiers and exports must compute in
float32 whatever the run trains in, or their scores would depend on the run's precision.
"""

import contextlib

import keras


@contextlib.contextmanager
def policy(name):
    """Layers built inside compute in `name`; the global policy is restored on leaving."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)

"""dcgan-tf: a Keras 3 / TensorFlow DCGAN that learns to generate faces."""

__version__ = "0.2.0"

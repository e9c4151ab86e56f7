"""Training data: image sources and crops, attribute labels, the tf.data pipeline, the built-in faces, CelebA's download."""

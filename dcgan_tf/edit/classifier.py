"""An attribute classifier: a small Keras CNN that tells which of CelebA's 40 attributes a face has.

It is the meter for latent editing and vector arithmetic (dcgan_tf.editing): it labels
generated faces. It trains on real faces at the generator's resolution, with the held-out
images (dcgan_tf.data.split_part) kept out, and is scored on them against the
majority-class baseline, since CelebA is very imbalanced (93% of faces wear no glasses).

The saved model takes uint8 pixel values (as floats) and gives one logit per attribute;
its last layer carries the attribute names, so a .keras file says what it measures.
"""

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from dcgan_tf.data.labels import attribute_indices
from dcgan_tf.utils.batches import in_batches
from dcgan_tf.utils.files import regular_file, written_atomically
from dcgan_tf.utils.keras_files import safe_mode_refusal


@keras.saving.register_keras_serializable(package="dcgan_tf")
class AttributeHead(layers.Dense):
    """Dense logits, one per attribute, that remember the attributes' names."""

    def __init__(self, names, **kwargs):
        kwargs.pop("units", None)  # from_config passes Dense's units back; names decide them
        super().__init__(len(names), **kwargs)
        self.names = tuple(names)

    def get_config(self):
        return {**super().get_config(), "names": list(self.names)}


def check_image_size(image_size):
    """ValueError unless the classifier can see image_size faces: 4 * 2**k >= 8 (its blocks halve down to 4x4)."""
    if image_size < 8 or 4 * 2 ** int(math.log2(image_size // 4)) != image_size:
        raise ValueError(f"--image-size {image_size}: the classifier needs an image size of 4 * 2**k >= 8 "
                         "(8, 16, 32, 64, 128 ...), the generator's resolution")


def build_classifier(image_size, names, width=32, seed=0):
    """Conv blocks (3x3, 3x3 stride 2, BatchNorm, ReLU) down to 4x4, average pooling, logits."""
    check_image_size(image_size)
    blocks = int(math.log2(image_size // 4))
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    x = layers.RandomFlip("horizontal", seed=seed)(inputs)  # active in training only
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    for block in range(blocks):
        for strides in (1, 2):
            x = layers.Conv2D(width * 2 ** block, 3, strides=strides, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3, seed=seed)(x)
    return keras.Model(inputs, AttributeHead(names, name="attributes")(x), name="attribute_classifier")


def train_classifier(images, labels, names, epochs=12, batch_size=64, seed=0, verbose="auto"):
    """Fit a new classifier on uint8 images and 0/1 labels; returns the Keras model."""
    keras.utils.set_random_seed(seed)
    model = build_classifier(images.shape[1], names, seed=seed)
    steps = epochs * math.ceil(len(images) / batch_size)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps)),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")])
    model.fit(images, labels.astype(np.float32), batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    return model


def save_classifier(model, path):
    """Write the classifier as a .keras file without its optimizer's state (which would
    triple the file), under a temporary name until complete."""
    plain = build_classifier(int(model.input_shape[1]), model.get_layer("attributes").names)
    plain.set_weights(model.get_weights())
    with written_atomically(path, suffix=".keras") as (partial,):  # Keras insists on the suffix
        plain.save(partial)
    return path


class AttributeClassifier:
    """A trained classifier as uint8 images -> logits, with its attribute names and image size."""

    def __init__(self, model):
        self.model = model
        self.names = model.get_layer("attributes").names
        self.image_size = int(model.input_shape[1])

    @classmethod
    def load(cls, path):
        regular_file(path, "a classifier")
        try:
            model = keras.saving.load_model(path, safe_mode=True)
            return cls(model)
        except Exception as error:  # Keras raises many types for a damaged or foreign file
            raise ValueError(safe_mode_refusal(path) or f"{path}: not an attribute classifier .keras file "
                             f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None

    def logits(self, images, batch_size=256):
        """uint8 [n, size, size, 3] -> float32 [n, attributes]."""
        if images.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"the classifier sees {self.image_size}x{self.image_size} faces, these are "
                             f"{images.shape[1]}x{images.shape[2]}: train one at this size "
                             f"(dcgan-tf attributes train --image-size {images.shape[1]} ...)")
        return np.concatenate([np.asarray(self.model(batch.astype(np.float32), training=False))
                               for batch in in_batches(images, batch_size)])

    def columns(self, wanted):
        return attribute_indices(self.names, wanted, "the classifier")


@dataclass
class AttributeScore:
    name: str
    positives: float  # share of held-out faces with the attribute
    accuracy: float
    majority: float  # accuracy of always answering the training set's majority class
    balanced: float  # mean of the true-positive and true-negative rates (nan if a class is absent)


def attribute_scores(logits, labels, train_labels, names):
    """Per-attribute accuracy of logits against 0/1 labels, beside the majority-class baseline."""
    predicted = logits > 0
    truth = labels.astype(bool)
    majority = train_labels.mean(axis=0) >= 0.5
    scores = []
    for i, name in enumerate(names):
        p, t = predicted[:, i], truth[:, i]
        rates = [np.mean(p[t]) if t.any() else np.nan, np.mean(~p[~t]) if (~t).any() else np.nan]
        scores.append(AttributeScore(name, float(t.mean()), float(np.mean(p == t)), float(np.mean(t == majority[i])),
                                     float(np.mean(rates))))
    return scores


def score_table(scores):
    """A Markdown table of the scores, with the means as the last row."""
    rows = ["| attribute | positives | accuracy | majority baseline | balanced accuracy |", "|---|---:|---:|---:|---:|"]
    rows += [f"| {s.name} | {s.positives:.1%} | {s.accuracy:.1%} | {s.majority:.1%} | {s.balanced:.1%} |"
             for s in scores]
    means = [np.nanmean([getattr(s, key) for s in scores]) for key in ("positives", "accuracy", "majority", "balanced")]
    rows.append("| **mean** | {:.1%} | **{:.1%}** | {:.1%} | **{:.1%}** |".format(*means))
    return "\n".join(rows)

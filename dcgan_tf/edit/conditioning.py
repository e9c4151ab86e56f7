"""Conditional generation: the attribute vector a conditional generator takes beside z.

A conditional model (train.py --condition Smiling,Male,Eyeglasses --attrs list_attr_celeba.txt)
has a generator that takes [z, attributes], one value per attribute of Config.condition
in that order: 1 present, 0 absent (as dcgan_tf.labels reads CelebA's 1 and -1). Where a
plain generator's inputs are rows of z, a conditional one's are rows [z | attributes], so
batching, grids and walks treat both alike (generation.FaceGenerator splits the rows).

Requests name values (`Smiling=1,Male=0`); an attribute a request leaves out is drawn at
random per face, present or absent with equal odds, from the request's seed.
"""

import numpy as np

VALUES = {"1": 1.0, "0": 0.0}


def split_rows(rows, latent_dim):
    """Generator input rows [z | attributes] -> [z, attributes]."""
    return [rows[:, :latent_dim], rows[:, latent_dim:]]


def join_rows(z, attributes):
    """z [n, latent_dim] and attributes [n, k] -> float32 rows [z | attributes]."""
    return np.concatenate([np.asarray(z, np.float32), np.asarray(attributes, np.float32)], axis=1)


class JoinedRows:
    """Rows [z | attributes] joined a slice at a time, so z can be a latent.LatentStream (drawn
    only when sliced) and a million faces never hold a million rows at once."""

    def __init__(self, z, attributes):
        self.z, self.attributes = z, np.asarray(attributes, np.float32)

    def __len__(self):
        return len(self.z)

    def __getitem__(self, rows):
        return join_rows(self.z[rows], self.attributes[rows])


def positional_names(count):
    """Names for the attributes of a model saved without its config."""
    return tuple(f"attribute_{i + 1}" for i in range(count))


def parse_request(spec, names):
    """'Smiling=1,Male=0' -> {"Smiling": 1.0, "Male": 0.0}; ValueError says what is wrong."""
    request = {}
    for item in spec.split(","):
        name, sign, value = (part.strip() for part in item.partition("="))
        if not sign or value not in VALUES:
            raise ValueError(f"--attrs {spec!r}: expected NAME=1 or NAME=0 items separated by commas, got {item!r}")
        if name not in names:
            raise ValueError(f"--attrs: the model is not conditioned on {name!r}; it knows {', '.join(names)}")
        if name in request:
            raise ValueError(f"--attrs: {name} is given twice")
        request[name] = VALUES[value]
    return request


def attribute_rows(n, names, request, seed):
    """n attribute vectors float32 [n, len(names)]: the requested values, the others at random."""
    rows = np.random.default_rng([seed, 0xA77]).integers(0, 2, (n, len(names))).astype(np.float32)
    for name, value in request.items():
        rows[:, names.index(name)] = value
    return rows


def flipped_rows(z, attributes, column):
    """For each z its row with attribute `column` absent, then present: 2n rows [z | attributes]
    that a grid of n rows and 2 columns shows as pairs."""
    off, on = attributes.copy(), attributes.copy()
    off[:, column], on[:, column] = 0.0, 1.0
    pairs = np.stack([join_rows(z, off), join_rows(z, on)], axis=1)
    return pairs.reshape(2 * len(z), -1)

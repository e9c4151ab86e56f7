"""Decode, crop and resize a data source once, into one uint8 .npy that training memory-maps.

  dcgan-tf prepare ~/data/img_align_celeba.zip celeba64.npy --image-size 64
  python train.py --data celeba64.npy ...

Decoding JPEGs is the slow part of reading CelebA (a few hundred images/s per core); a
prepared array is read at memory speed, every epoch, by any number of runs.
"""

from pathlib import Path

import numpy as np

from dcgan_tf.data.sources import load_images
from dcgan_tf.utils.files import written_atomically


def prepare(source, out, image_size, crop="auto", limit=0, strict=False, progress=True):
    """Write the images of `source` as uint8 [N, size, size, 3] to `out` (.npy); returns (path, report)."""
    out = Path(out)
    if out.suffix != ".npy":
        raise ValueError(f"{out}: the prepared file must end in .npy")
    images, report = load_images(source, image_size, crop, limit, progress=progress, strict=strict)
    with written_atomically(out, suffix=".npy") as (partial,):  # np.save appends .npy to other names
        np.save(partial, images)
    return out, report

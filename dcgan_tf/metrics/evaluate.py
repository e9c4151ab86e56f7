"""Scoring generated faces against real ones: FID, KID and the face rate
(the dcgan-tf evaluate command is dcgan_tf/cli/evaluate.py).
"""

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dcgan_tf.data.download import resolve_dataset_path
from dcgan_tf.data.labels import load_labelled_images
from dcgan_tf.data.sources import load_images
from dcgan_tf.edit import conditioning
from dcgan_tf.metrics import fid, inception
from dcgan_tf.model import latent
from dcgan_tf.serve import loader
from dcgan_tf.utils.batches import in_batches
from dcgan_tf.utils.files import CACHE_DIR

BATCH_SIZE = 100  # faces generated and scored at a time


def _fingerprint(data):
    """The source as the cache sees it: its path, size and modification time (a replaced
    file or a folder with files added or removed is a new source)."""
    if data.startswith("builtin"):
        return data
    path = Path(resolve_dataset_path(data)).expanduser().resolve()
    stat = path.stat() if path.exists() else None
    return [str(path), stat.st_size, stat.st_mtime_ns] if stat else str(path)


@dataclass(frozen=True)
class RealSet:
    """The real images a model is scored against: one part of a source (holdout, train or all,
    as data.sources.split_part cuts it), and their labels for a conditional model's faces."""
    data: str
    holdout: int = 0
    part: str = "all"
    crop: str = "auto"
    attrs: str | None = None

    def features(self, n, image_size, cache_dir=CACHE_DIR, progress=True):
        """Inception features of the first n images of this set, cached."""
        key = {"data": _fingerprint(self.data), "n": n, "image_size": image_size, "crop": self.crop,
               "extractor": inception.WEIGHTS_SHA1, "resize": "tf1-bilinear-299"}
        if self.part != "all":
            key.update(holdout=self.holdout, part=self.part)

        def compute():
            images, _ = load_images(self.data, image_size, self.crop, limit=n, progress=progress,
                                    holdout=self.holdout, part=self.part)
            _check_kid_count(len(images), self.data, "--data")
            return inception.features(images, progress=progress)
        return fid.cached_features(key, compute, cache_dir)

    def floor(self, held_out, image_size, cache_dir=CACHE_DIR, progress=True):
        """The real-vs-real floor: FID and KID of as many training images as the held-out features."""
        training = replace(self, part="train").features(len(held_out), image_size, cache_dir, progress)
        kid_mean, _ = fid.kid(training, held_out)
        return {"fid": fid.fid(training, held_out), "kid": kid_mean, "n": len(held_out)}

    def attributes(self, generator, model, n):
        """A conditional generator's attribute values of the first n labelled images of this set
        (repeated when fewer are labelled)."""
        if self.attrs is None:
            raise ValueError(f"{model} is a conditional model: give --attrs, the attribute labels of --data, "
                             "so its faces take the real images' attributes")
        # Only the labels are wanted: the images are read at a token size.
        labelled, _ = load_labelled_images(self.data, self.attrs, 8, self.crop, progress=False, holdout=self.holdout,
                                           part=self.part, limit=n, attributes=generator.attributes)
        return np.resize(labelled.labels, (n, len(generator.attributes)))


def face_rate_counter():
    try:
        return fid.FaceRate()
    except ImportError as error:
        print(f"face rate: not computed ({error})", file=sys.stderr)
        return None


def scored_batches(batches, face_rate):
    for images in batches:
        if face_rate is not None:
            face_rate.update(images)
        yield images


def score(real, batches, face_rate=None):
    """FID, KID (mean, std) and face rate of uint8 image batches against real Inception features.

    Batches go through Inception (and MTCNN) one at a time, so memory does not grow with n.
    """
    fake = inception.features(scored_batches(batches, face_rate))
    kid_mean, kid_std = fid.kid(real, fake)
    return {"fid": fid.fid(real, fake), "kid": kid_mean, "kid_std": kid_std,
            "face_rate": face_rate.result() if face_rate is not None else None,
            "n_real": len(real), "n_fake": len(fake)}


def evaluate(model, real, n, image_size=None, seed=0, cache_dir=CACHE_DIR, progress=True, trust_savedmodel=False):
    """n faces of `model` (any path loader.load takes, or a folder of images) against n images of
    `real`, a RealSet -> dict with fid, kid, kid_std, face_rate, n_real, n_fake, image_size, the real
    set's part (`against`) and, against held-out images, the real-vs-real floor."""
    real = real if real.holdout else replace(real, part="all")
    model = Path(model)
    if model.is_dir() and not loader.is_model(model):
        if image_size is None:
            raise ValueError("--image-size is needed when --model is a folder of images")
        images, _ = load_images(str(model), image_size, "none", limit=n, progress=progress)
        _check_kid_count(len(images), model, "--model")
        fakes = in_batches(images, BATCH_SIZE)
    else:
        generator = loader.load(model, trust_savedmodel).faces
        z = latent.LatentStream(n, generator.latent_dim, seed)
        if generator.attributes:
            z = conditioning.JoinedRows(z, real.attributes(generator, model, n))
        image_size = image_size or generator(z[:1]).shape[1]
        fakes = generator.batches(z, BATCH_SIZE, progress)
    # the real set first: a bad --data fails before any fake is generated
    features = real.features(n, image_size, cache_dir, progress)
    scores = {**score(features, fakes, face_rate_counter()), "image_size": image_size, "against": real.part}
    if real.part == "holdout":
        scores["floor"] = real.floor(features, image_size, cache_dir, progress)
    return scores


REAL_SETS = {"holdout": "held-out", "train": "training", "all": "real"}


def report(scores):
    """The scores as one line, naming the real set and n, with the floor beside a held-out score."""
    faces = f"{100 * scores['face_rate']:.1f}%" if scores["face_rate"] is not None else "n/a"
    line = (f"FID {scores['fid']:.2f}   KID {scores['kid']:.4f} +- {scores['kid_std']:.4f}   face rate {faces}   "
            f"({scores['n_fake']} generated vs {scores['n_real']} {REAL_SETS[scores['against']]} images, "
            f"{scores['image_size']} px)")
    if "floor" in scores:
        floor_ = scores["floor"]
        line += (f"\nreal-vs-real floor: FID {floor_['fid']:.2f}   KID {floor_['kid']:.4f}   "
                 f"({floor_['n']} training vs {floor_['n']} held-out images)")
    return line


def _check_kid_count(count, source, flag):
    """Before any scoring: KID compares random halves of each set, two images at least."""
    if count < 4:
        raise ValueError(f"{flag} {source} has only {count} image(s); KID needs at least 4: add images")

"""Sample-quality metrics on Inception features: FID and KID, and cached dataset statistics.

- FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to the two
  feature sets, in float64. It is biased at small n (real vs real CelebA at n=300 gives
  about 35), so compare FIDs only at the same n.
- KID (Binkowski et al. 2018): the unbiased squared MMD with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets (mean and std): unbiased, so
  meaningful at small n, e.g. during training.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from dcgan_tf.utils.files import written_atomically


def gaussian_stats(features):
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)).

    tr sqrt(S1 S2) is computed as tr sqrt(sqrt(S1) S2 sqrt(S1)), a symmetric PSD matrix, so
    the square root is real by construction; eigenvalues below zero can only be round-off,
    and a large one (the analogue of the imaginary part scipy.linalg.sqrtm returns) is an error.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    root1 = _sqrt_psd(sigma1)
    product = root1 @ sigma2 @ root1
    values = np.linalg.eigvalsh((product + product.T) / 2)
    if values.min() < -1e-3 * max(values.max(), 1e-12):
        raise ValueError(f"covariance product has a large negative eigenvalue ({values.min():.3g}): "
                         "too few samples for the feature dimension?")
    trace_sqrt = np.sqrt(np.clip(values, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid(features1, features2):
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))


def kid_subset_size(n1, n2):
    """Half the smaller set, so the random subsets differ and their spread means something;
    at most 1000, the size of Binkowski et al. (the cost grows with its square)."""
    return min(1000, n1 // 2, n2 // 2)


def kid(features1, features2, subsets=10, subset_size=None, seed=0):
    """(mean, std) of the unbiased MMD^2 over `subsets` random subsets of both sets
    (of kid_subset_size images unless given)."""
    x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    size = min(subset_size or kid_subset_size(len(x), len(y)), len(x), len(y))
    if size < 2:
        raise ValueError(f"KID needs subsets of at least 2 samples, got {size} (sets of {len(x)} and {len(y)})")
    rng = np.random.default_rng(seed)
    dim = x.shape[1]
    estimates = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), size, replace=False)]
        b = y[rng.choice(len(y), size, replace=False)]
        k_aa, k_bb, k_ab = ((p @ q.T / dim + 1) ** 3 for p, q in ((a, a), (b, b), (a, b)))
        off_diagonal = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (size * (size - 1))
        estimates.append(off_diagonal - 2 * k_ab.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


class FaceRate:
    """Share of images in which MTCNN (pip install mtcnn==1.0.0) finds a face with confidence
    above 0.9, after upscaling to 128 px: a check that does not depend on the training set.
    MTCNN finds a face in about 97% of real 64x64 CelebA crops."""

    SIZE, CONFIDENCE = 128, 0.9

    def __init__(self):
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise ImportError("the face rate needs MTCNN: pip install mtcnn==1.0.0") from None
        self.detector, self.found, self.seen = MTCNN(), 0, 0

    def update(self, images):
        from PIL import Image
        upscaled = [np.asarray(Image.fromarray(image).resize((self.SIZE, self.SIZE), Image.BILINEAR))
                    for image in images]
        results = self.detector.detect_faces(upscaled, threshold_onet=self.CONFIDENCE)
        self.found += sum(any(face["confidence"] > self.CONFIDENCE for face in faces) for faces in results)
        self.seen += len(upscaled)

    def result(self):
        return self.found / max(self.seen, 1)


def cached_features(key, compute, cache_dir):
    """Features for `key` (a dict describing the dataset and preprocessing), computed once.

    The cache file is named by a hash of the key and also stores the key, so a changed
    preprocessing never reads stale statistics.
    """
    text = json.dumps(key, sort_keys=True)
    path = Path(cache_dir) / f"features-{hashlib.sha1(text.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) == text:
                return stored["features"]
    features = compute()
    with written_atomically(path, suffix=".npz") as (partial,):
        np.savez(partial, features=features.astype(np.float32), key=text)
    return features

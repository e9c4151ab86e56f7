"""Attribute directions in latent space (InterFaceGAN).

Directions (Shen et al. 2020, InterFaceGAN): sample z, label G(z) with the attribute
classifier, fit one linear boundary per attribute in latent space; its unit normal n is
the attribute's direction and z + s*n moves a face across it. The strength s is in
standard deviations of z along n (the projection of z ~ N(0, I) on a unit vector is
N(0, 1)). Projecting other directions out of n keeps those attributes as they are.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan_tf.data.labels import attribute_indices
from dcgan_tf.model import latent
from dcgan_tf.serve.loader import DIRECTIONS_FILE, model_dir
from dcgan_tf.utils import memory
from dcgan_tf.utils.arrays import ArrayFileError, Npz
from dcgan_tf.utils.batches import in_batches, progress_bar
from dcgan_tf.utils.files import regular_file, written_atomically

ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")  # CelebA's names: Smiling, 5_o_Clock_Shadow
EXTREMES = 0.25  # share of the samples at each end of an attribute's score that the boundary separates
PROBE_SEED = 0x0D1C  # the latent seed of the faces that identify the generator directions belong to
RESERVED = ("meta", "probe_images")  # npz keys that are not attribute names
META_BYTES, PROBE_BYTES = 2**20, 2**24  # what meta (JSON) and probe_images (2 faces) may declare


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def logistic_regression(x, y, l2=1.0, iterations=30):
    """Weights and bias of L2-regularised logistic regression, by Newton's method (a few
    dozen samples per dimension converge in about ten steps)."""
    x1 = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    penalty = l2 * np.eye(x1.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    w = np.zeros(x1.shape[1])
    for _ in range(iterations):
        p = sigmoid(x1 @ w)
        gradient = x1.T @ (p - y) + penalty @ w
        hessian = (x1 * (p * (1 - p))[:, None]).T @ x1 + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], w[-1]


def fit_boundary(z, scores, extremes=EXTREMES, seed=0):
    """(unit normal, offset, accuracy) of the boundary between the lowest and the highest
    `extremes` of the samples by score, as InterFaceGAN fits its SVM on the confident ends.
    The boundary is z . normal + offset = 0; accuracy is on a quarter of the ends held back."""
    order = np.argsort(scores)
    k = max(2, int(len(z) * extremes))
    chosen = np.concatenate([order[:k], order[-k:]])
    y = np.concatenate([np.zeros(k), np.ones(k)])
    held = np.random.default_rng(seed).random(2 * k) < 0.25
    w, b = logistic_regression(z[chosen[~held]], y[~held])
    norm = np.linalg.norm(w)
    accuracy = float(np.mean((z[chosen[held]] @ w + b > 0) == y[held])) if held.any() else float("nan")
    return w / norm, b / norm, accuracy


def _meta(array):
    """directions.npz's meta: a JSON object whose "attributes", if given, is a list of names."""
    if array.dtype.kind != "U" or array.ndim != 0:
        raise ValueError(f"meta must be one JSON string, got {array.dtype} {array.shape}")
    try:
        meta = json.loads(str(array))
    except RecursionError:
        raise ValueError("meta is JSON nested too deeply") from None
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a JSON object, got {type(meta).__name__}")
    names = meta.get("attributes", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"meta's attributes must be a list of names, got {json.dumps(names)[:80]}")
    return meta


def probe_images(generator):
    """Two faces at fixed z: they tell whether directions were fit on this generator."""
    return generator(latent.sample(2, generator.latent_dim, PROBE_SEED).numpy())


@dataclass
class Directions:
    """directions.npz: one latent vector per attribute name (all that a hand-made file needs),
    and, as fit_directions writes it, `meta` (JSON) and `probe_images`."""

    names: tuple
    vectors: np.ndarray  # float32 [attributes, latent_dim], unit vectors
    meta: dict  # offsets, boundary accuracy, classifier, samples, seed, ...
    probe: np.ndarray = None  # uint8 probe_images of the generator they were fit on, if known

    def save(self, path):
        arrays = {name: vector for name, vector in zip(self.names, self.vectors)}
        with written_atomically(path, suffix=".npz") as (partial,):  # np.savez appends .npz
            np.savez(partial, meta=np.array(json.dumps(self.meta)), probe_images=self.probe, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path, latent_dim):
        """Each array's size is checked from its header before it is read, and meta's shape before
        it is used: a hand-made or hostile file is a ValueError naming the problem."""
        if not regular_file(path, "directions").is_file():
            raise FileNotFoundError(f"no attribute directions at {path}: fit them with "
                                    "dcgan-tf attributes directions MODEL --classifier FILE")
        try:
            with Npz(path) as archive:
                meta = _meta(archive.read("meta", META_BYTES)) if "meta" in archive.files else {}
                names = meta.get("attributes") or [name for name in archive.files if name not in RESERVED]
                missing = [name for name in names if name not in archive.files]
                if missing:
                    raise ValueError(f"meta names attributes without a direction: {', '.join(missing)}")
                vectors = [np.asarray(archive.read(name, 16 * latent_dim), np.float64).reshape(-1) for name in names]
                probe = archive.read("probe_images", PROBE_BYTES) if "probe_images" in archive.files else None
        except ArrayFileError as error:
            raise ValueError(f"{error}: not a readable .npz of directions (one vector of {latent_dim} values "
                             "per attribute)") from None
        except (ValueError, TypeError) as error:  # TypeError: a string array asked for floats
            raise ValueError(f"{path}: not a readable .npz of directions ({error})") from None
        if probe is not None and (probe.dtype != np.uint8 or probe.ndim != 4 or probe.shape[-1] != 3):
            raise ValueError(f"{path}: probe_images must be uint8 images [n, H, W, 3], got {probe.dtype} "
                             f"{probe.shape}: fit the directions again")
        for name, vector in zip(names, vectors):
            if not ATTRIBUTE_NAME.fullmatch(name):
                raise ValueError(f"{path}: attribute name {name!r} must be letters, digits and _ (at most 64)")
            if vector.size != latent_dim or not np.isfinite(vector).all() or not vector.any():
                raise ValueError(f"{path}: direction {name!r} must be {latent_dim} finite values, not all 0 "
                                 f"(the model's latent size), got {vector.size}")
        units = [vector / np.linalg.norm(vector) for vector in vectors]
        return cls(tuple(names), np.array(units, np.float32).reshape(len(names), latent_dim), meta, probe)

    @classmethod
    def of_model(cls, model, generator, path=None):
        """The directions of a model (path: default its folder's directions.npz), checked to
        belong to this generator when the file says which one that is."""
        path = path or model_dir(model) / DIRECTIONS_FILE
        directions = cls.load(path, generator.latent_dim)
        directions.check_generator(generator, path)
        return directions

    def check_generator(self, generator, path):
        if self.probe is None:
            return
        faces = probe_images(generator)
        if faces.shape != self.probe.shape or np.abs(faces.astype(np.int16) - self.probe).max() > 2:
            raise ValueError(f"{path} was fit on another generator (or another checkpoint of it): fit them "
                             "again with dcgan-tf attributes directions MODEL --classifier FILE")

    def vector(self, name, keep=()):
        """The unit direction of `name`, with the directions of `keep` projected out so that
        moving along it leaves those attributes where they are (InterFaceGAN's conditional edit)."""
        target, *kept = attribute_indices(self.names, [name, *keep], "the directions")
        n = self.vectors[target].astype(np.float64)
        if kept:
            basis = self.vectors[kept].astype(np.float64).T  # [latent_dim, k]
            n = n - basis @ np.linalg.lstsq(basis, n, rcond=None)[0]
            if np.linalg.norm(n) < 1e-6:
                raise ValueError(f"{name}'s direction lies in the span of {', '.join(keep)}: nothing is left to move")
        return (n / np.linalg.norm(n)).astype(np.float32)


def fit_directions(generator, classifier, n=10000, seed=0, batch_size=256, progress=False):
    """Label n generated faces with the classifier and fit one direction per attribute."""
    bad = [name for name in classifier.names if name in RESERVED or not ATTRIBUTE_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"attribute name(s) {', '.join(bad)}: {DIRECTIONS_FILE} takes letters, digits and _ "
                         f"(at most 64), and not {' or '.join(RESERVED)}")
    check_fit_memory(n, generator.latent_dim, len(classifier.names))
    z = latent.sample(n, generator.latent_dim, seed).numpy()
    logits = np.concatenate([classifier.logits(images) for images in generator.batches(z, batch_size, progress)])
    fits = [fit_boundary(z, logits[:, i], seed=seed) for i in range(len(classifier.names))]
    meta = {"attributes": list(classifier.names), "offsets": [offset for _, offset, _ in fits],
            "boundary_accuracy": [accuracy for _, _, accuracy in fits], "samples": n, "seed": seed,
            "extremes": EXTREMES, "latent_dim": generator.latent_dim,
            "positives": [float(share) for share in (logits > 0).mean(axis=0)]}
    vectors = np.stack([normal for normal, _, _ in fits]).astype(np.float32)
    return Directions(tuple(classifier.names), vectors, meta, probe_images(generator))


def check_fit_memory(n, latent_dim, attributes):
    """NotEnoughMemory unless fitting on n faces fits: their latent vectors and scores are held
    (float32), and the fit's float64 copy of half of them with a temporary of the same size."""
    needed = n * (latent_dim + attributes) * 4 + n * (latent_dim + 1) * 8
    memory.check(needed, f"--n {n:,}: fitting directions on {n:,} faces", "use a smaller --n (default 10000)")


def edit_points(z, direction, strengths):
    """Each row of z moved by each strength along direction -> [len(z) * len(strengths), latent_dim]."""
    z = np.asarray(z, np.float32)
    moved = z[:, None, :] + np.asarray(strengths, np.float32)[None, :, None] * direction[None, None, :]
    return moved.reshape(-1, z.shape[1])


def edit_response(generator, classifier, directions, names, strengths, n=200, seed=1, batch_size=256,
                  progress=False):
    """Mean classifier probability of every attribute as faces move along each direction:
    float [len(names), len(strengths), classifier attributes]. The n faces are drawn a batch at a
    time (the vectors of latent.sample(n, ...)), so any n fits in memory."""
    z = latent.LatentStream(n, generator.latent_dim, seed)
    rows = max(1, batch_size // len(strengths))  # faces per batch: each is edited at every strength
    bar = progress_bar(len(names), f"edits along {len(names)} directions, {n} faces each", "direction") if progress else None
    response = []
    for name in names:
        total = 0.0
        for z_batch in in_batches(z, rows):
            images = generator.all(edit_points(z_batch, directions.vector(name), strengths), batch_size)
            total += sigmoid(classifier.logits(images)).reshape(len(z_batch), len(strengths), -1).sum(axis=0)
        response.append(total / n)
        if bar is not None:
            bar.update(len(response))
    return np.stack(response)


def strip_scores(classifier, images, names, strengths, couplings=3):
    """The classifier's mean probability at each strength of edit strips (images: the strips'
    faces, row after row) for the attributes `names` and the `couplings` others that move most."""
    mean = sigmoid(classifier.logits(images)).reshape(-1, len(strengths), len(classifier.names)).mean(axis=0)
    shown = classifier.columns(names)
    change = np.abs(mean[-1] - mean[0])
    moved = [j for j in np.argsort(-change) if j not in shown][:couplings]
    lines = ["classifier probability along the strip, strength " + " ".join(f"{s:+.1f}" for s in strengths)]
    lines += [f"  {classifier.names[j]}: " + " ".join(f"{p:.2f}" for p in mean[:, j])
              + ("  (moves most)" if j in moved else "") for j in shown + moved]
    return "\n".join(lines)


def response_table(names, strengths, response, classifier_names, couplings=3):
    """Markdown: each attribute's score at the ends and middle of the strengths, and the
    attributes that move most with it (change in mean probability from the lowest to the highest strength)."""
    low, mid, high = 0, len(strengths) // 2, len(strengths) - 1
    rows = [f"| attribute | p at {strengths[low]:+g} | p at {strengths[mid]:+g} | p at {strengths[high]:+g} "
            "| rises at every step | strongest couplings (change in p) |", "|---|---:|---:|---:|:---:|---|"]
    for i, name in enumerate(names):
        own = response[i][:, classifier_names.index(name)]
        change = response[i][high] - response[i][low]
        others = [j for j in np.argsort(-np.abs(change)) if classifier_names[j] != name][:couplings]
        coupled = ", ".join(f"{classifier_names[j]} {change[j]:+.2f}" for j in others)
        rows.append(f"| {name} | {own[low]:.2f} | {own[mid]:.2f} | {own[high]:.2f} | "
                    f"{'yes' if np.all(np.diff(own) > 0) else 'no'} | {coupled} |")
    return "\n".join(rows)


def load_directions(path, latent_dim):
    """Attribute name -> unit latent direction, from the directions.npz in the model's folder
    (loader.model_dir: its run or export directory, or beside its .keras file); {} when there is none."""
    file = model_dir(path) / DIRECTIONS_FILE
    if not file.is_file():
        return {}
    directions = Directions.load(file, latent_dim)
    return dict(zip(directions.names, directions.vectors))

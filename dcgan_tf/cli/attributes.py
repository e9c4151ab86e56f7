"""Attribute labels at work: train the attribute classifier, fit latent directions for editing.

  dcgan-tf attributes train --data img_align_celeba.zip --attrs list_attr_celeba.txt \\
      --image-size 64 --out attr_classifier64.keras
  dcgan-tf attributes directions saved_models/NAME --classifier attr_classifier64.keras

train: a small CNN on the labelled real faces at the generator's resolution. The last
--holdout images by file name are never trained on; the classifier is scored on the
labelled ones among them, per attribute, beside the majority-class baseline.

directions: labels --n generated faces with the classifier and fits one linear boundary per
attribute in latent space (InterFaceGAN); writes MODEL's directions.npz (or --out) and
reports how each attribute's score follows its direction and which others move with it.
Then: python generate.py MODEL edit --attr Smiling  and  python generate.py MODEL arithmetic ...
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from dcgan_tf.cli.flags import ArgumentParser, parse_holdout
from dcgan_tf.data.decoding import DataError
from dcgan_tf.utils.files import written_atomically

STRENGTHS = np.linspace(-3.0, 3.0, 7)


def write_json(path, data):
    with written_atomically(path) as (partial,):
        partial.write_text(json.dumps(data, indent=2) + "\n")


def train_command(args):
    from dcgan_tf.data.labels import load_labelled_images
    from dcgan_tf.edit.classifier import (
        AttributeClassifier,
        attribute_scores,
        check_image_size,
        save_classifier,
        score_table,
        train_classifier,
    )

    check_image_size(args.image_size)  # before the data is read

    def load(part):
        labelled, report = load_labelled_images(args.data, args.attrs, args.image_size, args.crop, strict=args.strict,
                                                holdout=args.holdout, part=part)
        print(report.summary())
        return labelled, report

    train, _ = load("train")
    held, report = load("holdout") if args.holdout else (None, None)
    if held is not None:
        names = sorted(Path(name).name for name in report.names)
        print(f"held out and never trained on: the last {args.holdout} images by file name ({names[0]} to "
              f"{names[-1]}); the classifier is scored on the {len(held.names)} of them with labels")
    start = time.perf_counter()
    model = train_classifier(train.images, train.labels, train.attributes, args.epochs, args.batch_size, args.seed)
    seconds = time.perf_counter() - start
    save_classifier(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB) after {seconds:.0f} s of training "
          f"on {len(train.names)} labelled images")
    if held is None:
        return
    scores = attribute_scores(AttributeClassifier(model).logits(held.images), held.labels, train.labels,
                              train.attributes)
    print(f"held-out scores ({len(held.names)} labelled faces):\n{score_table(scores)}")
    if args.report:
        write_json(args.report, {"data": args.data, "attrs": str(args.attrs), "image_size": args.image_size,
                                 "train_images": len(train.names), "held_out_images": len(held.names),
                                 "epochs": args.epochs, "train_seconds": round(seconds, 1),
                                 "scores": [vars(s) for s in scores]})


def directions_command(args):
    from dcgan_tf.edit.classifier import AttributeClassifier
    from dcgan_tf.edit.directions import edit_response, fit_directions, response_table
    from dcgan_tf.serve import loader

    generator = loader.load(args.model).faces.require_unconditional("directions")
    classifier = AttributeClassifier.load(args.classifier)
    out = args.out or loader.model_dir(args.model) / loader.DIRECTIONS_FILE
    start = time.perf_counter()
    directions = fit_directions(generator, classifier, args.n, args.seed, progress=True)
    directions.meta["classifier"] = str(args.classifier)
    directions.save(out)
    print(f"wrote {out}: {len(directions.names)} directions from {args.n} faces in {time.perf_counter() - start:.0f} s")
    if not args.measure:
        return
    names = args.only.split(",") if args.only else list(directions.names)
    response = edit_response(generator, classifier, directions, names, STRENGTHS, args.measure, args.seed + 1,
                             progress=True)
    print(f"classifier scores along each direction ({args.measure} faces per strength):")
    print(response_table(names, STRENGTHS, response, list(classifier.names)))
    if args.report:
        write_json(args.report, {"strengths": STRENGTHS.tolist(), "attributes": names,
                                 "classifier_attributes": list(classifier.names),
                                 "mean_probability": response.round(4).tolist()})


def parse_args(argv=None, prog="dcgan-tf attributes"):
    parser = ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the attribute classifier on labelled real faces")
    train.add_argument("--data", required=True, help="an image folder or a .zip of images (celeba: the downloaded one)")
    train.add_argument("--attrs", required=True, help="labels in CelebA's list_attr_celeba.txt format "
                                                      "(celeba: the downloaded one)")
    train.add_argument("--out", required=True, type=Path, help="the .keras file to write")
    train.add_argument("--image-size", type=int, default=64, help="the generator's resolution (default 64)")
    train.add_argument("--holdout", type=parse_holdout, default=1000,
                       help="never train on the last N images by file name (default 1000), or on CelebA's "
                            "test images (list_eval_partition.txt); score on them")
    train.add_argument("--epochs", type=int, default=12, help="default 12")
    train.add_argument("--batch-size", type=int, default=64, help="default 64")
    train.add_argument("--crop", default="auto", help="as for training the GAN (default auto)")
    train.add_argument("--strict", action="store_true", help="an unreadable image is an error")
    train.add_argument("--seed", type=int, default=0, help="default 0")
    train.add_argument("--report", type=Path, help="also write the held-out scores as JSON here")
    fit = commands.add_parser("directions", help="fit one latent direction per attribute for a generator")
    fit.add_argument("model", type=Path, help="run directory, checkpoint, export directory, SavedModel or .keras")
    fit.add_argument("--classifier", required=True, type=Path, help="a classifier .keras file from `train`")
    fit.add_argument("--n", type=int, default=10000, help="generated faces to fit on (default 10000)")
    fit.add_argument("--seed", type=int, default=0, help="latent seed of those faces")
    fit.add_argument("--out", type=Path, help="default: directions.npz in the model's folder")
    fit.add_argument("--measure", type=int, default=200, metavar="N",
                     help="faces per strength for the report of scores along each direction (0: no report)")
    fit.add_argument("--only", metavar="NAMES", help="report these attributes only (comma-separated; default all)")
    fit.add_argument("--report", type=Path, help="also write the scores along each direction as JSON here")
    args = parser.parse_args(argv)
    if args.command == "train":
        if args.out.suffix != ".keras":
            parser.error(f"--out must name a .keras file, got {args.out}")
        if min(args.epochs, args.batch_size) <= 0 or args.holdout < 0:
            parser.error("--epochs and --batch-size must be positive, --holdout >= 0")
    elif args.n < 8 or args.measure < 0:
        parser.error("--n must be at least 8 and --measure >= 0")
    return args


def main(argv=None, prog="dcgan-tf attributes"):
    args = parse_args(argv, prog)
    command = train_command if args.command == "train" else directions_command
    try:
        command(args)
    except (DataError, ValueError, FileNotFoundError, OSError) as error:
        sys.exit(f"{prog}: error: {error}")


if __name__ == "__main__":
    main()

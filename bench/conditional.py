"""Conditional generation measured (README "Faces on request"): does a conditional model
make the attributes asked for, and how do its faces score against held-out faces beside
an unconditional model's at the same budget.

  python bench/conditional.py saved_models/cond32-projection saved_models/cond32-concat \\
      runs/dcgan32/checkpoints/ckpt-1400 --classifier attr_classifier64.keras \\
      --data ../shared/data/celeba_10k.zip --attrs ../shared/data/celeba_10k_attrs.txt --holdout 1000

Agreement: for each conditional MODEL, every combination of its attributes, --n faces each
(the same z for every combination), labelled by the attribute classifier
(dcgan-tf attributes train); per attribute the share of faces whose predicted
value is the one asked for, when asked present, when asked absent, and over all. The
classifier's accuracy on the held-out real faces, resized the way the fakes are (to the
classifier's size), is printed first: the meter's own ceiling.
FID/KID: every MODEL's faces against the labelled held-out faces, as many of each; a
conditional model's faces take the held-out faces' attributes, so both sets have one mix.
Writes the tables to stdout and everything to --out as JSON.
"""

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from dcgan_tf.data.labels import load_labelled_images
from dcgan_tf.edit import conditioning
from dcgan_tf.edit.classifier import AttributeClassifier
from dcgan_tf.metrics import evaluate, inception
from dcgan_tf.model import latent
from dcgan_tf.serve import loader


def resized(images, size):
    """uint8 faces at the classifier's size (antialiased bilinear), as the real ones are read."""
    if images.shape[1] == size:
        return images
    scaled = tf.image.resize(tf.cast(images, tf.float32), (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0, 255), tf.uint8).numpy()


def predicted(classifier, images, names):
    """0/1 predictions of the attributes `names` for uint8 faces."""
    return (classifier.logits(resized(images, classifier.image_size))[:, classifier.columns(names)] > 0).astype(int)


def generator_rows(z, attributes=None):
    return z if attributes is None else conditioning.join_rows(z, attributes)


def agreement(generator, classifier, n, seed):
    """{attribute: {present, absent, all}}: the classifier's agreement with the requested values."""
    names = generator.attributes
    z = latent.sample(n, generator.latent_dim, seed).numpy()
    hits = {name: {0: [], 1: []} for name in names}
    for combination in itertools.product((0, 1), repeat=len(names)):
        faces = generator.all(generator_rows(z, np.tile(combination, (n, 1))))
        for i, (name, value) in enumerate(zip(names, combination)):
            hits[name][value].append(np.mean(predicted(classifier, faces, [name])[:, 0] == value))
    return {name: {"present": float(np.mean(h[1])), "absent": float(np.mean(h[0])),
                   "all": float(np.mean(h[0] + h[1]))} for name, h in hits.items()}


def ceiling(classifier, held_out, names):
    """The meter's own agreement with the labels of real faces, split like agreement():
    on faces with the attribute (present), without it (absent) and over all."""
    hits = predicted(classifier, held_out.images, names) == held_out.labels
    present = held_out.labels.astype(bool)
    return {name: {"present": float(hits[present[:, i], i].mean()), "absent": float(hits[~present[:, i], i].mean()),
                   "all": float(hits[:, i].mean())} for i, name in enumerate(names)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="conditional or unconditional models (generate.py's MODEL)")
    parser.add_argument("--classifier", required=True, type=Path, help="an attribute classifier .keras file")
    parser.add_argument("--data", required=True)
    parser.add_argument("--attrs", required=True)
    parser.add_argument("--holdout", type=int, default=1000, help="the held-out images of training (default 1000)")
    parser.add_argument("--n", type=int, default=1000, help="faces per attribute combination (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-fid", action="store_true", help="agreement only")
    parser.add_argument("--out", type=Path, default=Path("conditional.json"))
    args = parser.parse_args()

    generators = {model: loader.load(model).faces for model in args.models}
    first = next(iter(generators.values()))
    size = first(np.zeros((1, first.latent_dim + len(first.attributes)), np.float32)).shape[1]
    names = list(dict.fromkeys(name for g in generators.values() for name in g.attributes))
    classifier = AttributeClassifier.load(args.classifier)
    held_out, _ = load_labelled_images(args.data, args.attrs, size, progress=False, attributes=names or None,
                                       holdout=args.holdout, part="holdout")
    results = {"held_out": len(held_out.images), "image_size": size, "classifier": str(args.classifier),
               "classifier_size": classifier.image_size, "models": {}}
    if names:
        results["ceiling"] = ceiling(classifier, held_out, names)
        print(f"classifier on {len(held_out.images)} held-out real faces at {size} px -> {classifier.image_size} px: "
              + json.dumps(results["ceiling"]))
    real = inception.features(held_out.images) if not args.no_fid else None
    for model, generator in generators.items():
        start, entry = time.perf_counter(), {}
        if generator.attributes:
            entry["agreement"] = agreement(generator, classifier, args.n, args.seed)
        if real is not None:
            z = latent.sample(len(held_out.images), generator.latent_dim, args.seed + 1).numpy()
            columns = [held_out.attributes.index(name) for name in generator.attributes]
            attributes = held_out.labels[:, columns] if generator.attributes else None
            scores = evaluate.score(real, generator.batches(generator_rows(z, attributes), batch_size=50))
            entry.update(fid=scores["fid"], kid=scores["kid"], kid_std=scores["kid_std"])
        entry["seconds"] = time.perf_counter() - start
        results["models"][model] = entry
        print(model, json.dumps(entry), flush=True)
    print_tables(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


def print_tables(results):
    print("\n| model | attribute | asked present | asked absent | all |\n|---|---|---:|---:|---:|")
    for name, value in results.get("ceiling", {}).items():
        print(f"| real held-out faces (the meter's ceiling) | {name} | {value['present']:.1%} | {value['absent']:.1%} "
              f"| {value['all']:.1%} |")
    for model, entry in results["models"].items():
        for name, value in entry.get("agreement", {}).items():
            print(f"| {model} | {name} | {value['present']:.1%} | {value['absent']:.1%} | {value['all']:.1%} |")
    if any("fid" in entry for entry in results["models"].values()):
        print(f"\n| model | FID | KID (against {results['held_out']} held-out faces) |\n|---|---:|---:|")
        for model, entry in results["models"].items():
            print(f"| {model} | {entry['fid']:.1f} | {entry['kid']:.4f} +- {entry['kid_std']:.4f} |")


if __name__ == "__main__":
    main()

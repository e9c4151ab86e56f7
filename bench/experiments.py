"""The "What helps" experiments of the README: one preset on the CelebA faces, the same
number of D updates per row (a WGAN-GP step makes n_critic of them), each row trained with
every --seed, scored by FID / KID / face rate against held-out faces (the last --holdout
images, never trained on), with the real-vs-real floor at the same n.

  python bench/experiments.py --data celeba_10k.zip --preset keras64 --steps 3000 --seeds 0 1
  python bench/experiments.py --data celeba_10k.zip --preset dcgan32 --steps 1560 --rows baseline hinge

Rows: baseline (non-saturating BCE), scored raw and with its EMA generator (the same run:
EMA does not change training); two-time-scale learning rates (TTUR: D 4e-4, G 1e-4);
hinge loss; DiffAugment; WGAN-GP (n_critic 5, a LayerNorm critic). Prints a markdown table
with the mean and the spread over seeds, and writes results.json; each run's samples
are in its run directory, and an interrupted table resumes where it stopped.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from dcgan_tf.config import preset
from dcgan_tf.metrics import evaluate, fid
from dcgan_tf.model import latent
from dcgan_tf.serve.generation import FaceGenerator
from dcgan_tf.train.run import train
from dcgan_tf.utils.images import save_grid, to_uint8


def short_name(row):
    """A row's name for --rows: its first word."""
    return row.split(" ")[0].rstrip(",")


ROWS = {  # name -> config overrides
    "baseline": {},
    "TTUR (D 4e-4, G 1e-4)": {"lr": 1e-4, "d_lr": 4e-4},
    "hinge loss": {"loss": "hinge"},
    "DiffAugment": {"diffaugment": "color,translation,cutout"},
    "WGAN-GP, n_critic 5": {"loss": "wgan", "gp": "wgan-gp", "n_critic": 5, "d_norm": "layer"},
}


def score(generator, real, n):
    z = latent.sample(n, generator.input_shape[-1], seed=123)
    return evaluate.score(real, FaceGenerator.from_keras(generator).batches(z, batch_size=100), fid.FaceRate())


def save_grids(gan, run_dir, n=64):
    """The trained and the EMA generator's faces for the same latent batch, side by side in the README."""
    z = latent.sample(n, gan.latent_dim, seed=7)
    for name, generator in (("raw", gan.generator), ("ema", gan.sampling_generator)):
        save_grid(to_uint8(generator(z, training=False)).numpy(), run_dir / f"{name}.png")


def run_row(name, overrides, seed, args, real):
    """Train one row with one seed (resuming an interrupted run) -> {label: scores}."""
    cfg = preset(args.preset, data=args.data, holdout=args.holdout, seed=seed,
                 mixed_precision=args.mixed_precision, **overrides)
    steps_per_epoch = (10000 - args.holdout) // cfg.batch_size  # the 10k faces less the held-out ones
    cfg = cfg.replace(epochs=max(1, round(args.steps / cfg.n_critic / steps_per_epoch)))
    slug = name.split(" (")[0].replace(" ", "-").replace(",", "")
    run_dir = args.out / f"{slug}-seed{seed}"
    gan, _ = train(cfg, run_dir, resume=(run_dir / "checkpoints" / "checkpoint").exists(), verbose=0,
                   log=lambda message: None)
    save_grids(gan, run_dir)
    scores = {f"{name}, EMA": score(gan.sampling_generator, real, args.n)}
    if name == "baseline":
        scores[f"{name}, raw"] = score(gan.generator, real, args.n)
    return {label: {**s, "seed": seed} for label, s in scores.items()}


def scored(results, name, seed):
    """Whether an earlier invocation scored this row with this seed (seeds can be added later)."""
    return any(r["seed"] == seed for r in results.get(f"{name}, EMA", []))


def table(results, floor, args):
    lines = [f"| {args.preset}, {args.steps} D updates | FID: mean (each seed) | KID | face rate |",
             "|---|---|---|---|"]
    for label, runs in results.items():
        fid, kid, faces = (np.array([r[key] for r in runs]) for key in ("fid", "kid", "face_rate"))
        each = " / ".join(f"seed {r['seed']}: {r['fid']:.1f}" for r in runs)
        lines.append(f"| {label} | {fid.mean():.1f} ({each}) | {kid.mean():.4f} | {100 * faces.mean():.1f}% |")
    lines.append(f"| real-vs-real floor, n = {floor['n']} | {floor['fid']:.1f} | {floor['kid']:.4f} | |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the 10,000 CelebA faces (a zip or folder)")
    parser.add_argument("--preset", default="keras64")
    parser.add_argument("--out", type=Path, default=Path("runs/experiments"))
    parser.add_argument("--n", type=int, default=1000, help="faces scored, and held-out faces scored against")
    parser.add_argument("--holdout", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=3000, help="D updates per row")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rows", nargs="+", choices=[short_name(r) for r in ROWS], help="default: all")
    parser.add_argument("--mixed-precision", default="float32")
    args = parser.parse_args()
    image_size = preset(args.preset).image_size
    held_out = evaluate.RealSet(args.data, args.holdout, "holdout")
    real = held_out.features(args.n, image_size, progress=False)
    floor = held_out.floor(real, image_size, progress=False)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for name, overrides in ROWS.items():
        if args.rows and short_name(name) not in args.rows:
            continue
        for seed in args.seeds:
            if scored(results, name, seed):
                continue
            for label, scores in run_row(name, overrides, seed, args, real).items():
                results.setdefault(label, []).append(scores)
            results_path.write_text(json.dumps(results, indent=2) + "\n")
            print(name, seed, {k: v[-1]["fid"] for k, v in results.items() if k.startswith(name)}, flush=True)
    print(table(results, floor, args))


if __name__ == "__main__":
    main()

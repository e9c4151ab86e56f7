"""The "What helps" experiments of the README: dcgan32 on the 10,000 CelebA faces, the same
number of D updates per row (1,560; a WGAN-GP step makes n_critic of them), scored by FID / KID / face rate at n = 1,000 against the real faces.

  python bench/experiments.py --data ../shared/data/celeba_10k.zip --out runs/experiments

Rows: baseline (non-saturating BCE); a 2,000-image subset without and with DiffAugment;
hinge loss; WGAN-GP (n_critic 5). Each row is scored twice: the trained generator and its
EMA (0.999, the default; the same run, as EMA does not change training). Prints a markdown
table and writes results.json; each run's samples are in its run directory. Takes about
40 minutes on a 2-core CPU; runs differ by seed a lot at this budget (`--seed`).
"""

import argparse
import json
from pathlib import Path



from dcgan_tf import evaluate, latent, metrics
from dcgan_tf.config import preset
from dcgan_tf.generation import FaceGenerator
from dcgan_tf.images import save_grid
from dcgan_tf.training import train

STEPS = 1560  # D updates per row: 10 epochs of 10,000 images at batch 64

ROWS = [  # name, config overrides, images used; every row keeps the EMA generator (the default)
    ("baseline (BCE)", {}, 10000),
    ("subset 2,000", {}, 2000),
    ("subset 2,000 + DiffAugment", {"diffaugment": "color,translation,cutout"}, 2000),
    ("hinge loss", {"loss": "hinge"}, 10000),
    ("WGAN-GP, n_critic 5", {"loss": "wgan", "gp": "wgan-gp", "n_critic": 5}, 10000),
]


def score(generator, real, n):
    z = latent.sample(n, generator.input_shape[-1], seed=123)
    return evaluate.score(real, FaceGenerator.from_keras(generator).batches(z, batch_size=100), metrics.FaceRate())


def save_grids(gan, run_dir, n=64):
    """The trained and the EMA generator's faces for the same latent batch, side by side in the README."""
    z = latent.sample(n, gan.latent_dim, seed=7)
    for name, generator in (("raw", gan.generator), ("ema", gan.sampling_generator)):
        save_grid(latent.to_uint8(generator(z, training=False)).numpy(), run_dir / f"{name}.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_10k.zip"))
    parser.add_argument("--out", type=Path, default=Path("runs/experiments"))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights, z, shuffling)")
    args = parser.parse_args()
    real = evaluate.real_features(args.data, args.n, 32, progress=False)
    results = {}
    for name, overrides, images in ROWS:
        run_dir = args.out / name.split(" (")[0].replace(" ", "-").replace(",", "").replace("+", "plus")
        # the budget is D updates: a WGAN-GP step makes n_critic of them (and one G update)
        epochs = max(1, round(args.steps / overrides.get("n_critic", 1) / (images // 64)))
        cfg = preset("dcgan32", data=args.data, limit=images, epochs=epochs, seed=args.seed, **overrides)
        gan, _ = train(cfg, run_dir, resume=(run_dir / "checkpoints" / "checkpoint").exists(), verbose=0,
                       log=lambda message: None)
        save_grids(gan, run_dir)
        results[name] = score(gan.generator, real, args.n)
        results[name + ", EMA"] = score(gan.sampling_generator, real, args.n)
        print(name, results[name], results[name + ", EMA"], flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n| dcgan32, {args.steps} steps | FID | KID | face rate |\n|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['fid']:.1f} | {r['kid']:.4f} +- {r['kid_std']:.4f} | {100 * r['face_rate']:.1f}% |")


if __name__ == "__main__":
    main()

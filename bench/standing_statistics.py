"""The EMA generator's BatchNorm statistics: copied from the trained generator, or its own
("standing", recomputed over batches of z: dcgan_tf.model.ema.StandingStatistics), scored
on held-out faces at two latent seeds.

  python bench/standing_statistics.py saved_models/celeba64/generator.keras \
      --data ../shared/data/celeba_10k.zip --holdout 1000 --n 1000

The model's training batch size (32 for keras64) is the batch size of the standing batches.
"""

import argparse
import time

import keras

from dcgan_tf.metrics import evaluate
from dcgan_tf.model import ema, latent
from dcgan_tf.utils.images import to_uint8


def scores(generator, real, n, seed, batch_size=100):
    z = latent.sample(n, int(generator.inputs[0].shape[-1]), seed)
    batches = (to_uint8(generator(z[i:i + batch_size], training=False)).numpy() for i in range(0, n, batch_size))
    return evaluate.score(real, batches)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a generator .keras file")
    parser.add_argument("--data", required=True)
    parser.add_argument("--holdout", type=int, required=True, help="the held-out count the model was trained with")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20, help="standing batches (the default of --ema-standing-batches)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    generator = keras.saving.load_model(args.model, safe_mode=True)
    size = int(generator.outputs[0].shape[1])
    real = evaluate.RealSet(args.data, args.holdout, "holdout").features(args.n, size, progress=False)
    latent_dim = int(generator.inputs[0].shape[-1])
    standing = [latent.sample(args.batches * args.batch_size, latent_dim, 123).numpy()[i:i + args.batch_size]
                for i in range(0, args.batches * args.batch_size, args.batch_size)]
    print(f"| statistics | seed | FID | KID |  (n = {args.n} generated vs {args.n} held-out)")
    print("|---|---|---|---|")
    for name in ("copied", "standing"):
        if name == "standing":
            start = time.perf_counter()
            ema.StandingStatistics(generator)(standing)
            print(f"(standing statistics over {args.batches} batches of {args.batch_size}: "
                  f"{time.perf_counter() - start:.1f} s)")
        for seed in args.seeds:
            result = scores(generator, real, args.n, seed)
            print(f"| {name} | {seed} | {result['fid']:.2f} | {result['kid']:.4f} |", flush=True)


if __name__ == "__main__":
    main()

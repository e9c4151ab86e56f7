"""Time to quality: the keras.io reference step (bench/keras_io_reference.py) and ours, each
trained for the same wall-clock budgets on the same faces and machine, taking turns, both
scored with the same held-out FID/KID protocol at every budget.

  python bench/time_to_quality.py --data celeba_10k.zip --budgets 15 30 60 120
  python bench/time_to_quality.py --data celeba_10k.zip --ours "" --ours "--mixed-precision mixed_bfloat16"

Budgets are minutes of training (scoring is not counted). The reference is the example as
it is: float32, Adam 1e-4, a fresh z for G, noisy labels, no EMA. Ours is train.py's
keras64 with the flags given to --ours (default: none, train.py's defaults); repeat --ours
to race several of ours against the same reference, e.g. float32 against bfloat16, whose
steps are faster and worse. Reported: each contender's FID/KID per budget, the real-vs-real
floor, and for each of ours the ratio of the reference's total time to the time it needs to
reach the reference's final FID (linear in log-time between budgets). Writes results.json
in --out after every budget and checkpoints every contender every five minutes of its
training: run again with the same --out and flags to go on where it stopped (the whole
table takes longer than a working session on a small CPU).
"""

import json
import math
import re
import shlex
import time
from pathlib import Path

import keras
import tensorflow as tf
from experiments import score
from keras_io_reference import build_reference

from dcgan_tf.cli.flags import ArgumentParser, add_config_flags, config_overrides
from dcgan_tf.config import preset
from dcgan_tf.data.pipeline import make_dataset
from dcgan_tf.data.sources import load_images
from dcgan_tf.metrics import evaluate
from dcgan_tf.model.gan import build_gan

REFERENCE = "keras.io reference"  # its name in results.json; its scores mark the budgets done


class TrainingClock(keras.callbacks.Callback):
    """Adds each batch's time to the contender's checkpointed clock, saves the contender every
    `save_every` seconds of it (a session that ends mid-slice loses minutes, not the slice)
    and once more when the clock reaches `seconds`, where it stops fit."""

    def __init__(self, contender, seconds, save_every):
        super().__init__()
        self.contender, self.seconds, self.save_every = contender, seconds, save_every

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        before = float(self.contender.spent.numpy())
        after = before + time.perf_counter() - self.start
        self.contender.spent.assign(after)
        done = after >= self.seconds
        if done or before // self.save_every < after // self.save_every:
            self.contender.manager.save()
        if done:
            self.model.stop_training = True


class Contender:
    """One GAN trained in wall-clock slices; its state and the training time it has had are
    checkpointed in `directory` and restored from there."""

    def __init__(self, name, gan, generator, dataset, directory):
        self.name, self.gan, self.generator, self.dataset = name, gan, generator, dataset
        self.spent = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        state = tf.train.Checkpoint(gan=gan, d_optimizer=gan.d_optimizer, g_optimizer=gan.g_optimizer,
                                    spent=self.spent)
        self.manager = tf.train.CheckpointManager(state, str(directory), max_to_keep=1)
        if self.manager.latest_checkpoint:
            state.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()

    def train_until(self, seconds, save_every=300):
        if float(self.spent.numpy()) < seconds:  # else restored from a slice that ended unscored
            self.gan.fit(self.dataset, epochs=10**6, verbose=0,
                         callbacks=[TrainingClock(self, seconds, save_every)])

    def score(self, real, n):
        return score(self.generator(), real, n)  # the same faces and scores as the What-helps table


def our_contender(flags, base, dataset, out):
    """Ours with train.py `flags` over keras64; named, and checkpointed in a folder, by its flags."""
    parser = ArgumentParser()
    add_config_flags(parser)
    overrides = config_overrides(parser.parse_args(shlex.split(flags)))
    gan = build_gan(preset(base.preset, data=base.data, holdout=base.holdout, **overrides))
    slug = re.sub(r"[^\w.]+", "_", flags).strip("_")
    name = f"ours ({flags})" if flags else "ours"
    return Contender(name, gan, lambda: gan.sampling_generator, dataset, out / ("ours_" + slug if slug else "ours"))


def minutes_to_reach(target, budgets, fids):
    """Minutes until the FID curve first reaches target, linear in log-time between budgets; None if never."""
    for i, fid in enumerate(fids):
        if fid <= target:
            if i == 0:
                return budgets[0]
            t0, t1, f0 = math.log(budgets[i - 1]), math.log(budgets[i]), fids[i - 1]
            return math.exp(t0 + (t1 - t0) * (f0 - target) / (f0 - fid))
    return None


def ratio(reach, budgets):
    """How much sooner than the reference's total time; a bound when the first scoring already reached it."""
    if reach is None:
        return "in no budget: < 1x"
    if reach == budgets[0]:  # somewhere before the first scoring: only a bound is known
        return f"by its first scoring ({reach:g} min): >= {budgets[-1] / reach:.2f}x"
    return f"after {reach:.1f} min: {budgets[-1] / reach:.2f}x"


def write_results(path, summary):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=float) + "\n")


def main():
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--budgets", type=float, nargs="+", default=[15, 30, 60, 120], help="minutes")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--holdout", type=int, default=1000)
    parser.add_argument("--ours", action="append", help='train.py flags of one of ours (repeatable; default: "")')
    parser.add_argument("--out", type=Path, default=Path("runs/time_to_quality"))
    args = parser.parse_args()
    cfg = preset("keras64", data=args.data, holdout=args.holdout)
    images, _ = load_images(cfg.data, cfg.image_size, holdout=cfg.holdout, part="train")
    held_out = evaluate.RealSet(cfg.data, cfg.holdout, "holdout")
    real = held_out.features(args.n, cfg.image_size, progress=False)
    floor = held_out.floor(real, cfg.image_size, progress=False)

    results_file = args.out / "results.json"
    done = json.loads(results_file.read_text())["results"] if results_file.exists() else {}
    minutes_done = [r["minutes"] for r in done.get(REFERENCE, [])]
    budgets_done = len(minutes_done)
    if args.budgets[:budgets_done] != minutes_done:
        raise SystemExit(f"{results_file} holds other budgets; give its --budgets or another --out")

    def dataset():  # a resumed table reshuffles instead of replaying the first budgets' order
        return make_dataset(images, cfg.batch_size, seed=cfg.seed + budgets_done)

    reference = build_reference(cfg)  # always float32: build_gan keeps each config's precision to its GAN
    contenders = [Contender(REFERENCE, reference, lambda: reference.generator, dataset(),
                            args.out / "reference")]
    contenders += [our_contender(flags, cfg, dataset(), args.out) for flags in args.ours or [""]]
    results = {c.name: done.get(c.name, []) for c in contenders}
    summary = {"floor": floor, "results": results}
    for i, budget in enumerate(args.budgets):
        for contender in contenders:  # taking turns: all see the same machine state
            if len(results[contender.name]) > i:
                continue  # scored before an interruption
            contender.train_until(budget * 60)
            scores = contender.score(real, args.n)
            results[contender.name].append({"minutes": budget, "steps": int(contender.gan.g_optimizer.iterations),
                                            **scores})
            write_results(results_file, summary)
            print(f"{budget:g} min  {contender.name}: FID {scores['fid']:.1f}  KID {scores['kid']:.4f}", flush=True)
    target = results[REFERENCE][-1]["fid"]
    print(f"real-vs-real floor: FID {floor['fid']:.1f} (n = {floor['n']})")
    summary["minutes_to_reference_final"] = {}
    for contender in contenders[1:]:
        reach = minutes_to_reach(target, args.budgets, [r["fid"] for r in results[contender.name]])
        summary["minutes_to_reference_final"][contender.name] = reach
        print(f"{contender.name} reaches the reference's final FID {target:.1f} " + ratio(reach, args.budgets))
    write_results(results_file, summary)


if __name__ == "__main__":
    main()

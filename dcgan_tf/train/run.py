"""A training run: data -> GAN -> model.fit with the run's callbacks -> export.

A run directory holds everything needed to look at, resume or export the run:
dcgan_config.json, real_batch.png, samples/epoch_NNN.png, history.csv (epoch means),
steps.csv and losses.png (per-step curves) and checkpoints/.
"""

import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf.config import Config
from dcgan_tf.data.labels import load_labelled_images
from dcgan_tf.data.pipeline import make_dataset
from dcgan_tf.data.sources import load_images
from dcgan_tf.model import ada
from dcgan_tf.model.gan import DCGAN, build_gan
from dcgan_tf.serve.export import export_generator
from dcgan_tf.train import callbacks, preflight, run_logs
from dcgan_tf.train.checkpoints import TrainingCheckpoint, readable_checkpoint
from dcgan_tf.train.distribute import is_chief, make_strategy, writer_dir
from dcgan_tf.utils.batches import verbosity
from dcgan_tf.utils.files import written_atomically
from dcgan_tf.utils.images import save_grid

REAL_BATCH_COUNT = 20
EVAL_KEYS = ("fid", "kid", "fid_floor")
BEST_DIR = "best"


class TrainingStopped(RuntimeError):
    """Training ended early on a NaN loss; the message says what was saved."""

    exit_code = 1


class TrainingInterrupted(TrainingStopped):
    """Ctrl-C or SIGTERM: the state was saved and --resume continues."""

    def __init__(self, message, exit_code=130):  # 130: the shell's code for SIGINT
        super().__init__(message)
        self.exit_code = exit_code


def read_data(cfg, part, limit, progress, strict=False):
    """(images, labels, LoadReport) of one part of cfg.data's held-out split (see load_images):
    labels are the 0/1 values of the cfg.condition attributes per image for a conditional run,
    else None. A conditional run leaves out images without a row in cfg.attrs (counted in the report)."""
    options = {"progress": progress, "strict": strict, "holdout": cfg.holdout, "part": part}
    if not cfg.condition:
        images, report = load_images(cfg.data, cfg.image_size, cfg.crop, limit, seed=cfg.seed, **options)
        return images, None, report
    labelled, report = load_labelled_images(cfg.data, cfg.attrs, cfg.image_size, cfg.crop, limit=limit,
                                            attributes=cfg.condition, **options)
    return labelled.images, labelled.labels, report


def evaluation_images(cfg, images, labels, log):
    """The real images --eval-every scores against, with their labels for a conditional run:
    the held-out part when the run has one, else the first training images (said so, as
    that FID flatters a model that memorises)."""
    if cfg.holdout:
        held_out, held_out_labels, _ = read_data(cfg, "holdout", cfg.eval_n, progress=False)
        log(f"--eval-every: FID/KID against {len(held_out)} held-out images")
        return held_out, held_out_labels
    log(f"--eval-every: FID/KID against {min(cfg.eval_n, len(images))} training images (no --holdout)")
    return images[:cfg.eval_n], None if labels is None else labels[:cfg.eval_n]


@dataclasses.dataclass
class Run:
    """What one training run works with. run_dir is where its files go (a temporary directory
    on the workers of a multi-worker run that are not the chief); a rollback replaces cfg."""

    cfg: Config
    run_dir: Path
    gan: DCGAN
    checkpoint: TrainingCheckpoint
    images: np.ndarray  # the training images (uint8)
    labels: np.ndarray | None  # their attribute values, for a conditional run
    dataset: tf.data.Dataset
    evaluation_set: tuple | None  # (images, labels) --eval-every scores against


@dataclasses.dataclass
class RunCallbacks:
    """The callbacks of one fit, the three the training loop talks to by name."""

    guard: callbacks.NanGuard
    curves: callbacks.LossCurves
    saver: callbacks.SaveCheckpoint
    ordered: list  # all of them, in the order fit runs them


def run_callbacks(run, resume, initial_epoch):
    cfg, run_dir = run.cfg, run.run_dir
    history = callbacks.EpochHistory(str(run_dir / "history.csv"), append=resume,
                                     extra_keys=EVAL_KEYS[:2 + bool(cfg.holdout)] if cfg.eval_every else ())
    tensorboard_dir = run_dir / "tensorboard" if cfg.tensorboard else None
    tensorboard = [callbacks.Hyperparameters(tensorboard_dir, cfg),
                   keras.callbacks.TensorBoard(str(tensorboard_dir), write_graph=False)] if cfg.tensorboard else []
    decaying = bool(cfg.d_lr_half_life or cfg.g_lr_half_life)
    rates = [callbacks.LearningRates()] if cfg.tensorboard or decaying else []  # logged, in history.csv too
    schedules = [callbacks.LearningRateDecay(cfg.discriminator_lr, cfg.lr, cfg.d_lr_half_life,
                                             cfg.g_lr_half_life)] if decaying else []
    if cfg.ada_target:
        schedules.append(ada.AdaptAugmentation(cfg.ada_interval, cfg.ada_target, cfg.ada_kimg))
    standing = [callbacks.StandingStatistics(cfg.ema_standing_batches, cfg.batch_size, cfg.latent_dim,
                                             cfg.seed + 3, run.labels)] if cfg.ema and cfg.ema_standing_batches else []
    evaluation = []
    if cfg.eval_every:
        eval_images, eval_labels = run.evaluation_set
        evaluation = [callbacks.Evaluation(eval_images, cfg.eval_every, cfg.latent_dim, cfg.seed + 2,
                                           on_best=lambda epoch, fid: save_best(run.checkpoint, run_dir, epoch, fid),
                                           best_fid=best_fid(run_dir), attributes=eval_labels,
                                           floor_images=run.images[:len(eval_images)] if cfg.holdout else None)]
    guard = callbacks.NanGuard()
    curves = callbacks.LossCurves(run_dir, cfg.loss, gauges=ada.LOG_KEYS if cfg.ada_target else ())
    saver = callbacks.SaveCheckpoint(run.checkpoint, initial_epoch, guard)
    # A conditional model's samples have the attributes of the first training images.
    samples = callbacks.SampleGrid(run_dir / "samples", cfg.sample_count, cfg.latent_dim, seed=cfg.seed + 1,
                                   tensorboard_dir=tensorboard_dir, attributes=run.labels)
    # The guard first; the checkpoint last: an epoch is done once its grid and log rows are
    # written, so a crash between them leaves the epoch to be trained (and logged) again.
    return RunCallbacks(guard, curves, saver, [guard, callbacks.StopSignals(), *schedules, *standing, samples, *evaluation,
                                               *rates, *tensorboard, history, curves, saver])


def save_best(checkpoint, run_dir, epoch, fid):
    """The state with the lowest FID so far: best/ckpt (generate.py and --export read it) and
    best.json, replaced together so the two always agree."""
    with written_atomically(Path(run_dir) / BEST_DIR) as (best,):
        best.mkdir()
        checkpoint.epoch.assign(epoch)
        checkpoint.state.write(str(best / "ckpt"))
        (best / "best.json").write_text(json.dumps({"epoch": epoch, "fid": fid}) + "\n")


def best_fid(run_dir):
    path = Path(run_dir) / BEST_DIR / "best.json"
    return json.loads(path.read_text())["fid"] if path.is_file() else math.inf


def train(cfg: Config, run_dir, resume=False, export_dir=None, verbose="auto", log=print, extra_callbacks=(),
          export_weights="float32"):
    """Train (or resume) a run; export the generator to export_dir at the end if given,
    its weights stored as export_weights (see dcgan_tf.export).

    verbose is fit's; "auto" draws a live bar on a terminal and writes one line per epoch
    elsewhere (see utils.batches.verbosity). extra_callbacks are Keras callbacks added to
    the run's own. Under a multi-worker strategy only the chief writes run_dir and exports
    (see dcgan_tf.distribute).
    """
    verbose = verbosity() if verbose == "auto" else verbose
    strategy = make_strategy(cfg.strategy)
    preflight.check_strategy(cfg, strategy.num_replicas_in_sync, log)
    chief = is_chief(strategy)
    run_dir = Path(run_dir)
    if chief:
        preflight.check_run(cfg, run_dir, resume, export_dir, strategy.num_replicas_in_sync)
    out_dir = Path(writer_dir(run_dir, strategy))
    images, labels, report = read_data(cfg, "train", cfg.limit, progress=verbose != 0, strict=cfg.strict)
    log(report.summary())
    preflight.check_data(cfg, images, strategy.num_replicas_in_sync)
    evaluation_set = evaluation_images(cfg, images, labels, log) if cfg.eval_every else None

    gan = build_gan(cfg, strategy)
    checkpoint = TrainingCheckpoint(gan, out_dir, cfg.checkpoints_to_keep)
    if resume:  # every worker restores the chief's checkpoint
        initial_epoch = checkpoint.restore(readable_checkpoint(run_dir, log=log))
        # The config's rates, not the checkpoint's: a --resume --lr override takes effect.
        gan.set_learning_rates(cfg.discriminator_lr, cfg.lr)
        run_logs.trim_logs(out_dir, initial_epoch, gan.step_count())
        if initial_epoch >= cfg.epochs:
            log(f"{run_dir} has already trained all its {cfg.epochs} epochs: nothing is left to train "
                "(pass a larger --epochs to train on)")
        else:
            log(f"resuming {run_dir} at epoch {initial_epoch + 1} of {cfg.epochs}")
    else:
        initial_epoch = 0
    # Only once the data is good and a resume has restored: a failed start or resume leaves
    # the run's config as it was.
    cfg.save(out_dir)
    save_grid(images[:REAL_BATCH_COUNT], out_dir / "real_batch.png", rows=2)
    if not resume:
        checkpoint.save(0)  # the untrained state: a NaN in the first epoch can roll back to it
    # A resumed run shuffles anew instead of replaying the first epochs' order.
    dataset = make_dataset(images, cfg.batch_size, seed=cfg.seed + initial_epoch, labels=labels)
    run = Run(cfg, out_dir, gan, checkpoint, images, labels, dataset, evaluation_set)
    history = _fit(run, resume, initial_epoch, verbose, log, extra_callbacks)
    if export_dir is not None and chief:
        path = export_generator(gan.sampling_generator, run.cfg, export_dir, export_weights)
        log(f"exported the generator to {path}")
    if not chief:
        shutil.rmtree(out_dir, ignore_errors=True)
    return gan, history


def step_logs(run, fit_callbacks, verbose):
    """The callback list of one fit, reading the steps' values every cfg.log_every steps."""
    steps = int(run.dataset.cardinality())
    return callbacks.StepLogsEvery(fit_callbacks, run.cfg.log_every, model=run.gan, verbose=verbose,
                                   epochs=run.cfg.epochs, steps=steps if steps > 0 else None)


def _fit(run, resume, initial_epoch, verbose, log, extra_callbacks):
    """model.fit with the run's callbacks; Ctrl-C saves, a NaN loss rolls back once or stops.
    Returns the history; a rollback halves the learning rates in run.cfg."""
    gan, checkpoint = run.gan, run.checkpoint
    rolled_back = False
    while True:
        fit_callbacks = run_callbacks(run, resume, initial_epoch)
        guard, curves, saver = fit_callbacks.guard, fit_callbacks.curves, fit_callbacks.saver
        try:
            history = gan.fit(run.dataset, epochs=run.cfg.epochs, initial_epoch=initial_epoch, verbose=verbose,
                              shuffle=False, callbacks=step_logs(run, [*fit_callbacks.ordered, *extra_callbacks],
                                                                 verbose))
        except OSError as error:  # a sample grid or log row could not be written (disk full, I/O error)
            raise TrainingStopped(f"could not write {error.filename or 'an output file'} ({error.strerror or error}); "
                                  f"free some space, then continue with --resume (the checkpoint {checkpoint.latest} "
                                  "is intact)") from None
        except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM under the CLI (signals.Terminated)
            curves.flush()
            path = checkpoint.save(saver.completed_epochs)
            raise TrainingInterrupted(f"interrupted: saved {path} (epoch {saver.completed_epochs} complete, "
                                      f"step {gan.step_count()}); continue with --resume",
                                      getattr(interrupt, "exit_code", 130)) from None
        if guard.problem is None:
            return history
        problem = guard.problem
        if run.cfg.on_nan == "stop" or rolled_back:
            raise TrainingStopped(f"{problem}; stopped. The last good checkpoint is {checkpoint.latest}"
                                  + (" (already rolled back once)" if rolled_back else ""))
        initial_epoch = checkpoint.restore()
        run_logs.trim_logs(run.run_dir, initial_epoch, gan.step_count())
        # Recorded in dcgan_config.json, so the run says what it trains with and a resume keeps it.
        cfg = run.cfg = run.cfg.replace(lr=run.cfg.lr * 0.5, d_lr=run.cfg.discriminator_lr * 0.5)
        gan.set_learning_rates(cfg.discriminator_lr, cfg.lr)
        cfg.save(run.run_dir)
        log(f"{problem}: rolled back to {checkpoint.latest} (epoch {initial_epoch}) and halved the learning "
            f"rates (d {cfg.discriminator_lr:.2e}, g {cfg.lr:.2e}; saved in dcgan_config.json)")
        resume = rolled_back = True


def default_run_name(cfg):
    return f"{cfg.preset}-{Path(cfg.data).stem or cfg.data}".replace(os.sep, "_").replace(":", "_")

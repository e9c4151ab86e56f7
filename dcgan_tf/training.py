"""A training run: data -> GAN -> model.fit with the run's callbacks -> export.

A run directory holds everything needed to look at, resume or export the run:
config.json, real_batch.png, samples/epoch_NNN.png, history.csv (epoch means),
steps.csv and losses.png (per-step curves) and checkpoints/.
"""

import os
from pathlib import Path

from . import callbacks
from .checkpoints import TrainingCheckpoint, has_checkpoint
from .config import Config
from .data import load_images, make_dataset
from .export import export_generator
from .gan import build_gan
from .images import save_grid

REAL_BATCH_COUNT = 20


def prepare_run_dir(run_dir, resume):
    run_dir = Path(run_dir)
    if has_checkpoint(run_dir) and not resume:
        raise FileExistsError(f"{run_dir} already holds a training run: pass --resume to continue it, "
                              "or choose another --out")
    if resume and not has_checkpoint(run_dir):
        raise FileNotFoundError(f"--resume: no checkpoint in {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def run_callbacks(cfg, run_dir, checkpoint, resume):
    return [
        callbacks.Checkpoint(checkpoint),
        callbacks.SampleGrid(run_dir / "samples", cfg.sample_count, cfg.latent_dim, seed=cfg.seed + 1),
        callbacks.EpochHistory(str(run_dir / "history.csv"), append=resume),
        callbacks.LossCurves(run_dir),
    ]


def train(cfg: Config, run_dir, resume=False, export_dir=None, verbose="auto", log=print):
    """Train (or resume) a run; export the generator to export_dir at the end if given."""
    run_dir = prepare_run_dir(run_dir, resume)
    cfg.save(run_dir)

    images, report = load_images(cfg.data, cfg.image_size, cfg.crop, cfg.limit, seed=cfg.seed,
                                 progress=verbose != 0)
    log(report.summary())
    save_grid(images[:REAL_BATCH_COUNT], run_dir / "real_batch.png", rows=2)
    dataset = make_dataset(images, cfg.batch_size, seed=cfg.seed)

    gan = build_gan(cfg)
    checkpoint = TrainingCheckpoint(gan, run_dir, cfg.checkpoints_to_keep)
    initial_epoch = checkpoint.restore() if resume else 0
    if resume:
        log(f"resuming {run_dir} at epoch {initial_epoch + 1} of {cfg.epochs}")
    history = gan.fit(dataset, epochs=cfg.epochs, initial_epoch=initial_epoch, verbose=verbose, shuffle=False,
                      callbacks=run_callbacks(cfg, run_dir, checkpoint, resume))
    if export_dir is not None:
        path = export_generator(gan.generator, cfg, export_dir)
        log(f"exported the generator to {path}")
    return gan, history


def default_run_name(cfg):
    return f"{cfg.preset}-{Path(cfg.data).stem or cfg.data}".replace(os.sep, "_").replace(":", "_")

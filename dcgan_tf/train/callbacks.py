"""Keras callbacks of a training run: sample grids, loss curves, evaluation, checkpoints, stop signals."""

import csv
import math
from pathlib import Path

import keras
import numpy as np

from dcgan_tf.edit import conditioning
from dcgan_tf.model import ema, latent
from dcgan_tf.train import plots
from dcgan_tf.utils import signals
from dcgan_tf.utils.images import save_grid, to_uint8

LOSS_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")


def finite(logs):
    return all(math.isfinite(float(logs[k])) for k in LOSS_KEYS if k in (logs or {}))


class StepCallback(keras.callbacks.Callback):
    """A callback that knows the training step of each batch callback without reading the step
    counter back from the device: it is read once per epoch and counted on from the batch index.
    With steps_per_execution N, batch callbacks fire once per N steps, after the last of them."""

    def on_epoch_begin(self, epoch, logs=None):
        self.first_step = self.model.step_count()

    def step_at(self, batch):
        steps = self.params.get("steps")  # the epoch's last execution may run fewer than N steps
        return self.first_step + (batch + 1 if steps is None else min(batch + 1, steps))


class StepLogsEvery(keras.callbacks.CallbackList):
    """fit's callback list (pass it as fit's callbacks), which gives the batch callbacks a
    step's values every `every` steps and at the epoch's last step, and empty logs in between.

    Keras converts the batch logs to Python floats before any batch callback runs, and that
    waits for the device to finish the step: a host round trip per step, during which the
    host cannot queue the next one. In between reads the steps run without one. The epoch
    logs (the trackers' means) are fit's own, whatever `every` is.
    """

    def __init__(self, callbacks, every, model, verbose, epochs, steps):
        super().__init__(callbacks, add_history=True, add_progbar=verbose != 0, model=model, verbose=verbose,
                         epochs=epochs, steps=steps)
        self.every = int(every)

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.next_read = self.every

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1  # steps of the epoch trained: with steps_per_execution, batch is the execution's last
        steps = self.params.get("steps")
        if done >= self.next_read or (steps is not None and done >= steps):
            self.next_read = (done // self.every + 1) * self.every
        else:
            logs = {}
        super().on_train_batch_end(batch, logs)


class NanGuard(StepCallback):
    """Stops training at the first batch callback whose step's losses are NaN or Inf, or at the
    end of an epoch whose mean losses or weights are (BatchNorm statistics can go bad with no
    loss showing it); `problem` then says what happened, and Checkpoint saves nothing.

    The batch logs hold the values of the execution's last step (when StepLogsEvery passes
    them); the epoch means catch a bad step in between.
    """

    def __init__(self):
        super().__init__()
        self.problem = None

    def _stop(self, problem):
        self.problem = problem
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        if not finite(logs):
            self._stop(f"a loss became NaN/Inf at step {self.step_at(batch)}")

    def on_epoch_end(self, epoch, logs=None):
        if self.problem is None and not finite(logs):
            self._stop(f"a loss became NaN/Inf by step {self.model.step_count()}")
        if self.problem is None:
            bad = [w.path for w in self.model.weights if not np.isfinite(keras.ops.convert_to_numpy(w)).all()]
            if bad:
                self._stop(f"weights became NaN/Inf by step {self.model.step_count()} ({', '.join(bad[:3])})")


def generator_inputs(count, latent_dim, seed, attributes=None):
    """`count` latent vectors, joined to rows of attribute values for a conditional model
    (dcgan_tf.conditioning; the rows repeat when there are fewer than count)."""
    z = latent.sample(count, latent_dim, seed).numpy()
    if attributes is None:
        return z
    return conditioning.join_rows(z, np.resize(attributes, (count, attributes.shape[1])))


class StandingStatistics(keras.callbacks.Callback):
    """At the end of each epoch, before its samples, evaluation and checkpoint: the EMA
    generator's BatchNorm statistics recomputed for its averaged weights (model.ema), from
    `batches` fixed batches of generator inputs."""

    def __init__(self, batches, batch_size, latent_dim, seed, attributes=None):
        super().__init__()
        rows = generator_inputs(batches * batch_size, latent_dim, seed, attributes)
        self.batches = [rows[i:i + batch_size] if attributes is None else
                        conditioning.split_rows(rows[i:i + batch_size], latent_dim)
                        for i in range(0, len(rows), batch_size)]
        self.recompute = None

    def on_epoch_end(self, epoch, logs=None):
        average = self.model.ema_generator
        if average is None or not finite(logs):
            return
        if self.recompute is None or self.recompute.average is not average:
            self.recompute = ema.StandingStatistics(average)
        self.recompute(self.batches)


class StopSignals(keras.callbacks.Callback):
    """Ctrl-C or SIGTERM that library code swallowed is raised again after the step (see
    signals.raise_if_stopped), so the run still saves and stops instead of training on."""

    def on_train_batch_end(self, batch, logs=None):
        signals.raise_if_stopped()


class SampleGrid(keras.callbacks.Callback):
    """Each epoch, the generator's images for one fixed latent batch (with fixed attributes for
    a conditional model): samples/epoch_NNN.png (and an image summary when tensorboard_dir is given)."""

    def __init__(self, directory, count, latent_dim, seed, tensorboard_dir=None, attributes=None):
        super().__init__()
        self.directory = Path(directory)
        rows = generator_inputs(count, latent_dim, seed, attributes)
        self.inputs = rows if attributes is None else conditioning.split_rows(rows, latent_dim)  # the model's inputs
        self.writer = None
        if tensorboard_dir is not None:
            import tensorflow as tf
            self.writer = tf.summary.create_file_writer(str(Path(tensorboard_dir) / "samples"))

    def on_epoch_end(self, epoch, logs=None):
        if not finite(logs):
            return
        images = to_uint8(self.model.sampling_generator(self.inputs, training=False)).numpy()
        path = save_grid(images, self.directory / f"epoch_{epoch + 1:03d}.png")
        if self.writer is not None:
            import tensorflow as tf
            from PIL import Image
            with self.writer.as_default():
                # step=epoch: the step Keras' TensorBoard logs that epoch's scalars on
                tf.summary.image("samples", np.asarray(Image.open(path))[None], step=epoch)
            self.writer.flush()


class LearningRates(keras.callbacks.Callback):
    """Adds both optimizers' learning rates to the epoch logs (for TensorBoard and history.csv)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["d_lr"] = float(self.model.d_optimizer.learning_rate)
            logs["g_lr"] = float(self.model.g_optimizer.learning_rate)


class LearningRateDecay(keras.callbacks.Callback):
    """At the start of each epoch, each network's rate is its configured rate halved once
    every `half_life` epochs (smoothly: rate * 0.5 ** (epoch / half_life)); 0 keeps it constant."""

    def __init__(self, d_lr, g_lr, d_half_life, g_half_life):
        super().__init__()
        self.rates = ((d_lr, d_half_life), (g_lr, g_half_life))

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_learning_rates(*(rate * 0.5 ** (epoch / half_life) if half_life else rate
                                        for rate, half_life in self.rates))


class Hyperparameters(keras.callbacks.Callback):
    """The run's config in TensorBoard's HPARAMS tab (its hparams plugin), written when fit starts;
    values other than bool, int, float and str (the tuples: g_mult, condition) as their text."""

    def __init__(self, tensorboard_dir, cfg):
        super().__init__()
        self.tensorboard_dir, self.cfg = Path(tensorboard_dir), cfg

    def on_train_begin(self, logs=None):
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hparams
        values = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in self.cfg.to_dict().items()}
        writer = tf.summary.create_file_writer(str(self.tensorboard_dir))
        with writer.as_default():
            hparams.hparams(values)
        writer.close()


class LossCurves(StepCallback):
    """Per-step losses and D outputs in steps.csv, plotted to losses.png each epoch.

    Each row holds one step's own values, as train_step returned them in the batch logs:
    every step, or the steps whose values StepLogsEvery passes (and, with steps_per_execution,
    the last step of an execution). `gauges` are further logged values to record (adaptive
    augmentation's p and r_t).
    """

    def __init__(self, run_dir, loss="bce", gauges=()):
        super().__init__()
        self.loss, self.gauges = loss, tuple(gauges)
        self.csv_path = Path(run_dir) / "steps.csv"
        self.plot_path = Path(run_dir) / "losses.png"
        self.rows, self.step = [], None

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self.epoch, self.step = epoch + 1, self.first_step

    def on_train_batch_end(self, batch, logs=None):
        if not logs:  # a step StepLogsEvery did not read
            return
        self.step = self.step_at(batch)
        self.rows.append([self.step, self.epoch, *(logs[k] for k in LOSS_KEYS + self.gauges)])

    def on_epoch_end(self, epoch, logs=None):
        self.flush()
        plots.plot_losses(self.csv_path, self.plot_path, self.csv_path.with_name("history.csv"), self.loss)

    def _catch_up(self):
        """Record the step trained since the last batch callback from the logs the model kept
        (DCGAN.latest_logs): Ctrl-C or SIGTERM lands when a step returns to Python, before that
        step's callbacks."""
        if self.step is not None and self.model.step_count() > self.step:
            logs = {k: float(np.mean(keras.ops.convert_to_numpy(v))) for k, v in self.model.latest_logs.items()}
            self.on_train_batch_end(self.model.step_count() - self.first_step - 1, logs)

    def flush(self):
        """Append the rows not yet written (also called when training is interrupted)."""
        self._catch_up()
        new_file = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new_file:
                writer.writerow(["step", "epoch", *LOSS_KEYS, *self.gauges])
            writer.writerows(self.rows)
        self.rows = []


class EpochHistory(keras.callbacks.CSVLogger):
    """history.csv: one row of epoch means per epoch, numbered from 1 like the samples and checkpoints.

    Keras' CSVLogger adds empty val_* columns when there is no validation data; the columns
    here are the logged metrics only, plus `extra_keys` logged on some epochs only (fid, kid).
    """

    def __init__(self, filename, append=False, extra_keys=()):
        super().__init__(filename, append=append)
        self.extra_keys = set(extra_keys)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.keys = self._existing_columns()  # rows appended to a resumed run keep its columns

    def _existing_columns(self):
        path = Path(self.filename)
        if not self.append or not path.is_file():
            return None
        with path.open(newline="") as f:
            header = next(csv.reader(f), None)
        return header[1:] if header else None

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = sorted(set(logs or {}) | self.extra_keys)
        super().on_epoch_end(epoch + 1, logs)


class Evaluation(keras.callbacks.Callback):
    """Every `every` epochs, FID and KID of the faces of one fixed latent batch against
    `real_images` (added to the epoch's logs: history.csv and the plot); calls
    on_best(epoch, fid) when the FID improves. With `floor_images` (as many training images,
    when real_images are held out) it also logs fid_floor, the real-vs-real FID at that n.
    A conditional model makes its faces with `attributes`, the real images' own, so both
    sets have the same mix."""

    def __init__(self, real_images, every, latent_dim, seed, on_best, best_fid=math.inf, floor_images=None,
                 attributes=None):
        super().__init__()
        self.real_images, self.every, self.on_best, self.best_fid = real_images, every, on_best, best_fid
        self.floor_images = floor_images
        self.inputs = generator_inputs(len(real_images), latent_dim, seed, attributes)
        self.real_features, self.floor = None, None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or not finite(logs):
            return
        from dcgan_tf.metrics import evaluate, fid, inception
        from dcgan_tf.serve.generation import FaceGenerator
        if self.real_features is None:
            self.real_features = inception.features(self.real_images)
            if self.floor_images is not None:
                self.floor = fid.fid(inception.features(self.floor_images), self.real_features)
        fakes = FaceGenerator.from_keras(self.model.sampling_generator).batches(self.inputs, batch_size=100)
        scores = evaluate.score(self.real_features, fakes)
        logs["fid"], logs["kid"] = scores["fid"], scores["kid"]
        if self.floor is not None:
            logs["fid_floor"] = self.floor
        if logs["fid"] < self.best_fid:
            self.best_fid = logs["fid"]
            self.on_best(epoch + 1, logs["fid"])


class SaveCheckpoint(keras.callbacks.Callback):
    """Saves a TrainingCheckpoint at the end of every epoch the NanGuard found sound."""

    def __init__(self, training_checkpoint, completed_epochs, guard):
        super().__init__()
        self.training_checkpoint = training_checkpoint
        self.completed_epochs = completed_epochs
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.problem is None:
            self.training_checkpoint.save(epoch + 1)
            self.completed_epochs = epoch + 1

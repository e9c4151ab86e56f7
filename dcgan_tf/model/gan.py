"""The DCGAN keras.Model: a custom train_step run by model.fit.

It is the keras.io DCGAN's train_step plus what a real run needs:
- G and D are called with training=True in the step, else BatchNorm runs in inference mode.
- compile() builds both optimizers, so fit under a tf.distribute strategy, checkpoint
  restores and .keras loads find every optimizer variable (nothing silently skipped).
- Losses are per-replica means divided by the replica count before the gradient, which
  is what the optimizers' cross-replica sum expects.
- train_step reads top to bottom: every random value of the step first (z, DiffAugment's
  seeds, the WGAN-GP mix; each D update and G's update its own, from a stateless seed of
  (seed, step, stream, update), so a resumed run continues the same streams), then the
  n_critic D updates, then G's update, each with its own tape. Values are drawn for the
  global batch and each replica takes its slice (distribute.replica_rows).
- train_step returns the step's own losses and D outputs; the trackers hold the epoch means.
- `step` counts every train_step, also one whose update a mixed_float16 loss scaler
  skipped, so the next step draws fresh values.
- The generator's exponential moving average (dcgan_tf.ema) is what call(), generate()
  and exports use; the penalties live in dcgan_tf.model.losses.
- Under mixed_float16 both optimizers are wrapped in a LossScaleOptimizer.
- With adaptive augmentation (dcgan_tf.model.ada) DiffAugment applies each policy with the
  probability ada.p, and the step adds the signs of D's real logits to ada's accumulators.
- A conditional GAN (dcgan_tf.models, Config.condition) trains on (images, attributes)
  batches: G makes each fake with the attributes of a real image of the batch, so the
  fakes' attributes follow the data's, and D judges every image with its attributes.
"""

import enum
import functools
import typing

import keras
import tensorflow as tf

from dcgan_tf.config import JIT_MODES, Config
from dcgan_tf.model import ada, augment, ema, latent, losses
from dcgan_tf.model.networks import build_discriminator, build_generator
from dcgan_tf.model.optimizer_pair import OptimizerPair
from dcgan_tf.train.distribute import overflow_everywhere, replica_rows
from dcgan_tf.utils import precision
from dcgan_tf.utils.images import to_uint8


class Stream(enum.IntEnum):
    """The independent random streams of one update of a training step (see DCGAN._seed)."""

    D_UPDATE_Z = 0  # z of the fakes D trains on (and G trains on, when the fake batch is reused)
    G_UPDATE_Z = 1  # z of the fakes G trains on without reuse_fake
    D_UPDATE_AUGMENT_REAL = 2
    D_UPDATE_AUGMENT_FAKE = 3
    G_UPDATE_AUGMENT = 4
    D_UPDATE_PENALTY_MIX = 5


class DiscriminatorDraws(typing.NamedTuple):
    """The random values of one D update: z of its fakes, DiffAugment's seeds, the WGAN-GP mix."""

    z: tf.Tensor
    augment_real: tf.Tensor
    augment_fake: tf.Tensor
    mix: tf.Tensor  # [batch, 1, 1, 1] in [0, 1]


class GeneratorDraws(typing.NamedTuple):
    """The random values of G's update: z of its own fakes (unused with reuse_fake), DiffAugment's seed."""

    z: tf.Tensor
    augment: tf.Tensor


@keras.saving.register_keras_serializable(package="dcgan_tf")
class DCGAN(keras.Model):
    def __init__(self, generator, discriminator, seed=0, ema_decay=0.0, adaptive_augment=False, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.seed = int(seed)
        self.ema_decay = float(ema_decay)
        self.ema_generator = ema.averaged_copy(generator) if self.ema_decay else None
        self.ada = ada.AdaptiveAugment(name="ada") if adaptive_augment else None
        self.latent_dim = int(generator.inputs[0].shape[-1])
        # A conditional generator takes [z, attributes] (dcgan_tf.models).
        self.attribute_count = int(generator.inputs[1].shape[-1]) if len(generator.inputs) == 2 else 0
        # only_first_replica: every replica adds 1 in step; the value is the same everywhere.
        self.step = keras.Variable(0, dtype="int64", trainable=False, aggregation="only_first_replica", name="step")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        # Mean D output on real and fake images: a probability (sigmoid) for bce, the raw score otherwise.
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        # Every value the step logs has a tracker, or fit would log the epoch's last step's values
        # in place of its means (it logs the means only when the names match).
        self.gauge_trackers = [keras.metrics.Mean(name=name) for name in ada.LOG_KEYS] if adaptive_augment else []

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker,
                *self.gauge_trackers]

    def build(self, input_shape=None):
        # G and D are built by their Input layers; this marks the wrapper built so
        # save_weights, checkpoints and export work before and after fit.
        self.built = True

    @property
    def conditional(self):
        return self.attribute_count > 0

    @property
    def sampling_generator(self):
        """The generator for samples, evaluation and export: the EMA copy when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def call(self, inputs, training=False):
        """inputs: z, or [z, attributes] for a conditional GAN."""
        return self.sampling_generator(inputs, training=training)

    def generate(self, n, seed=0, attributes=None):
        """n uint8 images [n, H, W, 3]; the same seed always gives the same images.
        A conditional GAN takes their attributes too: one vector for all, or one row per image."""
        z = latent.sample(n, self.latent_dim, seed)
        if self.conditional:
            if attributes is None:
                raise ValueError(f"a conditional GAN needs the {self.attribute_count} attribute values of its faces")
            z = [z, tf.broadcast_to(tf.constant(attributes, tf.float32), (n, self.attribute_count))]
        return to_uint8(self(z)).numpy()

    def compile(self, d_optimizer, g_optimizer, loss_fn="bce", label_smoothing=0.0, reuse_fake=True,
                diffaugment="", gp="none", gp_weight=10.0, n_critic=1, **kwargs):
        super().compile(optimizer=None, **kwargs)
        if self.generator.dtype_policy.name == "mixed_float16":
            d_optimizer, g_optimizer = (
                opt if isinstance(opt, keras.optimizers.LossScaleOptimizer) else keras.optimizers.LossScaleOptimizer(opt)
                for opt in (d_optimizer, g_optimizer))
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.optimizer = OptimizerPair(d_optimizer, g_optimizer)  # for Keras' learning-rate callbacks
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.loss_name = loss_fn
        self.d_loss_fn, self.g_loss_fn = losses.get(loss_fn)
        self.label_smoothing = float(label_smoothing)
        self.reuse_fake = bool(reuse_fake)
        self.diffaugment = diffaugment
        self.augmentations = augment.parse(diffaugment)
        self.gp, self.gp_weight, self.n_critic = gp, float(gp_weight), int(n_critic)

    def set_learning_rates(self, d_lr, g_lr):
        self.d_optimizer.learning_rate.assign(d_lr)
        self.g_optimizer.learning_rate.assign(g_lr)

    # --- one training step ---------------------------------------------------------------

    def _seed(self, stream, update=0):
        """The seed of one stream of one update: D update k of a step draws from its own block of
        streams, so update 0 and G's update keep the values of a one-critic step."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.step, tf.int64)])
        return tf.random.experimental.stateless_fold_in(seed, int(stream) + len(Stream) * update,
                                                        alg=latent.RANDOM_ALGORITHM)

    def _latent_batch(self, batch_size, stream, update=0):
        return replica_rows(lambda n: tf.random.stateless_normal(
            (n, self.latent_dim), seed=self._seed(stream, update), alg=latent.RANDOM_ALGORITHM), batch_size)

    def _d_draws(self, batch_size, update):
        mix = replica_rows(lambda n: tf.random.stateless_uniform(
            [n, 1, 1, 1], seed=self._seed(Stream.D_UPDATE_PENALTY_MIX, update), alg=latent.RANDOM_ALGORITHM), batch_size)
        return DiscriminatorDraws(z=self._latent_batch(batch_size, Stream.D_UPDATE_Z, update),
                                  augment_real=self._seed(Stream.D_UPDATE_AUGMENT_REAL, update),
                                  augment_fake=self._seed(Stream.D_UPDATE_AUGMENT_FAKE, update), mix=mix)

    def _g_draws(self, batch_size):
        return GeneratorDraws(z=self._latent_batch(batch_size, Stream.G_UPDATE_Z),
                              augment=self._seed(Stream.G_UPDATE_AUGMENT))

    def _augmented(self, images, seed):
        """The images as D sees them: after DiffAugment when it is on (differentiable, so G learns through it)."""
        if not self.augmentations:
            return images
        p = None if self.ada is None else self.ada.p
        return augment.diff_augment(images, self.augmentations, seed, p)

    def _fakes(self, z, attributes):
        return self.generator(z if attributes is None else [z, attributes], training=True)

    def _g_forward(self, z, attributes):
        """G's fakes and the tape that recorded them, through which G's update differentiates."""
        with tf.GradientTape() as tape:
            fake = self._fakes(z, attributes)
        return fake, tape

    def _d_logits(self, images, attributes=None):
        return self.discriminator(images if attributes is None else [images, attributes], training=True)

    def _penalty(self, real, fake, attributes, mix):
        critic = functools.partial(self._d_logits, attributes=attributes)
        if self.gp == "wgan-gp":
            return self.gp_weight * losses.wgan_gp(critic, real, fake, mix)
        return self.gp_weight * losses.r1(critic, real)

    @staticmethod
    def _apply(optimizer, tape, target, variables, output_gradients=None):
        grads = tape.gradient(target, variables, output_gradients=output_gradients)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            grads = overflow_everywhere(grads)  # an overflow on any replica skips the step on all
        optimizer.apply_gradients(zip(grads, variables))

    def _d_update(self, real, fake, attributes, draws):
        """One D update on real and fake images (the fakes are constants here); returns its loss and logits."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        real = self._augmented(real, draws.augment_real)
        fake = self._augmented(fake, draws.augment_fake)
        with tf.GradientTape() as tape:
            real_logits = self._d_logits(real, attributes)
            fake_logits = self._d_logits(fake, attributes)
            d_loss = self.d_loss_fn(real_logits, fake_logits, self.label_smoothing)
            if self.gp != "none":
                d_loss += self._penalty(real, fake, attributes, draws.mix)
            scaled = self.d_optimizer.scale_loss(d_loss / replicas)
        self._apply(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        return d_loss, real_logits, fake_logits

    def _g_update(self, fake, g_forward, attributes, draws):
        """One G update: D's judgement of `fake` differentiated back to the fakes, then through
        the G forward pass that g_forward recorded (chain rule); returns G's loss."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            tape.watch(fake)
            g_loss = self.g_loss_fn(self._d_logits(self._augmented(fake, draws.augment), attributes))
            scaled = self.g_optimizer.scale_loss(g_loss / replicas)
        self._apply(self.g_optimizer, g_forward, fake, self.generator.trainable_variables,
                    output_gradients=tape.gradient(scaled, fake))
        return g_loss

    def _d_output(self, logits):
        logits = tf.cast(logits, tf.float32)
        return tf.reduce_mean(tf.sigmoid(logits) if self.loss_name == "bce" else logits)

    def train_step(self, data):
        real, attributes = data, None
        if isinstance(data, (tuple, list)):
            real, attributes = data[0], (data[1] if self.conditional else None)
        batch_size = tf.shape(real)[0]
        # Every random value of the step first, each update its own (seed, step, stream).
        d_draws = [self._d_draws(batch_size, update) for update in range(self.n_critic)]
        g_draws = self._g_draws(batch_size)
        # n_critic > 1 (WGAN-GP): D updates on this real batch and fresh fakes each, as the keras.io
        # WGAN-GP example does. Unrolled: a tf.cond around an update breaks synchronized BatchNorm
        # under tf.distribute.
        for draws in d_draws:
            fake, g_forward = self._g_forward(draws.z, attributes)
            d_loss, real_logits, fake_logits = self._d_update(real, tf.stop_gradient(fake), attributes, draws)
        if not self.reuse_fake:  # G's update on its own fakes (the keras.io example), else on D's last ones
            fake, g_forward = self._g_forward(g_draws.z, attributes)  # (one G forward less: the PyTorch example)
        g_loss = self._g_update(fake, g_forward, attributes, g_draws)
        if self.ema_generator is not None:
            ema.update(self.ema_generator, self.generator, self.ema_decay, self.step)
        self.step.assign_add(1)
        return self._step_logs(d_loss, g_loss, real_logits, fake_logits)

    def _step_logs(self, d_loss, g_loss, real_logits, fake_logits):
        """The step's own values for the batch logs; the trackers keep the epoch means that fit
        logs at the end of each epoch (the logs' names are the trackers', see Model.fit)."""
        values = {"d_loss": d_loss, "g_loss": g_loss,
                  "d_real": self._d_output(real_logits), "d_fake": self._d_output(fake_logits)}
        if self.ada is not None:
            self.ada.accumulate(real_logits)
            values.update(self.ada.logs())
        for tracker in self.metrics:
            tracker.update_state(values[tracker.name])
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker step outputs with strategy.reduce(MEAN, axis=0),
            # which fails on scalars (Keras 3.15): give each value a length-1 axis.
            values = {name: value[None] for name, value in values.items()}
        return values

    def make_train_function(self, force=False):
        """fit's train function, keeping the logs of its latest call in latest_logs (tensors:
        nothing is read back), so the step that Ctrl-C interrupts before its callbacks still
        reaches steps.csv (callbacks.LossCurves)."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force)
        train_function = self.train_function

        def keeping_logs(iterator):
            self.latest_logs = train_function(iterator)
            return self.latest_logs

        self.train_function = keeping_logs
        return keeping_logs

    def step_count(self):
        """Training steps (batches) done: one G update each; D makes n_critic updates per step."""
        return int(self.step.numpy())

    # Serialisation: the sub-models in get_config, both optimizers in the compile config,
    # so a .keras file restores the whole training state, Adam moments and step counts included.
    def get_config(self):
        return {
            "name": self.name,
            "seed": self.seed,
            "ema_decay": self.ema_decay,
            "adaptive_augment": self.ada is not None,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "loss_fn": self.loss_name,
            "label_smoothing": self.label_smoothing,
            "reuse_fake": self.reuse_fake,
            "diffaugment": self.diffaugment,
            "gp": self.gp,
            "gp_weight": self.gp_weight,
            "n_critic": self.n_critic,
        }

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("d_optimizer", "g_optimizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        self.compile(**config)


def adam(lr, cfg):
    return keras.optimizers.Adam(learning_rate=lr, beta_1=cfg.beta1, beta_2=cfg.beta2)


def build_gan(cfg: Config, strategy=None):
    """Create, compile and build the GAN and both optimizers, inside `strategy.scope()`."""
    strategy = strategy or tf.distribute.get_strategy()
    fused = cfg.fused_batchnorm and strategy.num_replicas_in_sync == 1  # the fused kernel cannot sync replicas
    with strategy.scope(), precision.policy(cfg.mixed_precision):
        gan = DCGAN(build_generator(cfg, fused_batchnorm=fused), build_discriminator(cfg, fused_batchnorm=fused),
                    seed=cfg.seed, ema_decay=cfg.ema, adaptive_augment=cfg.ada_target > 0)
        gan.build()
        gan.compile(
            d_optimizer=adam(cfg.discriminator_lr, cfg),
            g_optimizer=adam(cfg.lr, cfg),
            loss_fn=cfg.loss,
            label_smoothing=cfg.label_smoothing,
            reuse_fake=cfg.reuse_fake,
            diffaugment=cfg.diffaugment,
            gp=cfg.gp,
            gp_weight=cfg.gp_weight,
            n_critic=cfg.n_critic,
            jit_compile=JIT_MODES[cfg.jit_compile],
            steps_per_execution=cfg.steps_per_execution,
        )
    return gan

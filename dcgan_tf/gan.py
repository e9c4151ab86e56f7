"""The DCGAN keras.Model: a custom train_step run by model.fit.

Design notes (see shared/notes/keras3-gan-pitfalls.md):
- G and D are called with training=True in the step, else BatchNorm runs in inference mode.
- compile() builds both optimizers, so fit under a tf.distribute strategy, checkpoint
  restores and .keras loads find every optimizer variable (nothing silently skipped).
- Losses are per-replica means divided by the replica count before the gradient, which
  is what the optimizers' cross-replica sum expects.
- Latent vectors come from a stateless seed of (seed, step); each replica takes its slice
  of the global batch's z, so replicas draw different z (a per-replica SeedGenerator
  would give every replica the same z) and a resumed run continues the same stream.
- Under mixed_float16 both optimizers are wrapped in a LossScaleOptimizer.
"""

import contextlib

import keras
import tensorflow as tf

from . import augment, latent, losses
from .config import JIT_MODES, Config
from .models import build_discriminator, build_generator


@keras.saving.register_keras_serializable(package="dcgan_tf")
class DCGAN(keras.Model):
    def __init__(self, generator, discriminator, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.seed = int(seed)
        self.latent_dim = int(generator.input_shape[-1])
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_prob_tracker = keras.metrics.Mean(name="real_prob")  # mean D(x)
        self.fake_prob_tracker = keras.metrics.Mean(name="fake_prob")  # mean D(G(z))

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.real_prob_tracker, self.fake_prob_tracker]

    def build(self, input_shape=None):
        # G and D are built by their Input layers; this marks the wrapper built so
        # save_weights, checkpoints and export work before and after fit.
        self.built = True

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def compile(self, d_optimizer, g_optimizer, loss_fn="bce", label_smoothing=0.0, reuse_fake=True,
                diffaugment="", gp="none", gp_weight=10.0, n_critic=1, **kwargs):
        super().compile(optimizer=None, **kwargs)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            d_optimizer, g_optimizer = (
                opt if isinstance(opt, keras.optimizers.LossScaleOptimizer) else keras.optimizers.LossScaleOptimizer(opt)
                for opt in (d_optimizer, g_optimizer))
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.loss_name = loss_fn
        self.d_loss_fn, self.g_loss_fn = losses.get(loss_fn)
        self.label_smoothing = float(label_smoothing)
        self.reuse_fake = bool(reuse_fake)
        self.diffaugment = diffaugment
        self.augmentations = augment.parse(diffaugment)
        self.gp, self.gp_weight, self.n_critic = gp, float(gp_weight), int(n_critic)
        object.__setattr__(self, "_ema_generator", None)

    def _step_seed(self, stream):
        """A stateless seed of (seed, step, stream): a resumed run continues the same random stream."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.d_optimizer.iterations, tf.int64)])
        return tf.random.experimental.stateless_fold_in(seed, stream)

    def _latent_batch(self, batch_size, stream):
        """z for this step, from a stateless seed of (seed, step, stream).

        Each replica takes its own slice of the global batch's z, as it takes its own
        slice of the real batch: replicas draw different z, and N replicas see exactly
        the z one device would see for the same global batch.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        z = tf.random.stateless_normal((batch_size * replicas, self.latent_dim), seed=self._step_seed(stream))
        replica = tf.distribute.get_replica_context()
        index = replica.replica_id_in_sync_group if replica is not None else 0
        return z[index * batch_size:(index + 1) * batch_size]

    def _critic(self, images, stream):
        """D's logits, after DiffAugment when it is on (differentiable, so G learns through it)."""
        if self.augmentations:
            images = augment.diff_augment(images, self.augmentations, self._step_seed(stream))
        return self.discriminator(images, training=True)

    def _gradient_penalty(self, real, fake):
        """WGAN-GP: (||grad D(x_hat)|| - 1)^2 on real/fake interpolates; R1: ||grad D(x)||^2 / 2 on reals."""
        if self.gp == "wgan-gp":
            mix = tf.random.stateless_uniform([tf.shape(real)[0], 1, 1, 1], seed=self._step_seed(5))
            points = mix * real + (1.0 - mix) * tf.cast(fake, real.dtype)
        else:
            points = real
        with tf.GradientTape() as tape:
            tape.watch(points)
            logits = self.discriminator(points, training=True)
        grads = tf.cast(tape.gradient(logits, points), tf.float32)  # of the sum over the batch
        squared_norms = tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])
        if self.gp == "wgan-gp":
            return self.gp_weight * tf.reduce_mean(tf.square(tf.sqrt(squared_norms + 1e-12) - 1.0))
        return 0.5 * self.gp_weight * tf.reduce_mean(squared_norms)

    @staticmethod
    def _apply(optimizer, tape, loss, variables):
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))

    def _discriminator_step(self, real, fake, replicas):
        with tf.GradientTape() as tape:
            real_logits = self._critic(real, stream=2)
            fake_logits = self._critic(fake, stream=3)
            d_loss = self.d_loss_fn(real_logits, fake_logits, self.label_smoothing)
            if self.gp != "none":
                d_loss += self._gradient_penalty(real, fake)
            scaled = self.d_optimizer.scale_loss(d_loss / replicas)
        self._apply(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        return d_loss, real_logits, fake_logits

    def train_step(self, real):
        if isinstance(real, (tuple, list)):
            real = real[0]
        batch_size = tf.shape(real)[0]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        # n_critic > 1 (WGAN-GP): the extra D updates, on this real batch and fresh z, as the
        # keras.io WGAN-GP example does. Unrolled: a tf.cond around an update breaks
        # synchronized BatchNorm under tf.distribute.
        for _ in range(self.n_critic - 1):
            self._discriminator_step(real, self.generator(self._latent_batch(batch_size, stream=0), training=True),
                                     replicas)
        with tf.GradientTape() as g_tape:
            # With reuse_fake one G forward serves both updates (as the PyTorch DCGAN example does).
            with contextlib.nullcontext() if self.reuse_fake else g_tape.stop_recording():
                fake = self.generator(self._latent_batch(batch_size, stream=0), training=True)
            with g_tape.stop_recording():
                d_loss, real_logits, fake_logits = self._discriminator_step(real, tf.stop_gradient(fake), replicas)
            if not self.reuse_fake:  # G's update on a fresh latent batch (the keras.io example)
                fake = self.generator(self._latent_batch(batch_size, stream=1), training=True)
            g_loss = self.g_loss_fn(self._critic(fake, stream=4))
            scaled = self.g_optimizer.scale_loss(g_loss / replicas)
        self._apply(self.g_optimizer, g_tape, scaled, self.generator.trainable_variables)

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.real_prob_tracker.update_state(tf.reduce_mean(tf.sigmoid(real_logits)))
        self.fake_prob_tracker.update_state(tf.reduce_mean(tf.sigmoid(fake_logits)))
        results = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker step outputs with strategy.reduce(MEAN, axis=0),
            # which fails on scalars (Keras 3.15): give each value a length-1 axis.
            results = {name: value[None] for name, value in results.items()}
        return results

    def train_steps(self):
        """Training steps (batches) done: G updates; D makes n_critic updates per step."""
        return int(self.g_optimizer.iterations.numpy())

    def sampling_generator(self):
        """The generator for samples, evaluation and export: with --ema, a copy holding the
        exponential moving average of the trained weights (kept by the G optimizer, so it is
        checkpointed and resumed with it), else the generator itself."""
        optimizer = getattr(self.g_optimizer, "inner_optimizer", self.g_optimizer)
        if not optimizer.use_ema or optimizer.iterations.numpy() == 0:
            return self.generator  # before the first update the average holds zeros
        if self._ema_generator is None:
            # object.__setattr__: a scratch copy, not a tracked sub-model (no extra weights saved)
            object.__setattr__(self, "_ema_generator", keras.models.clone_model(self.generator))
        averages = optimizer._model_variables_moving_average  # Keras keeps them in trainable-variable order
        average_of = {id(v): averages[optimizer._get_variable_index(v)] for v in self.generator.trainable_variables}
        for source, target in zip(self.generator.variables, self._ema_generator.variables):
            target.assign(average_of.get(id(source), source))  # BatchNorm statistics: the trained ones
        return self._ema_generator

    def generate(self, n, seed=0):
        """n uint8 images [n, H, W, 3]; the same seed always gives the same images."""
        z = latent.sample(n, self.latent_dim, seed)
        return latent.to_uint8(self.sampling_generator()(z, training=False)).numpy()

    # Serialisation: the sub-models in get_config, both optimizers in the compile config,
    # so a .keras file restores the whole training state (pitfall 5).
    def get_config(self):
        return {
            "name": self.name,
            "seed": self.seed,
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


@keras.saving.register_keras_serializable(package="dcgan_tf")
class WarmupEMAAdam(keras.optimizers.Adam):
    """Adam whose weight average warms up: the decay at update t is min(ema_momentum,
    t / (t + 10)), the num_updates rule of tf.train.ExponentialMovingAverage. Keras' constant
    decay keeps the first step's, barely trained, weights in the average for long
    (0.999**1560 = 21% after 1,560 steps), which blurs the samples of any short run."""

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        step = tf.cast(self.iterations, tf.float32)  # 0 at the first update: the average starts at the weights
        decay = tf.minimum(self.ema_momentum, step / (step + 10.0))
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                rate = tf.cast(decay, variable.dtype)
                average.assign(rate * average + (1.0 - rate) * variable)


def adam(lr, cfg, ema=0.0):
    return WarmupEMAAdam(learning_rate=lr, beta_1=cfg.beta1, beta_2=cfg.beta2,
                         use_ema=ema > 0, ema_momentum=ema or 0.99)


def build_gan(cfg: Config, strategy=None):
    """Create, compile and build the GAN and both optimizers, inside `strategy.scope()`."""
    keras.mixed_precision.set_global_policy(cfg.mixed_precision)
    strategy = strategy or tf.distribute.get_strategy()
    fused = cfg.fused_batchnorm and strategy.num_replicas_in_sync == 1  # the fused kernel cannot sync replicas
    with strategy.scope():
        gan = DCGAN(build_generator(cfg, fused_batchnorm=fused), build_discriminator(cfg, fused_batchnorm=fused),
                    seed=cfg.seed)
        gan.build()
        gan.compile(
            d_optimizer=adam(cfg.discriminator_lr, cfg),
            g_optimizer=adam(cfg.lr, cfg, ema=cfg.ema),
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

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

import keras
import tensorflow as tf

from . import latent, losses
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

    def compile(self, d_optimizer, g_optimizer, loss="bce", label_smoothing=0.0, reuse_fake=True, **kwargs):
        super().compile(optimizer=None, **kwargs)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            d_optimizer, g_optimizer = (
                opt if isinstance(opt, keras.optimizers.LossScaleOptimizer) else keras.optimizers.LossScaleOptimizer(opt)
                for opt in (d_optimizer, g_optimizer))
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.loss_name = loss
        self.d_loss_fn, self.g_loss_fn = losses.get(loss)
        self.label_smoothing = float(label_smoothing)
        self.reuse_fake = bool(reuse_fake)

    def _latent_batch(self, batch_size, stream):
        """z for this step, from a stateless seed of (seed, step, stream).

        Each replica takes its own slice of the global batch's z, as it takes its own
        slice of the real batch: replicas draw different z, and N replicas see exactly
        the z one device would see for the same global batch.
        """
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.d_optimizer.iterations, tf.int64)])
        seed = tf.random.experimental.stateless_fold_in(seed, stream)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        z = tf.random.stateless_normal((batch_size * replicas, self.latent_dim), seed=seed)
        replica = tf.distribute.get_replica_context()
        index = replica.replica_id_in_sync_group if replica is not None else 0
        return z[index * batch_size:(index + 1) * batch_size]

    @staticmethod
    def _apply(optimizer, tape, loss, variables):
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))

    def _discriminator_step(self, real, fake, replicas):
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = self.d_loss_fn(real_logits, fake_logits, self.label_smoothing)
            scaled = self.d_optimizer.scale_loss(d_loss / replicas)
        self._apply(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        return d_loss, real_logits, fake_logits

    def train_step(self, real):
        if isinstance(real, (tuple, list)):
            real = real[0]
        batch_size = tf.shape(real)[0]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as g_tape:
            fake = self.generator(self._latent_batch(batch_size, stream=0), training=True)
            with g_tape.stop_recording():
                d_loss, real_logits, fake_logits = self._discriminator_step(real, tf.stop_gradient(fake), replicas)
            if not self.reuse_fake:
                fake = self.generator(self._latent_batch(batch_size, stream=1), training=True)
            g_loss = self.g_loss_fn(self.discriminator(fake, training=True))
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

    def generate(self, n, seed=0):
        """n uint8 images [n, H, W, 3]; the same seed always gives the same images."""
        z = latent.sample(n, self.latent_dim, seed)
        return latent.to_uint8(self.generator(z, training=False)).numpy()

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
            "loss": self.loss_name,
            "label_smoothing": self.label_smoothing,
            "reuse_fake": self.reuse_fake,
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
    keras.mixed_precision.set_global_policy(cfg.mixed_precision)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        gan = DCGAN(build_generator(cfg), build_discriminator(cfg), seed=cfg.seed)
        gan.build()
        gan.compile(
            d_optimizer=adam(cfg.discriminator_lr, cfg),
            g_optimizer=adam(cfg.lr, cfg),
            loss=cfg.loss,
            label_smoothing=cfg.label_smoothing,
            reuse_fake=cfg.reuse_fake,
            jit_compile=JIT_MODES[cfg.jit_compile],
            steps_per_execution=cfg.steps_per_execution,
        )
    return gan

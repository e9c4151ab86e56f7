"""The GAN's two optimizers seen as the one `model.optimizer` Keras callbacks expect.

keras.callbacks.LearningRateScheduler and ReduceLROnPlateau read `model.optimizer.learning_rate`
and set it to a float; a DCGAN compiles with optimizer=None and trains D and G with optimizers
of their own. OptimizerPair is what DCGAN.compile sets as `model.optimizer`: its learning rate
is G's, and setting it sets G's and multiplies D's by the same factor, so a two time-scale
run (--d-lr) keeps its D/G ratio through any schedule.
"""

import keras


class OptimizerPair:
    def __init__(self, d_optimizer, g_optimizer):
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    @property
    def learning_rate(self):
        return self.g_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        g_rate, d_rate = (float(keras.ops.convert_to_numpy(o.learning_rate)) for o in (self.g_optimizer,
                                                                                     self.d_optimizer))
        if g_rate == 0:
            raise ValueError("G's learning rate is 0, so D's cannot keep its ratio to it; set both with "
                             "DCGAN.set_learning_rates(d_lr, g_lr)")
        self.d_optimizer.learning_rate = d_rate * float(value) / g_rate
        self.g_optimizer.learning_rate = float(value)

    @property
    def built(self):  # fit and BackupAndRestore build an unbuilt model.optimizer; DCGAN.compile built both
        return self.d_optimizer.built and self.g_optimizer.built

    @property
    def variables(self):  # model.summary() counts them
        return [*self.d_optimizer.variables, *self.g_optimizer.variables]

"""The GPU path, exercised on CPU (issue 34): what a multi-GPU or XLA run does that a plain
CPU run never would. Two replicas are two logical CPUs, configured before TensorFlow
starts, so those tests run in a subprocess (as tests/test_distribute.py does)."""

import json
import types

import numpy as np
import pytest
from test_distribute import run_python

from dcgan_tf.config import preset
from dcgan_tf.train import preflight
from dcgan_tf.train.run import train

OVERFLOW_ON_REPLICA_1 = """
    import json
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dcgan_tf.config import preset
    from dcgan_tf.model.gan import build_gan

    # D without BatchNorm: synchronised statistics would carry the inf to replica 0 too.
    cfg = preset("tiny", mixed_precision="mixed_float16", d_norm="none", d_dropout=0.0)
    gan = build_gan(cfg, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    images = np.random.default_rng(0).uniform(-1, 1, (cfg.batch_size, 16, 16, 3)).astype("float32")
    planted = images.copy()
    planted[-1] = np.inf  # the last rows of the global batch are replica 1's

    def d_weights():
        return [w.numpy().copy() for w in gan.discriminator.trainable_weights]

    def one_step(batch):
        before = d_weights()
        gan.fit(tf.data.Dataset.from_tensors(batch), verbose=0, shuffle=False)
        after = d_weights()
        return {"finite": all(np.isfinite(w).all() for w in after),
                "moved": any(not np.array_equal(a, b) for a, b in zip(before, after)),
                "scale": float(gan.d_optimizer.dynamic_scale.numpy())}

    print(json.dumps({"overflow": one_step(planted), "clean": one_step(images)}))
"""


def test_an_fp16_overflow_on_the_second_replica_skips_the_step_on_both(tmp_path):
    process = run_python(OVERFLOW_ON_REPLICA_1, tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    # As LossScaleOptimizer does on one device: the update is skipped and the loss scale halved.
    assert result["overflow"] == {"finite": True, "moved": False, "scale": 2.0**14}
    # The next, finite step trains, at the lowered scale.
    assert result["clean"] == {"finite": True, "moved": True, "scale": 2.0**14}


def test_xla_with_several_replicas_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr("dcgan_tf.train.run.make_strategy", lambda name: types.SimpleNamespace(num_replicas_in_sync=2))
    with pytest.raises(ValueError, match=r"^--jit-compile on cannot run with 2 replicas .*: use --jit-compile auto "
                                         "or off, or --strategy default$"):
        train(preset("tiny", jit_compile="on", data="builtin:64"), tmp_path / "run", log=lambda message: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("jit_compile", ["auto", "off"])
def test_xla_on_one_replica_and_auto_or_off_on_several_are_accepted(jit_compile):
    preflight.check_strategy(preset("tiny", jit_compile="on"), 1, log=print)
    preflight.check_strategy(preset("tiny", jit_compile=jit_compile, fused_batchnorm=False), 2, log=print)


def test_fused_batchnorm_with_several_replicas_says_it_is_not_used():
    logged = []
    preflight.check_strategy(preset("tiny"), 2, logged.append)
    assert logged == ["note: with 2 replicas BatchNorm runs Keras' synchronized layer, not the fused kernel "
                      "(--fused-batchnorm applies to one replica): its statistics are the global batch's"]
    logged.clear()
    preflight.check_strategy(preset("tiny"), 1, logged.append)
    preflight.check_strategy(preset("tiny", fused_batchnorm=False), 2, logged.append)
    assert logged == []

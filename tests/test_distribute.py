"""tf.distribute: two replicas on one CPU train exactly like one device; two worker processes
with MultiWorkerMirroredStrategy stay in sync and only the chief writes."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import ROOT, checkpoint_state, random_images

from dcgan_tf.train.distribute import make_strategy


def run_python(code, cwd, env_extra=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


MIRRORED = """
    import json
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dcgan_tf.config import preset
    from dcgan_tf.model.gan import build_gan

    cfg = preset("tiny", d_dropout=0.0)  # dropout masks are per device: off for an exact comparison
    images = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(images).batch(cfg.batch_size, drop_remainder=True)
    single = build_gan(cfg)
    initial = [w.numpy().copy() for w in single.trainable_weights]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored = build_gan(cfg, strategy)
    per_replica_z = strategy.run(lambda: mirrored._latent_batch(cfg.batch_size // 2, 0))
    z_parts = [z.numpy() for z in strategy.experimental_local_results(per_replica_z)]
    single_z = single._latent_batch(cfg.batch_size, 0).numpy()
    h_single = single.fit(data, epochs=2, verbose=0, shuffle=False).history
    h_mirrored = mirrored.fit(data, epochs=2, verbose=0, shuffle=False).history
    in_sync = all(np.array_equal(*[r.numpy() for r in strategy.experimental_local_results(v.value)])
                  for v in mirrored.trainable_variables)
    weight_diff = max(float(np.abs(a.numpy() - b.numpy()).max())
                      for a, b in zip(single.weights, mirrored.weights))
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync, "single": h_single, "mirrored": h_mirrored,
        "in_sync": in_sync, "weight_diff": weight_diff,
        "moved": max(float(np.abs(w.numpy() - w0).max()) for w, w0 in zip(single.trainable_weights, initial)),
        "replica_z_differ": not np.allclose(z_parts[0], z_parts[1]),
        "z_match_single": bool(np.allclose(np.concatenate(z_parts), single_z)),
    }))
"""


@pytest.mark.slow
def test_two_replicas_train_like_one_device(tmp_path):
    process = run_python(MIRRORED, tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["in_sync"]
    assert result["replica_z_differ"] and result["z_match_single"]
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_allclose(result["mirrored"][key], result["single"][key], rtol=1e-4, atol=1e-5)
    assert result["weight_diff"] < 0.1 * result["moved"]  # float round-off, amplified a little by Adam


WORKER = """
    import numpy as np
    from dcgan_tf.train import run as training
    from dcgan_tf.config import preset
    from dcgan_tf.train.run import train

    chosen = training.writer_dir
    def recorded_writer_dir(run_dir, strategy):  # where this worker writes, for the test to check
        directory = chosen(run_dir, strategy)
        open("writer_INDEX.txt", "w").write(str(directory))
        return directory
    training.writer_dir = recorded_writer_dir

    cfg = preset("tiny", data="faces.npy", epochs=EPOCHS, strategy="multiworker")
    gan, _ = train(cfg, "runs/mw", resume=RESUME, export_dir="exports/mw", verbose=0, log=lambda m: None)
    np.savez("weights_INDEX.npz", *[w.numpy() for w in gan.weights])
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(work, epochs, resume):
    """Two MultiWorkerMirroredStrategy worker processes on loopback ports."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        code = WORKER.replace("EPOCHS", str(epochs)).replace("RESUME", str(resume)).replace("INDEX", str(index))
        workers.append(run_python(code, work, {"TF_CONFIG": tf_config, "TMPDIR": str(work)}))
    return workers


def stop(workers):
    for worker in workers:
        worker.kill()
        worker.wait()


def run_workers(work, epochs, resume, timeout=240):
    """Both workers to the end, within `timeout` seconds in all; -> their final weights."""
    workers = start_workers(work, epochs, resume)
    deadline = time.monotonic() + timeout
    try:
        results = [worker.communicate(timeout=max(1, deadline - time.monotonic())) for worker in workers]
    finally:
        stop(workers)
    for worker, (_, err) in zip(workers, results):
        assert worker.returncode == 0, err[-3000:]
    return [np.load(work / f"weights_{index}.npz") for index in range(2)]


def checkpointed_epoch(run):
    return checkpoint_state(run)[0]


@pytest.mark.slow
def test_two_workers_stay_in_sync_only_the_chief_writes_and_resume_after_a_kill(tmp_path):
    np.save(tmp_path / "faces.npy", random_images(64, 16))
    run = tmp_path / "runs" / "mw"
    chief, other = run_workers(tmp_path, epochs=2, resume=False)
    assert all(np.array_equal(chief[k], other[k]) for k in chief.files)
    assert checkpointed_epoch(run) == 2
    assert (run / "samples" / "epoch_002.png").is_file() and (tmp_path / "exports" / "mw" / "saved_model.pb").is_file()
    assert (tmp_path / "writer_0.txt").read_text() == "runs/mw"  # the chief writes the run
    assert (tmp_path / "writer_1.txt").read_text().startswith(str(tmp_path / "dcgan-worker1-"))  # the other: scratch
    assert not list(tmp_path.glob("dcgan-worker*"))  # the other worker's scratch directory is gone

    # A worker dies (SIGKILL) in the middle of a long run; its peer is stopped too, as a
    # cluster manager would; both restart with --resume from the chief's last checkpoint.
    workers = start_workers(tmp_path, epochs=500, resume=True)
    deadline = time.monotonic() + 120
    try:
        while checkpointed_epoch(run) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        workers[1].send_signal(signal.SIGKILL)
        stop(workers)
    reached = checkpointed_epoch(run)
    assert 4 <= reached < 500
    chief, other = run_workers(tmp_path, epochs=reached + 2, resume=True)
    assert all(np.array_equal(chief[k], other[k]) for k in chief.files)
    assert checkpointed_epoch(run) == reached + 2
    assert (run / "samples" / f"epoch_{reached + 2:03d}.png").is_file()


STABILISERS = """
    import json
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dcgan_tf.config import preset
    from dcgan_tf.model.gan import build_gan

    cfg = preset("tiny", loss="wgan", gp="wgan-gp", n_critic=2, diffaugment="color,translation,cutout",
                 spectral_norm=True, d_norm="layer")
    images = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(images).batch(cfg.batch_size, drop_remainder=True)
    gan = build_gan(cfg, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    history = gan.fit(data, epochs=1, verbose=0, shuffle=False).history
    print(json.dumps({"history": history, "d_steps": int(gan.d_optimizer.iterations.numpy()),
                      "g_steps": int(gan.g_optimizer.iterations.numpy())}))
"""


@pytest.mark.slow
def test_n_critic_gradient_penalty_and_diffaugment_train_under_mirrored_strategy(tmp_path):
    process = run_python(STABILISERS, tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["d_steps"], result["g_steps"]) == (8, 4)  # 4 batches, 2 critic updates each
    assert all(np.isfinite(v).all() for v in result["history"].values())


def test_unknown_strategy_and_missing_tf_config_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown strategy 'gpus'"):
        make_strategy("gpus")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multiworker")

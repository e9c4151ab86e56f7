"""bench/gpu_check.py, the script a GPU user runs, runs through on CPU with --tiny (as in CI)."""

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_gpu_check_runs_every_check_on_cpu_and_says_ok():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--tiny"], env=env, check=False,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[-1] == "result: OK"
    assert not [line for line in lines if line.startswith("FAILED")]
    heads = [line.split(":")[0] for line in lines]
    assert heads[:4] == ["device", "driver", "tensorflow", "tf32"]
    steps = [line for line in lines if line.startswith("step ")]
    assert [line.split(":")[0] for line in steps] == [f"step {policy} xla {jit}" for jit in ("off", "on")
                                                      for policy in ("float32", "mixed_bfloat16", "mixed_float16")]
    number = r"\d+\.\d+"
    timed = [line for line in steps if "skipped" not in line]
    assert [line.split(":")[0] for line in timed] == ["step float32 xla off", "step mixed_bfloat16 xla off",
                                                      "step mixed_float16 xla off", "step float32 xla on"]
    for line in timed:
        assert re.search(rf"{number} s/step, {number} img/s, d_fake {number} d_loss {number}", line), line
    assert re.search(rf"ours vs keras\.io .*ours is {number}x", result.stdout)
    assert re.search(rf"fit, step values read every step: {number} s/step .*every 10: ", result.stdout)
    assert re.search(rf"training epoch 1/1: d_loss {number} g_loss {number}", result.stdout)
    assert re.search(r"training: 4 steps on 1 replica\(s\)", result.stdout)


def test_a_failing_check_is_reported_and_the_others_still_run(capsys):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "bench"))
    checks = gpu_check.Checks()

    def broken():
        raise FloatingPointError("non-finite step values {'d_loss': nan}")

    assert checks.run("step float32 xla on", broken) is None
    assert checks.run("training", lambda: 7) == 7
    assert checks.failed == ["step float32 xla on"]
    assert "FAILED step float32 xla on: FloatingPointError: non-finite step values" in capsys.readouterr().out

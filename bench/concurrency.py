"""Two processes on one folder, for real: what each one does, and what the folder holds after.

- two downloads into one --to, from a mirror on 127.0.0.1 that sends the file slowly enough
  for both to be running at once (the download reads a small fake table of files in place of
  CelebA's, as the tests do);
- two train.py runs started together on one --out;
- train.py --resume started while another process trains the run.

Each case prints every process's exit status and last line, then checks the result: the
downloaded file has its SHA-256, history.csv logs each epoch once and steps.csv each step once.

  python bench/concurrency.py                  # tiny: a 2 MiB file, 2 and 12 epochs of 256 faces at 16x16
  python bench/concurrency.py --file-mib 64 --epochs 4 --images 2048

Not part of the test suite (it starts several TensorFlow processes).
"""

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}

# dcgan-tf download with its table of files replaced by $FILES (JSON), as the tests do.
PATCHED_DOWNLOAD = """
import json, os, sys
from dcgan_tf.data import download
download.CELEBA = tuple(download.RemoteFile(**f) for f in json.loads(os.environ["FILES"]))
from dcgan_tf.cli.download import main
main(sys.argv[1:])
"""


def slow_mirror(files, rate):
    """An HTTP server on 127.0.0.1 serving `files` (name -> bytes) at `rate` bytes a second, with Range."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            data = files.get(self.path.rsplit("/", 1)[-1])
            if data is None:
                self.send_error(404)
                return
            start = int(self.headers.get("Range", "bytes=0-")[6:].rstrip("-") or 0)
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            try:
                for i in range(start, len(data), 1 << 16):
                    self.wfile.write(data[i:i + (1 << 16)])
                    time.sleep((1 << 16) / rate)
            except OSError:  # the client left
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def finish(name, process):
    out, err = process.communicate(timeout=900)
    lines = [line for line in (out + err).splitlines()  # not progress bars, not TensorFlow's start-up log
             if line.strip() and not {"\r", "\x1b"} & set(line) and not line.startswith(("I0000", "W0000", "WARNING: All log"))]
    print(f"  {name}: exit {process.returncode}: {lines[-1] if lines else '(no output)'}")
    return process.returncode


def two_downloads(work, mib, seconds):
    data = np.random.default_rng(0).integers(0, 256, mib << 20, dtype=np.uint8).tobytes()
    name = "img_align_celeba.zip"
    table = [{"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "md5": hashlib.md5(data).hexdigest(), "drive_id": "none"}]
    server = slow_mirror({name: data}, rate=len(data) / seconds)
    env = {**ENV, "FILES": json.dumps(table)}
    command = [sys.executable, "-c", PATCHED_DOWNLOAD, "celeba", "--to", str(work / "celeba"),
               "--mirror", f"http://127.0.0.1:{server.server_address[1]}/"]
    print(f"two downloads of a {mib} MiB file into one --to (the server sends it in about {seconds:.0f} s):")
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the first one is writing its partial file
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    codes = [finish("first", first), finish("second", second)]
    server.shutdown()
    path = work / "celeba" / name
    ok = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == table[0]["sha256"]
    print(f"  {path.name}: {'SHA-256 as expected' if ok else 'WRONG or missing'}; exit codes {codes}")
    return ok and sorted(codes) in ([0, 0], [0, 1])


def train(work, *args):
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--out", "runs/r", "--no-export", *map(str, args)],
                            cwd=work, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def logs_whole(run, epochs, steps_per_epoch):
    """Whether history.csv logs epochs 1..epochs once each and steps.csv steps 1..N once each."""
    with open(run / "history.csv") as f:
        logged = [int(row["epoch"]) for row in csv.DictReader(f)]
    with open(run / "steps.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    ok = logged == list(range(1, epochs + 1)) and steps == list(range(1, epochs * steps_per_epoch + 1))
    print(f"  history.csv epochs {logged}; steps.csv {len(steps)} rows for {epochs * steps_per_epoch} steps: "
          f"{'each once' if ok else 'NOT each once'}")
    return ok


def two_trainings(work, epochs, steps_per_epoch):
    print(f"two train.py on one --out, started together ({epochs} epochs of {steps_per_epoch} steps):")
    args = ["--preset", "tiny", "--data", "faces.npy", "--epochs", epochs]
    first, second = train(work, *args), train(work, *args)
    codes = [finish("first", first), finish("second", second)]
    return sorted(codes) == [0, 1] and logs_whole(work / "runs" / "r", epochs, steps_per_epoch)


def resume_while_training(work, epochs, steps_per_epoch):
    print(f"train.py --resume while another process trains the run ({epochs} epochs):")
    run = work / "runs" / "r"
    first = train(work, "--preset", "tiny", "--data", "faces.npy", "--epochs", epochs)
    deadline = time.monotonic() + 600
    while not (run / "checkpoints" / "checkpoint").is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # until the first epoch is saved: a resume would have something to resume
    second = train(work, "--resume", "--epochs", epochs)
    codes = [finish("training", first), finish("resume", second)]
    if codes == [0, 0]:
        print("  inconclusive: the training ended before the resume started; raise --resume-epochs")
    return codes == [0, 1] and logs_whole(run, epochs, steps_per_epoch)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file-mib", type=int, default=2, help="size of the downloaded file (default 2)")
    parser.add_argument("--seconds", type=float, default=4.0, help="how long the server takes to send it")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=256, help="faces trained on (batch 16 in the tiny preset)")
    parser.add_argument("--resume-epochs", type=int, default=12,
                        help="epochs of the run resumed while it trains: long enough to outlast the resume's start")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["downloads"] = two_downloads(work, args.file_mib, args.seconds)
        np.save(work / "faces.npy", np.random.default_rng(0).integers(0, 256, (args.images, 16, 16, 3), np.uint8))
        steps = args.images // 16
        results["trainings"] = two_trainings(work, args.epochs, steps)
        shutil.rmtree(work / "runs")
        results["resume"] = resume_while_training(work, args.resume_epochs, steps)
    print("summary: " + ", ".join(f"{name} {'ok' if ok else 'FAILED'}" for name, ok in results.items()))
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()

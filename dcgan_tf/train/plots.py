"""The loss curves of a run: losses.png from steps.csv, with FID and KID from history.csv."""

import csv
from pathlib import Path

import numpy as np


def _evaluations(history_path):
    """(epochs, fid, kid) rows of history.csv that were evaluated, or None."""
    if history_path is None or not Path(history_path).is_file():
        return None
    with open(history_path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("fid") not in (None, "", "NA")]
    if not rows:
        return None
    return [np.array([float(r[k]) for r in rows]) for k in ("epoch", "fid", "kid")]


def plot_losses(csv_path, plot_path, history_path=None, loss="bce"):
    """The loss curves and mean D outputs (probabilities for bce, raw scores otherwise) per step,
    with FID and KID below when the history has them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = np.genfromtxt(csv_path, delimiter=",", names=True)
    data = np.atleast_1d(data)
    evaluations = _evaluations(history_path)
    if evaluations is not None:
        fig, (top, bottom, scores) = plt.subplots(3, 1, figsize=(9, 8.5))
        epochs, fid, kid = evaluations
        scores.plot(epochs, fid, "o-", label="FID")
        scores.set_xlabel("epoch")
        scores.set_ylabel("FID")
        kid_axis = scores.twinx()
        kid_axis.plot(epochs, kid, "s--", color="tab:red", label="KID")
        kid_axis.set_ylabel("KID")
        scores.legend(loc="upper right")
    else:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
        top.plot(data["step"], data[key], label=label, linewidth=0.8)
    top.set_ylabel("loss")
    top.legend()
    for key, label in (("d_real", "D(x), real"), ("d_fake", "D(G(z)), fake")):
        bottom.plot(data["step"], data[key], label=label, linewidth=0.8)
    if loss == "bce":
        bottom.set_ylim(0, 1)
    bottom.set_xlabel("step")
    bottom.set_ylabel("mean D probability" if loss == "bce" else f"mean D score ({loss})")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(plot_path, dpi=100)
    plt.close(fig)

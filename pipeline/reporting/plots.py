"""Figures as PNG (matplotlib, Agg backend), written atomically."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ..core.io import atomic_path  # noqa: E402
from ..core.metrics import label  # noqa: E402

ABOVE, BELOW = "tab:blue", "tab:orange"


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def ape_histograms(path, edges: np.ndarray, counts: dict[str, np.ndarray], threshold: float,
                   title: str, unit: str = "BMI") -> None:
    """Paper Figures 1 and 4: one panel per classifier, log counts of positive predictions,
    dashed line at B, bins right of B in blue and left of B in orange."""
    fig, axes = plt.subplots(1, len(counts), figsize=(4 * len(counts), 3.2), sharey=True, squeeze=False)
    centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    top = max([1] + [int(c.max(initial=0)) for c in counts.values()])
    for ax, (name, c) in zip(axes[0], counts.items()):
        colors = np.where(centers > threshold, ABOVE, BELOW)
        ax.bar(centers, np.where(c > 0, c, np.nan), width=width, color=colors, edgecolor="none")
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylim(0.5, top * 2)  # explicit: a panel with no positives has nothing to autoscale
        if not c.any():
            ax.text(0.5, 0.5, "no positive predictions", transform=ax.transAxes, ha="center")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_title(label(name), fontsize=10)
        ax.set_xlabel(unit)
    axes[0][0].set_ylabel("positive predictions (log)")
    fig.suptitle(title, fontsize=11, y=1.04)
    _save(fig, path)


def certified_accuracy_curves(path, curves: dict[str, tuple[np.ndarray, np.ndarray]], unit: str) -> None:
    """Cohen et al.'s certified accuracy: fraction of test inputs correct with radius >= r."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, (r, acc) in curves.items():
        ax.plot(r, acc, label=name)
    ax.set_xlabel(f"radius ({unit})")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend()
    _save(fig, path)


def training_curve(path, history: list[dict]) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], label="loss")
    ax.set_yscale("log")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["train_accuracy"] for h in history], color="tab:green", label="train accuracy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log)")
    ax2.set_ylabel("train accuracy")
    _save(fig, path)


def image_grid(path, images: np.ndarray, title: str, captions=None, ok=None, row_names=None) -> None:
    """Images (rows, cols, C, H, W) in [0, 1] as a grid; optional caption per tile (green when
    ``ok``, red otherwise) and a name per row."""
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 0.4, 1.2 * rows + 0.5), squeeze=False)
    for i in range(rows):
        for j in range(cols):
            ax = axes[i][j]
            img = images[i, j].transpose(1, 2, 0)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if captions is not None:
                ax.set_title(captions[i][j], fontsize=7, color="tab:green" if ok[i][j] else "tab:red")
        if row_names is not None:
            axes[i][0].set_ylabel(row_names[i], fontsize=8)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def figure3(path, sigmas: list[float], ns: list[int], asr: dict, acc: dict, base_asr: float, base_acc: float,
            acc_label: str) -> None:
    """Paper Figure 3: ASR (solid, left axis) and accuracy (dashed, right axis) against sigma, one
    colour per N; the base model's ASR and accuracy as dotted lines. ``asr[n]``, ``acc[n]``: lists over sigmas."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax2 = ax.twinx()
    for i, n in enumerate(ns):
        color = f"C{i}"
        ax.plot(sigmas, asr[n], "-o", color=color, label=f"ASR, N={n}")
        ax2.plot(sigmas, acc[n], "--s", color=color, label=f"accuracy, N={n}")
    ax.axhline(base_asr, color="black", linestyle=":", label=f"base ASR ({base_asr:.0%})")
    ax2.axhline(base_acc, color="grey", linestyle=":", label=f"base accuracy ({base_acc:.0%})")
    ax.set_xlabel("sigma (pixel units)")
    ax.set_ylabel("attack success rate")
    ax2.set_ylabel(f"accuracy ({acc_label})")
    ax.set_ylim(-0.02, 1.02)
    ax2.set_ylim(-0.02, 1.02)
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="center left")
    ax.set_title("Figure 3: BREP-MI against the smoothed target", fontsize=10)
    _save(fig, path)


def repeat_widths(path, repeats: list[int], widths: dict[tuple[str, str], list[float]], unit: str) -> None:
    """The averaging attacker: median inferred interval width against the number K of answers
    seen for the victim, one line per (served model, noise mode): colour = the served model's
    sigma, line style = the noise mode."""
    fig, ax = plt.subplots(figsize=(6.2, 4))
    models = list(dict.fromkeys(name for name, _ in widths))
    modes = list(dict.fromkeys(mode for _, mode in widths))
    styles = dict(zip(modes, ("-", "--", ":", "-.")))
    for (name, mode), w in widths.items():
        ax.plot(repeats, w, marker="o", color=f"C{models.index(name)}", linestyle=styles[mode])
    handles = ([Line2D([], [], color=f"C{i}", marker="o", label=label(name)) for i, name in enumerate(models)]
               + [Line2D([], [], color="grey", linestyle=styles[m], label=f"{m.replace('_', ' ')} noise") for m in modes])
    ax.set_xscale("log")
    ax.set_xticks(repeats, [str(k) for k in repeats])
    ax.set_xlabel("answers seen for the victim (K)")
    ax.set_ylabel(f"median interval width ({unit})")
    ax.set_title("Repeated queries: the averaging attacker", fontsize=10)
    ax.legend(handles=handles, fontsize=7, ncol=2)
    _save(fig, path)


def roc_grid(path, curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], title: str) -> None:
    """Membership-inference ROC curves, one panel per defense (``curves[defense][attack]`` =
    (FPR, TPR)), the same colour per attack in every panel, the chance diagonal dotted."""
    cols = min(4, len(curves))
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), sharex=True, sharey=True, squeeze=False)
    colours: dict[str, str] = {}
    for ax, (defense, per) in zip(axes.flat, curves.items()):
        ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
        for attack, (fpr, tpr) in per.items():
            colours.setdefault(attack, f"C{len(colours)}")
            ax.plot(fpr, tpr, color=colours[attack], linewidth=1.2, label=attack)
        ax.set_title(defense, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    for ax in axes.flat[len(curves):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("false positive rate")
    for ax in axes[:, 0]:
        ax.set_ylabel("true positive rate")
    handles = [plt.Line2D([], [], color=c, label=a) for a, c in colours.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, bbox_to_anchor=(0.5, -0.04))
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def tradeoff(path, rows: dict[str, dict]) -> None:
    """Privacy against utility, one curve per defense family: BREP-MI ASR (left) and the best
    membership attack's AUC (right) against test accuracy; RP one curve per N (points in
    sigma order), MID in beta order; the undefended target as a black star. ``rows``:
    ``pipeline.defenses.table``."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    curves: dict[str, list[tuple[str, dict]]] = {}
    for name, row in rows.items():
        curve = f"RP, {label(name.split('.')[2])}" if row["family"] == "RP" else row["family"]
        curves.setdefault(curve, []).append((name, row))
    for ax, key, ylabel, chance in ((axes[0], "brepmi_asr", "BREP-MI attack success rate", None),
                                    (axes[1], "best_auc", "best membership attack AUC", 0.5)):
        for i, (curve, points) in enumerate(curves.items()):
            points = [(r["test_accuracy"], r[key], n) for n, r in points if r.get(key) is not None]
            if not points:
                continue
            x, y, names = zip(*points)
            if curve == "none":
                ax.plot(x, y, "*", color="black", markersize=14, label="undefended", zorder=5)
                continue
            ax.plot(x, y, "-o" if len(x) > 1 else "D", color=f"C{i}", label=curve, alpha=0.85)
            for xi, yi, n in zip(x, y, names):
                ax.annotate(label(n.split(".")[1]) if "." in n else "",
                            (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_xlabel("test accuracy of the released predictions")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("Model inversion (label-only)", fontsize=10)
    axes[1].set_title("Membership inference", fontsize=10)
    fig.suptitle("Privacy-utility trade-off per defense family (lower and further right is better)", fontsize=10)
    _save(fig, path)

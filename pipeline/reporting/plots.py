"""Figures as PNG (matplotlib, Agg backend), written atomically."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ..core.io import atomic_path  # noqa: E402
from ..core.metrics import label  # noqa: E402

ABOVE, BELOW, BOUNDARY = "tab:blue", "tab:orange", "tab:red"


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def ape_histograms(path, edges: np.ndarray, counts: dict[str, np.ndarray], threshold: float,
                   title: str, unit: str, step: float, noise: str, boundaries: dict, notes: dict) -> None:
    """Paper Figures 1 and 4: one panel per classifier (``label``), log counts of positive
    predictions on the augmented set per right-closed bin of ``edges``, dashed line at B, bins
    above B in blue and at or below B in orange, and where ``boundaries`` has the panel the
    exact smoothed classifier's boundary b* (median over the sampled records, a red line, with
    the band from the lowest to the highest end of their intervals), and each panel's ``notes``
    (its expansion with the interval) at the top right. The caption says what a bin
    counts: right of B each record's own value (one per record, so a lone bar far right is one
    record), left of B also the trajectory copies b' = B - j*``step``; and how the ``noise``
    makes records and copies depend on each other."""
    fig, axes = plt.subplots(1, len(counts), figsize=(3.6 * len(counts), 3.4), sharey=True, squeeze=False)
    centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    top = max([1] + [int(c.max(initial=0)) for c in counts.values()])
    for ax, (name, c) in zip(axes[0], counts.items()):
        ax.bar(centers, np.where(c > 0, c, np.nan), width=width, color=np.where(centers > threshold, ABOVE, BELOW),
               edgecolor="none")
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        if name in boundaries:
            mid, lo, hi = boundaries[name]
            ax.axvspan(lo, hi, color=BOUNDARY, alpha=0.25, linewidth=0)
            ax.axvline(mid, color=BOUNDARY, linewidth=1.2)
            ax.text(0.97, 0.80, f"b* = {mid:.2f} (B {mid - threshold:+.2f})", transform=ax.transAxes, ha="right",
                    va="top", fontsize=8, color=BOUNDARY)
        if name in notes:
            ax.text(0.97, 0.97, notes[name], transform=ax.transAxes, ha="right", va="top", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(0.5, top * 2)  # explicit: a panel with no positives has nothing to autoscale
        if not c.any():
            ax.text(0.5, 0.5, "no positive predictions", transform=ax.transAxes, ha="center")
        ax.set_xlim(edges[0] - width, edges[-1] + width)
        ax.set_title(label(name), fontsize=10)
        ax.set_xlabel(f"{unit} (bins of width {width:g})")
    axes[0][0].set_ylabel("positive predictions per bin (log)")
    handles = [Line2D([], [], color="black", linestyle="--", linewidth=1, label=f"B = {threshold:g}"),
               Line2D([], [], color=BOUNDARY, linewidth=1.2,
                      label="b*: where the panel's classifier flips (median over the sampled records)"),
               plt.Rectangle((0, 0), 1, 1, color=ABOVE, label="positive predictions above B"),
               plt.Rectangle((0, 0), 1, 1, color=BELOW, label="positive predictions at or below B")]
    fig.legend(handles=handles, loc="upper center", ncol=4, fontsize=8, bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle(title, fontsize=11, y=1.02)
    fig.text(0.5, -0.09, _ape_note(edges, counts, threshold, unit, step, noise), ha="center", va="top", fontsize=8)
    _save(fig, path)


NOISE_NOTE = {"record": "Noise: one bank per record, shared by its copies; records are independent trials.",
              "fresh": "Noise: independent draws for every input (Cohen et al.)."}


def _ape_note(edges: np.ndarray, counts: dict[str, np.ndarray], threshold: float, unit: str, step: float,
              noise: str) -> str:
    """The APE figures' caption: what a bin counts, how its inputs depend on each other, and
    what the right-most bar above B holds."""
    note = (f"Right of B a bin counts records at their own {unit} (one input each); left of B also each record's "
            f"copies at b' = B - j·{step:g}, {(edges[1] - edges[0]) / step:.0f} per bin. {NOISE_NOTE[noise]}")
    filled = np.flatnonzero(sum(counts.values()))
    if len(filled) and edges[filled[-1]] >= threshold:
        last = filled[-1]
        note += (f"\nThe right-most bar ({unit} in ({edges[last]:.4g}, {edges[last + 1]:.4g}]) is real: the "
                 f"{max(int(c[last]) for c in counts.values())} record(s) with the largest {unit}, one count each.")
    return note


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
    """Per epoch: the training loss (left, log) and the train and test accuracy (right)."""
    epochs = [h["epoch"] + 1 for h in history]
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(8, 3.2))
    loss.plot(epochs, [h["loss"] for h in history], "-o", markersize=3, color="tab:purple", label="training loss")
    loss.set_yscale("log")
    loss.set_ylabel("loss: cross-entropy + penalty (log)")
    loss.set_title("Training loss (mean over the epoch's mini-batches)", fontsize=9)
    for key, name, color in (("train_accuracy", "train", "tab:blue"), ("test_accuracy", "test", "tab:orange")):
        if key in history[0]:
            acc.plot(epochs, [h[key] for h in history], "-o", markersize=3, color=color, label=f"{name} accuracy")
    acc.set_ylabel("accuracy (fraction correct)")
    acc.set_title("Accuracy at the end of each epoch", fontsize=9)
    for ax in (loss, acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _frame(ax, color, width: float = 3.0) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(width)


def _show(ax, image: np.ndarray) -> None:
    img = image.transpose(1, 2, 0)
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)


def _caption(ax, text: str, color: str) -> None:
    """A caption inside the bottom of its own tile, so it cannot be read as the next row's."""
    ax.text(0.5, 0.03, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=7, color="white",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": color, "edgecolor": "none", "alpha": 0.85})


def image_grid(path, images: np.ndarray, title: str, captions=None, ok=None, row_names=None) -> None:
    """Images (rows, cols, C, H, W) in [0, 1] as a grid; optional caption per tile, drawn on the
    tile (green when ``ok``, red otherwise), and a name per row."""
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 0.4, 1.1 * rows + 0.5), squeeze=False)
    for i in range(rows):
        for j in range(cols):
            ax = axes[i][j]
            _show(ax, images[i, j])
            _frame(ax, "black", 0.5)
            if captions is not None:
                _caption(ax, captions[i][j], "tab:green" if ok[i][j] else "tab:red")
        if row_names is not None:
            axes[i][0].set_ylabel(row_names[i], fontsize=8)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def _placeholder(ax, image_shape, reason: str) -> None:
    """A grey tile naming why an attack has no reconstruction."""
    ax.imshow(np.full(image_shape[-2:], 0.8), cmap="gray", vmin=0, vmax=1)
    ax.text(0.5, 0.5, reason.replace(" (", "\n("), transform=ax.transAxes, ha="center", va="center", fontsize=7,
            color="black")


def inversion_comparison(path, private: np.ndarray, classes: list[str], rows: dict[str, dict]) -> None:
    """BREP-MI reconstructions of every configuration side by side: the first row shows the
    private training image of each attacked class (the target's most confident one), then one
    row per configuration (``label`` and ASR), one column per attack (class x restart).
    Frame green: the evaluator labels the reconstruction as the attacked class; red: it does
    not, or there is no reconstruction (a grey tile naming why). ``rows[config]``: images
    (targets, restarts, C, H, W), has_image, ok, captions (targets, restarts), asr."""
    targets, restarts = next(iter(rows.values()))["ok"].shape
    cols = targets * restarts
    fig = plt.figure(figsize=(0.95 * cols + 1.8, 0.95 * (len(rows) + 1) + 1.0))
    grid = fig.add_gridspec(len(rows) + 1, cols, hspace=0.08, wspace=0.08)
    for c in range(targets):
        ax = fig.add_subplot(grid[0, c * restarts:(c + 1) * restarts])
        _show(ax, private[c])
        _frame(ax, "black", 1.0)
        ax.set_title(f"class {classes[c]}", fontsize=8)
        if c == 0:
            ax.set_ylabel("private\ntraining image", fontsize=8, rotation=0, ha="right", va="center")
    for r, (config, row) in enumerate(rows.items(), start=1):
        for c in range(targets):
            for k in range(restarts):
                ax = fig.add_subplot(grid[r, c * restarts + k])
                if row["has_image"][c, k]:
                    _show(ax, row["images"][c, k])
                    _caption(ax, row["captions"][c, k], "tab:green" if row["ok"][c, k] else "tab:red")
                else:
                    _placeholder(ax, private.shape, row["captions"][c, k])
                _frame(ax, "tab:green" if row["ok"][c, k] else "tab:red")
                if c == k == 0:
                    ax.set_ylabel(f"{label(config)}\nASR {row['asr']:.0%}", fontsize=8, rotation=0, ha="right",
                                  va="center")
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="tab:green", linewidth=2,
                             label="evaluator labels it the attacked class"),
               plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="tab:red", linewidth=2,
                             label="evaluator labels it another class (caption: its label)"),
               plt.Rectangle((0, 0), 1, 1, facecolor="0.8", edgecolor="tab:red", linewidth=2,
                             label="no reconstruction (caption: why)")]
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle(f"BREP-MI reconstructions per defense: {restarts} restart(s) per attacked class, "
                 "first restart left", fontsize=10)
    fig.subplots_adjust(left=0.16, right=0.99, top=1 - 0.8 / fig.get_figheight(), bottom=0.01)
    _save(fig, path)


MARKERS = ("o", "s", "^", "D", "v", "P")


def _rates(ax, x, rate, lo, hi, **style) -> None:
    """Points with their confidence intervals as error bars."""
    rate, lo, hi = (np.asarray(v, dtype=float) for v in (rate, lo, hi))
    ax.errorbar(x, rate, yerr=[rate - lo, hi - rate], capsize=3, markersize=5, linewidth=1.2, **style)


def figure3(path, sigmas: list[float], ns: list[int], series: dict[str, dict], base: dict[str, tuple],
            names: dict[str, str]) -> None:
    """Paper Figure 3: against sigma (log axis), BREP-MI's attack success rate (left) and the
    accuracy of the smoothed target (right), one colour and marker per N (N side by side: a
    small offset along sigma); bars: 95% Clopper-Pearson intervals. The base model as a black
    line with its interval as a band. ``series[measure][n]`` = (rates, lows, highs) over
    ``sigmas``, ``base[measure]`` = (rate, low, high); measure ``asr`` goes left, the others
    right (the first solid, the next dashed with hollow markers), each named by ``names``."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2), sharex=True)
    spread = 0.04 * (np.arange(len(ns)) - (len(ns) - 1) / 2)  # offsets in decades of sigma
    panels = {0: [m for m in series if m == "asr"], 1: [m for m in series if m != "asr"]}
    for p, measures in panels.items():
        for j, measure in enumerate(measures):
            style, line = ("-", "-") if j == 0 else ("--", ":")
            for i, n in enumerate(ns):
                x = np.asarray(sigmas, dtype=float) * 10 ** spread[i]
                _rates(axes[p], x, *series[measure][n], color=f"C{i}", marker=MARKERS[i % len(MARKERS)],
                       linestyle=style, markerfacecolor=f"C{i}" if j == 0 else "white",
                       label=f"{names[measure]}, N={n}")
            rate, lo, hi = base[measure]
            axes[p].axhspan(lo, hi, color="black", alpha=0.08, linewidth=0)
            axes[p].axhline(rate, color="black", linestyle=line, linewidth=1,
                            label=f"base model, {names[measure]}: {rate:.0%} (band: 95% interval)")
    for ax, ylabel, title in ((axes[0], "attack success rate (fraction of attacks)", "Model inversion (BREP-MI)"),
                              (axes[1], "accuracy (fraction correct)", "Utility of the smoothed target")):
        ax.set_xscale("log")
        ax.set_xticks(sigmas, [f"{s:g}" for s in sigmas])
        ax.minorticks_off()
        ax.set_xlabel("σ (noise standard deviation, pixel units; log scale)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    fig.suptitle("Figure 3: BREP-MI against the smoothed target (bars: 95% Clopper-Pearson intervals)", fontsize=11)
    fig.subplots_adjust(wspace=0.25)
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


def roc_grid(path, curves: dict[str, dict[str, dict]], title: str, members: int, nonmembers: int) -> None:
    """Membership-inference ROC curves on log-log axes (FPR from 1 / non-members to 1, TPR from
    1 / members), one panel per defense, the same colour per attack in every panel, the chance
    diagonal dotted; each panel's legend gives per attack its AUC and TPR at the fixed FPR.
    ``curves[defense][attack]``: ``pipeline.attacks.membership_metrics.roc_summary``."""
    cols = min(4, len(curves))
    rows = -(-len(curves) // cols)
    height = 5.2 * rows + 0.9  # per row: a 3-inch panel, its axis labels and its legend below
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, height), squeeze=False)
    colours: dict[str, str] = {}
    lowest = (1 / nonmembers, 1 / members)
    for ax, (defense, per) in zip(axes.flat, curves.items()):
        ax.plot([lowest[0], 1], [lowest[0], 1], ":", color="grey", linewidth=1, label="chance (TPR = FPR)")
        for attack, r in per.items():
            colours.setdefault(attack, f"C{len(colours)}")
            ax.plot(r["fpr"], r["tpr"], color=colours[attack], linewidth=1.2,
                    label=f"{attack}: AUC {r['auc']:.2f}, TPR {r['tpr_at_fpr']:.1%} at FPR {r['at_fpr']:.0%}")
        at = next(iter(per.values()))["at_fpr"]
        ax.axvline(at, color="grey", linewidth=0.6, alpha=0.6, label=f"FPR = {at:.0%}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lowest[0], 1)
        ax.set_ylim(lowest[1], 1.05)
        ax.set_title(label(defense), fontsize=9)
        ax.set_xlabel("false positive rate (log)")
        ax.set_ylabel("true positive rate (log)")
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    for ax in axes.flat[len(curves):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10, y=1 - 0.15 / height)
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.9 / height, bottom=2.0 / height, wspace=0.35,
                        hspace=2.2 / 3.0)
    _save(fig, path)


def _annotate_apart(ax, points: list[tuple[float, float, str]], box=(0.11, 0.045)) -> None:
    """Label each point unless its label would overlap an earlier one (``box``: a label's width
    and height in axes fractions)."""
    ax.autoscale_view()
    to_axes = ax.transData + ax.transAxes.inverted()
    placed: list[np.ndarray] = []
    for x, y, text in points:
        at = to_axes.transform((x, y))
        if all(abs(at[0] - p[0]) >= box[0] or abs(at[1] - p[1]) >= box[1] for p in placed):
            ax.annotate(text, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
            placed.append(at)


def tradeoff(path, rows: dict[str, dict]) -> None:
    """Privacy against utility, one curve per defense family: BREP-MI ASR (left) and the best
    membership attack's AUC (right) against test accuracy; RP one curve per N (points in
    sigma order), MID in beta order; the undefended target as a black star; a point near an
    already labelled one keeps its marker but not its label. ``rows``: ``pipeline.defenses.table``."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    curves: dict[str, list[tuple[str, dict]]] = {}
    for name, row in rows.items():
        curve = f"RP, {label(name.split('.')[2])}" if row["family"] == "RP" else row["family"]
        curves.setdefault(curve, []).append((name, row))
    for ax, key, ylabel, chance in ((axes[0], "brepmi_asr", "BREP-MI attack success rate", None),
                                    (axes[1], "best_auc", "best membership attack AUC", 0.5)):
        labelled = []
        for i, (curve, points) in enumerate(curves.items()):
            points = [(r["test_accuracy"], r[key], n) for n, r in points if r.get(key) is not None]
            if not points:
                continue
            x, y, names = zip(*points)
            if curve == "none":
                ax.plot(x, y, "*", color="black", markersize=14, label="undefended", zorder=5)
                continue
            ax.plot(x, y, "-o" if len(x) > 1 else "D", color=f"C{i}", label=curve, alpha=0.85)
            labelled += [(xi, yi, label(n.split(".")[1])) for xi, yi, n in zip(x, y, names) if "." in n]
        _annotate_apart(ax, labelled)
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

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


def inversion_comparison(path, private: np.ndarray, classes: list[str], train_x: np.ndarray, public_x: np.ndarray,
                         restarts: int, rows: dict[str, dict]) -> None:
    """BREP-MI reconstructions beside their nearest neighbours, every configuration: the first
    row shows each attacked class's most confident private training image; then per
    configuration (``label``, ASR, "at chance" when its test accuracy is) and class, the first
    restart's reconstruction, its nearest private training image of the class and its nearest
    public image (pixel l2, distance captioned). Reconstruction frame green: the evaluator labels
    it the attacked class, red: another class; the nearer neighbour has the thick frame.
    ``rows[config]``: images (attacks, C, H, W; NaN: none), judged (``inversion.judge`` rows),
    asr, at_chance, missing (per attack, what its grey tile says when it has no image)."""
    targets = len(classes)
    fig = plt.figure(figsize=(0.62 * 3 * targets + 2.0, 0.66 * (len(rows) + 1) + 0.9))
    grid = fig.add_gridspec(len(rows) + 1, 3 * targets + targets - 1,
                            width_ratios=([1, 1, 1, 0.25] * targets)[:-1], hspace=0.1, wspace=0.05)
    col = lambda c, j: 4 * c + j  # noqa: E731 (tile j of class c's triple)
    for c in range(targets):
        ax = fig.add_subplot(grid[0, col(c, 0)])
        _show(ax, private[c])
        _frame(ax, "black", 1.0)
        ax.set_title(f"class {classes[c]}", fontsize=7, loc="left")
        if c == 0:
            ax.set_ylabel("private\ntraining image", fontsize=8, rotation=0, ha="right", va="center")
        for j, name in ((1, "nearest\nprivate"), (2, "nearest\npublic")):
            ax = fig.add_subplot(grid[0, col(c, j)])
            ax.axis("off")
            ax.text(0.5, 0.2, name, transform=ax.transAxes, ha="center", va="bottom", fontsize=6)
    for r, (config, row) in enumerate(rows.items(), start=1):
        judged = row["judged"]
        for c in range(targets):
            i = c * restarts  # the first restart of class c
            ax = tile = fig.add_subplot(grid[r, col(c, 0)])
            if judged["label"].iat[i] < 0:
                _placeholder(ax, private.shape, row["missing"][i])
                _frame(ax, "tab:red")
                for j in (1, 2):
                    fig.add_subplot(grid[r, col(c, j)]).axis("off")
            else:
                ok = bool(judged["success"].iat[i])
                _show(ax, row["images"][i])
                _caption(ax, f"eval {judged['label'].iat[i]}", "tab:green" if ok else "tab:red")
                _frame(ax, "tab:green" if ok else "tab:red")
                nearer = bool(judged["nearer_private"].iat[i])
                for j, pool, key, thick in ((1, train_x, "private", nearer), (2, public_x, "public", not nearer)):
                    ax = fig.add_subplot(grid[r, col(c, j)])
                    _show(ax, pool[judged[key].iat[i]])
                    _caption(ax, f"{judged[key + '_distance'].iat[i]:.2f}", "0.25")
                    _frame(ax, "tab:blue" if thick else "0.6", 2.5 if thick else 0.8)
            if c == 0:
                chance = "\nat chance" if row["at_chance"] else ""
                tile.set_ylabel(f"{label(config)}\nASR {row['asr']:.0%}{chance}", fontsize=8, rotation=0,
                                ha="right", va="center")
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="tab:green", linewidth=2,
                             label="evaluator labels it the attacked class (caption: its label)"),
               plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="tab:red", linewidth=2,
                             label="another class, or no reconstruction (grey)"),
               plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="tab:blue", linewidth=2,
                             label="the nearer neighbour (caption: pixel l2 distance)")]
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle(f"BREP-MI reconstructions and their nearest private and public images: the first of {restarts} "
                 "restarts per class (all attacks: results/inversion/attacks.tsv)", fontsize=10)
    fig.subplots_adjust(left=0.09, right=0.995, top=1 - 0.55 / fig.get_figheight(), bottom=0.01)
    _save(fig, path)


MARKERS = ("o", "s", "^", "D", "v", "P")


def _rates(ax, x, rate, lo, hi, **style) -> None:
    """Points with their confidence intervals as error bars."""
    rate, lo, hi = (np.asarray(v, dtype=float) for v in (rate, lo, hi))
    ax.errorbar(x, rate, yerr=[rate - lo, hi - rate], capsize=3, markersize=5, linewidth=1.2, **style)


FIGURE3_PANELS = (("Model inversion (BREP-MI)", "attack success rate (fraction of attacks)", ("asr", "asr_no_attack")),
                  ("What the attack adds", "lift: ASR − ASR with no attack", ("lift",)),
                  ("Utility of the smoothed target", "accuracy (fraction correct)", ("accuracy_test", "accuracy")))


def figure3(path, sigmas: list[float], ns: list[int], series: dict[str, dict], base: dict[str, tuple],
            names: dict[str, str], at_chance: dict[int, list[bool]], chance: float) -> None:
    """Paper Figure 3, with the baselines that make it readable: against sigma (log axis), per
    N (a colour and marker each, side by side: a small offset along sigma), BREP-MI's ASR and
    its chance baseline (the evaluator on the attack's starts; hollow markers, dotted), the lift
    between them, and the smoothed target's accuracy (test split solid, most confident image
    per class dashed) over the chance line. Bars: 95% intervals (Wilson; bootstrap for the
    lift). The base model: a black line with its interval as a band. A grey cross marks every
    configuration whose test accuracy is at chance (``at_chance[n]`` over ``sigmas``): a low
    ASR there says the model stopped working. ``series[measure][n]`` = (rates, lows, highs)
    over ``sigmas``, ``base[measure]`` = (rate, low, high), ``names[measure]`` its legend name."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharex=True)
    spread = 0.04 * (np.arange(len(ns)) - (len(ns) - 1) / 2)  # offsets in decades of sigma
    for ax, (title, ylabel, measures) in zip(axes, FIGURE3_PANELS):
        for j, measure in enumerate(measures):
            style, line = ("-", "-") if j == 0 else ((":", ":") if measure.endswith("no_attack") else ("--", "--"))
            for i, n in enumerate(ns):
                x = np.asarray(sigmas, dtype=float) * 10 ** spread[i]
                _rates(ax, x, *series[measure][n], color=f"C{i}", marker=MARKERS[i % len(MARKERS)],
                       linestyle=style, markerfacecolor=f"C{i}" if j == 0 else "white",
                       label=f"{names[measure]}, N={n}")
                down = np.asarray(at_chance[n], dtype=bool)
                if j == 0 and down.any():
                    named = any(h.get_label() == "test accuracy at chance" for h in ax.collections)
                    ax.scatter(x[down], np.asarray(series[measure][n][0])[down], s=140, marker="x", color="0.45",
                               zorder=5, label=None if named else "test accuracy at chance")
            rate, lo, hi = base[measure]
            ax.axhspan(lo, hi, color="black", alpha=0.08, linewidth=0)
            ax.axhline(rate, color="black", linestyle=line, linewidth=1,
                       label=f"base model, {names[measure]}: {rate:.0%} (band: 95% interval)")
        if measures[0] == "lift":
            ax.axhline(0, color="0.3", linewidth=0.8)
            ax.set_ylim(-1.03, 1.03)
        else:
            ax.set_ylim(-0.03, 1.03)
        if measures[0] == "accuracy_test":
            ax.axhline(chance, color="0.4", linestyle=(0, (1, 3)), linewidth=1.2, label=f"chance: {chance:.0%}")
        ax.set_xscale("log")
        ax.set_xticks(sigmas, [f"{s:g}" for s in sigmas])
        ax.minorticks_off()
        ax.set_xlabel("σ (noise standard deviation, pixel units; log scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    fig.suptitle("Figure 3: BREP-MI against the smoothed target, beside its chance baseline "
                 "(bars: 95% intervals)", fontsize=11)
    fig.subplots_adjust(wspace=0.28)
    _save(fig, path)


def repeat_widths(path, repeats: list[int], widths: dict[tuple[str, str], list[tuple[float, float, float]]],
                  unit: str) -> None:
    """The averaging attacker: median inferred interval width, with its 95% interval (bars),
    against the number K of answers seen for the victim, one line per (served model, noise mode):
    colour = the served model, line style = the noise mode; the legend below the axes.
    ``widths[model, mode]``: (median, low, high) per K."""
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    models = list(dict.fromkeys(name for name, _ in widths))
    modes = list(dict.fromkeys(mode for _, mode in widths))
    styles = dict(zip(modes, ("-", "--", ":", "-.")))
    for (name, mode), w in widths.items():
        mid, low, high = (np.array(v, dtype=float) for v in zip(*w))
        ax.errorbar(repeats, mid, yerr=[mid - low, high - mid], marker="o", capsize=3, color=f"C{models.index(name)}",
                    linestyle=styles[mode])
    handles = ([Line2D([], [], color=f"C{i}", marker="o", label=label(name)) for i, name in enumerate(models)]
               + [Line2D([], [], color="grey", linestyle=styles[m], label=f"{m.replace('_', ' ')} noise") for m in modes])
    ax.set_xscale("log")
    ax.set_xticks(repeats, [str(k) for k in repeats])
    ax.set_xlabel("answers seen for the victim (K)")
    ax.set_ylabel(f"median interval width ({unit})")
    ax.set_title("Repeated queries: the averaging attacker (bars: 95% intervals)", fontsize=10)
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=7, bbox_to_anchor=(0.5, 0.0), frameon=False)
    _save(fig, path)


def roc_grid(path, curves: dict[str, dict[str, dict]], title: str, members: int, nonmembers: int,
             chosen: dict[str, str] | None = None) -> None:
    """Membership-inference ROC curves on log-log axes (FPR from 1 / non-members to 1, TPR from
    1 / members), one panel per defense, the same colour per attack in every panel, the chance
    diagonal dotted; each panel's legend gives per attack its AUC and TPR at the fixed FPR; the
    attacker's chosen attack (``chosen[defense]``) is drawn thick and marked "chosen".
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
            mark = (chosen or {}).get(defense) == attack
            ax.plot(r["fpr"], r["tpr"], color=colours[attack], linewidth=2.4 if mark else 1.2, zorder=4 if mark else 2,
                    label=f"{attack}{' (chosen)' if mark else ''}: AUC {r['auc']:.2f}, TPR {r['tpr_at_fpr']:.1%} "
                          f"at FPR {r['at_fpr']:.0%}")
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


def frontier(path, rows: dict[str, dict], panels: list[tuple[str, str, float | None, bool, str]], title: str) -> None:
    """The privacy-utility frontier, one panel per attack: its success (or privacy measure)
    against test accuracy, one curve per row ``curve`` (``defense_table.curve``: a defense family;
    RP per N, randomized response per randomness), the undefended model as a black star, 95% intervals on
    both axes where the row has them, the Pareto front (``pareto_<attack>`` flags) as a dashed
    black line through its points, a grey cross on every point whose test accuracy is at chance;
    a point near an already labelled one keeps its marker but not its label. ``panels``: (row
    key, axis label, chance line or None, lower is better, panel title). ``rows``:
    ``pipeline.reporting.defense_table.table`` or ``tabular_table``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels) + 0.6, 6.0), squeeze=False)
    curves: dict[str, list[tuple[str, dict]]] = {}
    for name, row in rows.items():
        curves.setdefault(row["curve"], []).append((name, row))
    for ax, (key, ylabel, chance, lower, panel) in zip(axes[0], panels):
        labelled = []
        for i, (name_, points) in enumerate(curves.items()):
            points = [(r, n) for n, r in points if r.get(key) is not None]
            if not points:
                continue
            x, y = (np.array([r[k] for r, _ in points]) for k in ("test_accuracy", key))
            names = [n for _, n in points]
            bars = {f"{axis}err": np.abs(np.array([[r[f"{k}_low"], r[f"{k}_high"]] for r, _ in points]).T - v)
                    for axis, k, v in (("x", "test_accuracy", x), ("y", key, y))
                    if all(f"{k}_low" in r for r, _ in points)}
            if name_ == "none":
                ax.errorbar(x, y, fmt="*", color="black", markersize=14, label="undefended", zorder=5, **bars)
                continue
            ax.errorbar(x, y, fmt="-o" if len(x) > 1 else "D", color=f"C{i}", label=name_, alpha=0.85, capsize=2,
                        markersize=4, linewidth=1, **bars)
            down = np.array([bool(r.get("at_chance")) for r, _ in points])
            if down.any():
                ax.scatter(x[down], y[down], s=120, marker="x", color="0.45", zorder=6,
                           label="test accuracy at chance" if "at chance" not in str(ax.get_legend_handles_labels())
                           else None)
            labelled += [(xi, yi, label(n.split(".")[1])) for xi, yi, n in zip(x, y, names) if "." in n]
        flag = f"pareto_{key.split('_')[0]}"
        front = sorted((r["test_accuracy"], r[key]) for r in rows.values() if r.get(flag))
        if front:
            ax.plot(*zip(*front), "--", color="black", linewidth=1.2, zorder=1, label="Pareto front")
        _annotate_apart(ax, labelled)
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_xlabel("test accuracy of the released predictions")
        ax.set_ylabel(f"{ylabel} ({'lower' if lower else 'higher'} is more private)")
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes[0]:
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=4 if len(panels) > 1 else 2, fontsize=7,
               frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    _save(fig, path)


def n_effect(path, ns: list[int], panels: list[tuple[str, str, dict[str, list[tuple[float, float, float]]]]],
             title: str, lines: dict[int, tuple[str, float]] | None = None) -> None:
    """Measures against N (log axis), one panel per (title, y label, {series: [(value, low,
    high) per N]}); bars: 95% intervals. ``lines[panel]``: a labelled horizontal reference line
    (a chance level, the base model) drawn in that panel."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4))
    axes = np.atleast_1d(axes)
    for p, (ax, (name, ylabel, series)) in enumerate(zip(axes, panels)):
        spread = 0.025 * (np.arange(len(series)) - (len(series) - 1) / 2)
        for i, (legend, points) in enumerate(series.items()):
            mid, low, high = (np.array(v, dtype=float) for v in zip(*points))
            x = np.asarray(ns, dtype=float) * 10 ** spread[i]
            ax.errorbar(x, mid, yerr=[mid - low, high - mid], marker=MARKERS[i % len(MARKERS)], capsize=3,
                        color=f"C{i}", label=legend)
        if lines and p in lines:
            text, value = lines[p]
            ax.axhline(value, color="0.35", linestyle=(0, (1, 3)), linewidth=1.2, label=text)
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_xlabel("N (noisy evaluations per query; log scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.suptitle(title + " (bars: 95% intervals)", fontsize=11)
    fig.subplots_adjust(wspace=0.3)
    _save(fig, path)


def advantages(path, tables: dict[str, "object"], half_alpha: float) -> None:
    """The distinguishing game: per task (a panel), the advantage of the best distinguisher for
    every (record, partner) pair, one column per (partner kind, release protocol, noise) with a
    single answer released: dots are the per-pair estimates (plug-in TV, biased upward; keyed:
    the disagreement rate), the bar their median, and above each column the share of pairs whose
    95% lower bound exceeds alpha/2 (the red line). Symmetric-log axis: 0 to 0.01 is linear."""
    fig, axes = plt.subplots(len(tables), 1, figsize=(13, 4.3 * len(tables)), squeeze=False)
    for ax, (task, table) in zip(axes[:, 0], tables.items()):
        single = table[table["queries"] == 1]
        groups = list(single.groupby(["kind", "protocol", "noise"], sort=False))
        rng = np.random.default_rng(0)  # jitter only
        for i, ((kind, protocol, noise), g) in enumerate(groups):
            adv = g["advantage"].to_numpy(float)
            color = "0.3" if protocol == "exact" else ("C0" if noise == "fresh" else "C1")
            ax.scatter(i + rng.uniform(-0.25, 0.25, len(adv)), adv, s=10, alpha=0.55, color=color, linewidths=0)
            ax.plot([i - 0.3, i + 0.3], [np.median(adv)] * 2, color="black", linewidth=2)
            share = np.mean(adv > 0) if protocol == "exact" else np.mean(g["advantage_low"].to_numpy(float) > half_alpha)
            ax.text(i, 1.35, f"{share:.0%}", ha="center", fontsize=7)
        ax.axhline(half_alpha, color="tab:red", linestyle="--", linewidth=1.2, label=f"α/2 = {half_alpha:g}")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_ylim(-0.001, 1.7)
        ax.set_xticks(range(len(groups)), [f"{k}\n{p}" + ("" if p == "exact" else f"\n{n}") for (k, p, n), _ in groups],
                      fontsize=7)
        ax.set_ylabel("advantage (TV distance)")
        ax.set_title(f"{task}: numbers above the columns = share of pairs whose 95% lower bound exceeds α/2 "
                     "(exact g: share where g(x) ≠ g(x'))", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        handles = [Line2D([], [], color=c, marker="o", linestyle="", label=t) for c, t in
                   (("C0", "fresh noise (plug-in TV)"), ("C1", "keyed noise (disagreement over secrets)"),
                    ("0.3", "exact smoothed classifier g"))]
        ax.legend(handles=handles + [Line2D([], [], color="tab:red", linestyle="--", label=f"α/2 = {half_alpha:g}"),
                                     Line2D([], [], color="black", linewidth=2, label="median over pairs")],
                  fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=5, frameon=False)
    fig.suptitle("The distinguishing game of (R, α)-Robust Privacy: x against partners x' with ‖x − x'‖ ≤ R_x",
                 fontsize=11)
    fig.subplots_adjust(hspace=0.75)
    _save(fig, path)


def extraction(path, panels: list[tuple[str, str, list[int], dict, dict, float | None]]) -> None:
    """The distillation boundary: per panel (title, y label, budgets, students, served, chance),
    one line per served model: the attack's result against the served model itself (first
    column, hollow marker: ``served[name]`` = (value, low, high)) and against the student
    distilled from it at each query budget (``students[name]``: (value, low, high) per budget);
    ``chance``: a dotted reference line. Bars: 95% intervals."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, (title, ylabel, budgets, students, served, chance) in zip(axes[0], panels):
        for i, name in enumerate(students):
            points = [served[name], *students[name]]
            mid, low, high = (np.array(v, dtype=float) for v in zip(*points))
            x = np.arange(len(points)) + 0.06 * (i - (len(students) - 1) / 2)
            ax.errorbar(x, mid, yerr=[mid - low, high - mid], marker=MARKERS[i % len(MARKERS)], capsize=3,
                        color=f"C{i}", label=label(name))
            ax.plot(x[:1], mid[:1], marker=MARKERS[i % len(MARKERS)], color="white", markersize=3, linestyle="")
        if chance is not None:
            ax.axhline(chance, color="0.35", linestyle=(0, (1, 3)), linewidth=1.2, label=f"chance: {chance:.0%}")
        ax.set_xticks(range(len(budgets) + 1), ["the served\nmodel itself"] + [f"student,\n{q:,} queries"
                                                                             for q in budgets])
        ax.set_xlim(-0.4, len(budgets) + 0.4)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.suptitle("The distillation boundary: each attack against the served model, then against students "
                 "distilled from its labels (bars: 95% intervals)", fontsize=11)
    fig.subplots_adjust(wspace=0.3)
    _save(fig, path)

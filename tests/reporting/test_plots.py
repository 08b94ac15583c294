"""The figures, read back from the matplotlib figure (``_save`` captured) or from the PNG."""
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from pipeline.attacks.membership_metrics import roc_auc, roc_summary, tpr_at_fpr
from pipeline.reporting import plots


@pytest.fixture
def saved(monkeypatch):
    """The figures the plotting functions would write, left open."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    return figures


def rows(has_image: bool, image: float, at_chance: int = 0) -> dict:
    """One configuration of 2 classes x 2 restarts: every attack with a reconstruction (evaluator
    label 0, nearer its private neighbour) or none."""
    judged = pd.DataFrame({"label": 0 if has_image else -1, "success": [True, False, False, True],
                           "nearer_private": [True, True, False, False], "private": 1, "public": 2,
                           "private_distance": 0.25, "public_distance": 0.5}, index=range(4))
    images = np.full((4, 1, 8, 8), image if has_image else np.nan, np.float32)
    return {"base": {"images": images, "judged": judged, "asr": 0.5, "at_chance": at_chance,
                     "missing": np.array(["no start", "no image"] * 2)}}


def comparison(path, grid, private_value=0.5):
    pool = np.linspace(0, 1, 4)[:, None, None, None] * np.ones((4, 1, 8, 8), np.float32)
    plots.inversion_comparison(path, np.full((2, 1, 8, 8), private_value, np.float32), ["0", "1"], pool, pool, 2, grid)


def dark_fraction(path) -> float:
    return float((matplotlib.image.imread(path)[..., :3].max(axis=-1) < 0.1).mean())


def test_an_attack_without_reconstruction_is_a_grey_placeholder_not_a_black_square(tmp_path, saved):
    comparison(tmp_path / "none.png", rows(False, 0.0))
    texts = [t.get_text() for ax in saved[0].axes for t in ax.texts]
    assert texts.count("no start") == 2  # the first restart of each class, saying why it has no image
    saved.pop().savefig(tmp_path / "none.png", dpi=120)
    comparison(tmp_path / "black.png", rows(True, 0.0), private_value=0.0)
    saved.pop().savefig(tmp_path / "black.png", dpi=120)
    assert dark_fraction(tmp_path / "none.png") < 0.02 < dark_fraction(tmp_path / "black.png")


def test_inversion_comparison_shows_each_reconstruction_beside_its_nearest_private_and_public_image(saved):
    grid = {**rows(True, 0.3), "rp.sigma_0_1.n_10": rows(False, 0.0, at_chance=1)["base"]}
    comparison("unused.png", grid)
    axes = saved[0].axes
    assert len(axes) == 3 * 2 + 3 * 2 + 3 * 2  # header, then per configuration and class a triple of tiles
    assert [ax.get_title(loc="left") for ax in axes[:6:3]] == ["class 0", "class 1"]
    assert [ax.get_ylabel() for ax in axes if ax.get_ylabel()] == ["private\ntraining image", "base\nASR 50%",
                                                                  "RP, σ=0.1, N=10\nASR 50%\nat chance"]
    recon, private, public = axes[6:9]  # base, class 0, first restart
    assert [t.get_text() for t in recon.texts] == ["eval 0"] and recon.spines["top"].get_edgecolor()[:3] != (1, 0, 0)
    assert [t.get_text() for t in private.texts] == ["0.25"] and [t.get_text() for t in public.texts] == ["0.50"]
    assert private.spines["top"].get_linewidth() > public.spines["top"].get_linewidth()  # the nearer one is thick
    shown = private.images[0].get_array()
    assert np.allclose(shown, 1 / 3)  # pool image 1 of linspace(0, 1, 4): the nearest private image by index


def test_roc_axes_are_log_log_from_one_over_the_non_members_with_auc_and_tpr_in_the_legend(saved):
    rng = np.random.default_rng(0)
    member, nonmember = rng.normal(1, 1, 200), rng.normal(0, 1, 400)
    plots.roc_grid("unused.png", {"none": {"loss": roc_summary(member, nonmember)}}, "t", 200, 400)
    ax = saved[0].axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlim() == pytest.approx((1 / 400, 1))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"loss: AUC {roc_auc(member, nonmember):.2f}, TPR {tpr_at_fpr(member, nonmember):.1%} at FPR 1%" in legend
    assert any("chance" in t for t in legend)


def test_figure3_three_panels_with_the_chance_baseline_lift_and_at_chance_marks(saved):
    sigmas, ns = [0.01, 0.1, 1.0], [10, 100]
    point = ([0.5, 0.4, 0.1], [0.2, 0.1, 0.0], [0.8, 0.7, 0.4])
    measures = ("asr", "asr_no_attack", "lift", "accuracy_test", "accuracy")
    series = {m: {n: point for n in ns} for m in measures}
    plots.figure3("unused.png", sigmas, ns, series, {m: (0.9, 0.6, 1.0) for m in measures},
                  {m: m.upper() for m in measures}, {10: [False, False, True], 100: [False, False, False]}, 0.1)
    left, middle, right = saved[0].axes
    assert left.get_xscale() == middle.get_xscale() == right.get_xscale() == "log"
    lines = [c.lines[0] for c in left.containers if c.get_label().startswith("ASR, N=")]
    assert len({line.get_color() for line in lines}) == len({line.get_marker() for line in lines}) == 2
    x10, x100 = (line.get_xdata() for line in lines)
    assert np.all(x10 < x100) and np.allclose(x10 / x100, x10[0] / x100[0])  # a constant offset in log sigma
    assert all(c.has_yerr for c in left.containers) and left.patches  # error bars; the base model's band
    legend = [t.get_text() for t in left.get_legend().get_texts()]
    assert "ASR_NO_ATTACK, N=10" in legend and any(t.startswith("base model, ASR: 90%") for t in legend)
    crosses = [c for c in left.collections if c.get_label() == "test accuracy at chance"]
    assert len(crosses) == 1 and np.allclose(crosses[0].get_offsets(), [[x10[2], 0.1]])
    assert any(t.get_text() == "chance: 10%" for t in right.get_legend().get_texts())
    assert "LIFT, N=10" in [t.get_text() for t in middle.get_legend().get_texts()]
    plots.figure3("unused.png", sigmas, ns, series, {m: (0.9, 0.6, 1.0) for m in measures},
                  {m: m.upper() for m in measures}, {n: [False] * 3 for n in ns}, 0.1)
    legend = [t.get_text() for ax in saved[1].axes for t in ax.get_legend().get_texts()]
    assert "test accuracy at chance" not in legend  # no cross, no legend entry for one


def test_ape_histograms_legend_names_the_threshold_b_star_and_the_colours(saved):
    edges = 33.4 + 0.2 * np.arange(-3, 4)
    plots.ape_histograms("unused.png", edges, {"base": np.array([0, 20, 20, 5, 1, 0]),
                                               "sigma_1": np.zeros(6, int)}, 33.4, "t", "bmi", 0.01, "record",
                         {"sigma_1": (33.45, 33.43, 33.47)}, {"base": "expansion 0.60"})
    legend = [t.get_text() for t in saved[0].legends[0].get_texts()]
    assert legend == ["B = 33.4", "b*: where the panel's classifier flips (median over the sampled records)",
                      "positive predictions above B", "positive predictions at or below B"]
    assert [ax.get_title() for ax in saved[0].axes] == ["base", "σ=1"]
    colours = [tuple(p.get_facecolor()) for p in saved[0].axes[0].patches]
    assert len(set(colours[:3])) == 1 and colours[2] != colours[3]  # orange up to B, blue above
    base, smoothed = saved[0].axes
    assert [line.get_xdata()[0] for line in smoothed.get_lines()] == [33.4, 33.45]  # B, then b*
    assert len(base.get_lines()) == 1 and "b* = 33.45 (B +0.05)" in [t.get_text() for t in smoothed.texts]
    assert "expansion 0.60" in [t.get_text() for t in base.texts]
    assert "records are independent trials" in saved[0].texts[-1].get_text()


def test_training_curve_shows_train_and_test_accuracy_in_a_second_panel(saved):
    history = [{"epoch": e, "loss": 1 / (e + 1), "train_accuracy": 0.8 + e / 100, "test_accuracy": 0.7} for e in range(5)]
    plots.training_curve("unused.png", history)
    loss, acc = saved[0].axes
    assert [t.get_text() for t in acc.get_legend().get_texts()] == ["train accuracy", "test accuracy"]
    assert loss.get_xlabel() == acc.get_xlabel() == "epoch" and loss.get_yscale() == "log"

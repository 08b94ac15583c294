"""The figures, read back from the matplotlib figure (``_save`` captured) or from the PNG."""
import matplotlib.image
import numpy as np
import pytest

from pipeline.attacks.membership_metrics import roc_auc, roc_summary, tpr_at_fpr
from pipeline.reporting import plots


@pytest.fixture
def saved(monkeypatch):
    """The figures the plotting functions would write, left open."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    return figures


def rows(has_image: bool, image: float) -> dict:
    shape = (2, 2)
    return {"base": {"images": np.full((*shape, 1, 8, 8), image, np.float32), "asr": 0.0,
                     "has_image": np.full(shape, has_image), "ok": np.zeros(shape, bool),
                     "captions": np.full(shape, "eval 3" if has_image else "no start", dtype=object)}}


def dark_fraction(path) -> float:
    return float((matplotlib.image.imread(path)[..., :3].max(axis=-1) < 0.1).mean())


def test_an_attack_without_reconstruction_is_a_grey_placeholder_not_a_black_square(tmp_path, saved):
    private = np.full((2, 1, 8, 8), 0.5, np.float32)
    plots.inversion_comparison(tmp_path / "none.png", private, ["0", "1"], rows(False, 0.0))
    texts = [t.get_text() for ax in saved[0].axes for t in ax.texts]
    assert texts.count("no start") == 4
    saved.pop().savefig(tmp_path / "none.png", dpi=120)
    plots.inversion_comparison(tmp_path / "black.png", private, ["0", "1"], rows(True, 0.0))
    saved.pop().savefig(tmp_path / "black.png", dpi=120)
    assert dark_fraction(tmp_path / "none.png") < 0.02 < 0.1 < dark_fraction(tmp_path / "black.png")


def test_inversion_comparison_has_the_private_row_then_one_row_per_configuration(saved):
    grid = {**rows(True, 0.3), "rp.sigma_0_1.n_10": rows(False, 0.0)["base"]}
    plots.inversion_comparison("unused.png", np.zeros((2, 1, 8, 8)), ["0", "1"], grid)
    axes = saved[0].axes
    assert len(axes) == 2 + 2 * 4  # one private image per class, then class x restart per configuration
    assert [ax.get_title() for ax in axes[:2]] == ["class 0", "class 1"]
    assert [ax.get_ylabel() for ax in axes if ax.get_ylabel()] == ["private\ntraining image", "base\nASR 0%",
                                                                  "RP, σ=0.1, N=10\nASR 0%"]
    captions = [t.get_text() for ax in axes[2:6] for t in ax.texts]
    assert captions == ["eval 3"] * 4  # on the tiles of their own row


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


def test_figure3_log_sigma_two_panels_intervals_and_offset_series(saved):
    sigmas, ns = [0.01, 0.1, 1.0], [10, 100]
    point = ([0.5, 0.4, 0.1], [0.2, 0.1, 0.0], [0.8, 0.7, 0.4])
    series = {"asr": {n: point for n in ns}, "accuracy": {n: point for n in ns}}
    plots.figure3("unused.png", sigmas, ns, series, {"asr": (0.9, 0.6, 1.0), "accuracy": (1.0, 0.5, 1.0)},
                  {"asr": "ASR", "accuracy": "accuracy"})
    left, right = saved[0].axes
    assert left.get_xscale() == right.get_xscale() == "log"
    lines = [c.lines[0] for c in left.containers if c.get_label().startswith("ASR, N=")]
    assert len({line.get_color() for line in lines}) == len({line.get_marker() for line in lines}) == 2
    x10, x100 = (line.get_xdata() for line in lines)
    assert np.all(x10 < x100) and np.allclose(x10 / x100, x10[0] / x100[0])  # a constant offset in log sigma
    assert all(c.has_yerr for c in left.containers) and left.patches  # error bars; the base model's band
    assert any(t.get_text().startswith("base model, ASR: 90%") for t in left.get_legend().get_texts())


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

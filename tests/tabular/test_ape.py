"""The augmented set, Definition 2 and the expansion measures on hand-made examples."""
import numpy as np
import pytest
import torch

from pipeline.smoothing import ESTIMATE, SELECT, Smooth, certify_from_counts
from pipeline.tabular.ape import (Augmented, Configuration, augment, bin_edges, certify_augmented, configurations,
                                  count_records, expansion, histogram, inference_sets, trajectory)
from pipeline.tabular.mlp import mlp

META = {"sensitive_mean": 27.0, "sensitive_std": 5.0}


def test_trajectory_has_501_points_from_b_down_to_b_minus_5():
    t = trajectory(33.4, 0.01, 500)
    assert len(t) == 501 and t[0] == 33.4 and t[-1] == pytest.approx(28.4)
    assert np.allclose(np.diff(t), -0.01)


def test_augmented_rows_change_only_the_sensitive_attribute():
    records = np.arange(12, dtype=np.float32).reshape(3, 4)
    values = augment(np.array([35.0, 40.0, 34.0]), 33.4, 0.5, 4)
    assert values.shape == (3, 6) and values[1, 0] == 40.0 and values[1, 1] == 33.4
    aug = Augmented(records, values, sensitive_index=2, meta=META)
    assert len(aug) == 18
    rows = aug[5:9].numpy()  # rows (0, 5), (1, 0), (1, 1), (1, 2)
    assert np.array_equal(rows[:, [0, 1, 3]], records[[0, 1, 1, 1]][:, [0, 1, 3]])
    assert np.allclose(rows[:, 2], (values[[0, 1, 1, 1], [5, 0, 1, 2]] - 27.0) / 5.0)
    assert np.array_equal(aug[:].numpy()[5:9], rows)  # the same rows whatever the slice


def test_definition_2_on_a_hand_made_record():
    # values z, which are predicted positive, and their radii (attribute units)
    values = np.array([[40.0, 33.4, 33.0, 32.0, 31.0], [35.0, 33.4, 33.0, 32.0, 31.0]])
    positive = np.array([[True, True, True, False, False], [False, False, False, False, False]])
    radius = np.array([[3.0, 0.2, 0.5, 9.0, 9.0], [0, 0, 0, 0, 0]])
    sets = inference_sets(values, positive, radius)
    assert sets["i_lo"][0] == 33.0 and sets["i_hi"][0] == 40.0
    assert sets["ir_lo"][0] == 32.5  # min(z - R_z) over positives: 33.0 - 0.5
    assert sets["ir_hi"][0] == 43.0  # 40 + 3; radii of negative points do not count
    assert all(np.isnan(sets[k][1]) for k in sets)


def test_expansion_observed_and_robust():
    B = 33.4
    values = np.tile(np.array([35.0, 33.4, 33.0, 32.0]), (100, 1))
    positive = np.zeros_like(values, dtype=bool)
    positive[:, 0] = True
    positive[:50, 2] = True  # half the records reach 0.4 below B
    positive[0, 3] = True  # one record reaches 1.4 below B
    e = expansion(values, positive, B, quantile=0.9)
    assert e["observed"] == pytest.approx(1.4)
    assert e["robust"] == pytest.approx(0.4)
    assert e["positives_below_threshold"] == 51 and e["records_reaching_below"] == 50


def test_bin_edges_put_the_threshold_on_an_edge():
    edges = bin_edges(np.array([28.4, 33.4, 41.3]), 33.4, 0.2)
    assert np.any(np.isclose(edges, 33.4))
    assert edges[0] <= 28.4 and edges[-1] >= 41.3 and np.allclose(np.diff(edges), 0.2)


def test_histogram_bins_are_right_closed_so_b_and_the_trajectory_fill_bins_evenly():
    B, step, width = 33.4, 0.01, 0.2
    values = np.r_[trajectory(B, step, 500), 33.5, 50.0]  # the copies b' = B - j*s, and two records above B
    edges = bin_edges(values, B, width)
    counts = histogram(values, edges)
    at = int(np.flatnonzero(np.isclose(edges, B))[0])
    assert counts.sum() == len(values) and np.allclose(np.diff(edges), width)
    assert counts[at - 1] == 20 and counts[at] == 1  # b' = B counts at or below B, not in the first bin above it
    assert set(counts[1:at]) == {20} and counts[0] == 1  # every full bin the same, the lowest value inside bin 0
    assert counts[-1] == 1 and edges[-1] == pytest.approx(50.0)  # the largest record ends the last regular bin


def test_configurations_cover_figure_1_and_appendix_a():
    cfgs = configurations({"sigmas": [1.0, 2.0], "n": 1000, "alpha": 0.01},
                          {"sigma": 3.0, "ns": [100, 1000], "alphas": [0.01, 0.99]})
    assert [c[0] for c in cfgs[:2]] == ["sigma_1", "sigma_2"]
    assert ("ablation.sigma_3.n_100.alpha_0_99", 3.0, 100, 0.99, 4) in cfgs and len(cfgs) == 6
    assert [c.figure for c in cfgs] == [1, 1, 4, 4, 4, 4]


def test_certify_augmented_in_chunks_of_rows_made_on_the_fly_equals_the_materialised_rows():
    model = mlp(4, 8).eval()
    records = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    aug = Augmented(records, augment(np.array([35.0, 36.0, 40.0]), 33.4, 0.5, 6), 1, META)
    lazy = certify_augmented(model, aug, [Configuration("s", 1.0, 60, 0.1, 1)], n0=20, noise="fresh", seed=1, chunk=300,
                    compute={"backend": "local", "chunk": 5}, progress=False)["s"]
    smooth, rows = Smooth(model, 2, 1.0, noise="fresh", seed=1, chunk=64 * 60), aug[:]
    direct = certify_from_counts(smooth.counts(rows, 20, SELECT, key=0), smooth.counts(rows, 60, ESTIMATE, key=60),
                                 0.1, 1.0)
    assert lazy["prediction"].shape == (3, 8)
    assert np.array_equal(lazy["prediction"].ravel(), direct.prediction)
    assert np.array_equal(lazy["radius"].ravel(), direct.radius)


def test_record_noise_makes_records_independent_trials_and_shares_a_bank_along_each_trajectory():
    # 200 identical records at one value with p = P(f = 1) = 1/2: independent records give
    # Binomial(n, 1/2) counts (variance n/4); a bank shared across records would give one count
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
        model[0].bias.zero_()
    records, n = np.zeros((200, 2), dtype=np.float32), 400
    values = np.tile([27.0, 27.0, 28.0], (200, 1))  # standardised 0 (p = 1/2), 0 again, 0.2
    aug = Augmented(records, values, 1, META)
    ones = count_records(0, 200, model, aug, {1.0: [n]}, 10, "record", 0, 4096)[1.0, n][:, 1].reshape(200, 3)
    assert np.array_equal(count_records(50, 80, model, aug, {1.0: [n]}, 10, "record", 0, 4096)[1.0, n][:, 1],
                          ones[50:80].ravel())  # a record's draws do not depend on the chunk it is counted in
    assert np.array_equal(ones[:, 0], ones[:, 1])  # the same record, the same value: the same draws
    assert (ones[:, 2] >= ones[:, 0]).all()  # the same draws at a larger value: never fewer ones
    variance = ones[:, 0].var(ddof=1)
    assert 0.7 * n / 4 < variance < 1.35 * n / 4  # chi-square(199) bounds at about 1e-4 each side
    assert abs(ones[:, 0].mean() - n / 2) < 4 * np.sqrt(n / 4 / 200)

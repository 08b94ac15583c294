"""The smoothing engine against analytic answers (a linear base classifier, whose smoothed
version is known in closed form) and against scipy's exact statistics."""
import numpy as np
import pytest
import torch
from scipy.stats import binom, binomtest, norm

from pipeline.smoothing import (ABSTAIN, ESTIMATE, SELECT, Smooth, binomial_pvalue, certify_from_counts,
                                clopper_pearson_lower, predict_from_counts)
from pipeline.tabular.mlp import mlp

NOISES = ["fresh", "shared", "keyed"]
SECRET = b"test secret"


def linear_classifier(w, b):
    """f(x) = 1 if w.x + b > 0 else 0, as logits (0, w.x + b)."""
    layer = torch.nn.Linear(len(w), 2)
    with torch.no_grad():
        layer.weight.copy_(torch.stack([torch.zeros(len(w)), torch.tensor(w, dtype=torch.float32)]))
        layer.bias.copy_(torch.tensor([0.0, b]))
    return torch.nn.Sequential(layer)


def inputs_with_margins(w, b, margins):
    """Points whose signed distance to the hyperplane w.x + b = 0 is ``margins``."""
    w = np.asarray(w, dtype=np.float64)
    unit = w / np.linalg.norm(w)
    base = -b * w / (w @ w)
    rng = np.random.default_rng(1)
    along = rng.normal(size=(len(margins), len(w)))
    along -= (along @ unit)[:, None] * unit  # move only parallel to the hyperplane
    return torch.tensor(base + along + np.asarray(margins)[:, None] * unit, dtype=torch.float32)


def test_clopper_pearson_solves_its_defining_equation():
    n, alpha = 200, 0.01
    k = np.arange(1, n + 1)
    lower = clopper_pearson_lower(k, n, alpha)
    # P(X >= k | p = lower) = alpha defines the one-sided lower bound
    assert np.allclose(binom.sf(k - 1, n, lower), alpha, rtol=1e-6)
    assert clopper_pearson_lower(0, n, alpha) == 0.0
    assert np.isclose(clopper_pearson_lower(n, n, alpha), alpha ** (1 / n))


@pytest.mark.parametrize("p", [0.6, 0.9])
def test_clopper_pearson_misses_with_probability_close_to_alpha(p):
    """Valid (<= alpha) and tight: a two-sided bound (about alpha / 2 here) or the off-by-one
    Beta(k + 1, n - k) (about 0.11 at p = 0.9) fails one of the two checks."""
    n, alpha, trials = 1000, 0.1, 40000
    k = np.random.default_rng(0).binomial(n, p, trials)
    rate = (clopper_pearson_lower(k, n, alpha) > p).mean()
    assert 0.75 * alpha <= rate <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / trials)


def test_binomial_pvalue_equals_scipy_binomtest():
    for top in range(0, 60, 3):
        for second in range(0, 60, 7):
            if top + second:
                assert np.isclose(binomial_pvalue(top, second), binomtest(top, top + second, 0.5).pvalue)


def test_certify_from_counts_by_hand():
    counts0 = np.array([[10, 90], [60, 40], [50, 50]])
    counts = np.array([[5, 995], [530, 470], [500, 500]])
    cert = certify_from_counts(counts0, counts, 0.001, sigma=2.0)
    assert cert.prediction.tolist() == [1, ABSTAIN, ABSTAIN]  # 530/1000: pA_lower about 0.48
    pa = clopper_pearson_lower(995, 1000, 0.001)
    assert np.isclose(cert.radius[0], 2.0 * norm.ppf(pa))
    assert cert.radius[1] == cert.radius[2] == 0.0


def test_predict_from_counts_abstains_on_close_votes():
    counts = np.array([[0, 100], [45, 55], [70, 30]])
    assert predict_from_counts(counts, 0.01).tolist() == [1, ABSTAIN, 0]


@pytest.mark.parametrize("noise", NOISES)
def test_certify_never_overstates_the_true_radius_beyond_alpha(noise):
    w, b, sigma, alpha = [1.0, -2.0, 0.5, 3.0], 0.3, 1.0, 0.05
    rng = np.random.default_rng(0)
    margins = rng.uniform(-2.0, 2.0, size=3000) * sigma
    x = inputs_with_margins(w, b, margins)
    smooth = Smooth(linear_classifier(w, b), 2, sigma, noise=noise, secret=SECRET, seed=3, chunk=128)
    cert = smooth.certify(x, n0=50, n=200, alpha=alpha)
    true_class = (margins > 0).astype(int)
    true_radius = np.abs(margins)  # distance to the boundary of g, which is the hyperplane itself
    made = cert.prediction != ABSTAIN
    wrong = made & ((cert.prediction != true_class) | (cert.radius > true_radius))
    rate, se = wrong.mean(), np.sqrt(alpha * (1 - alpha) / len(x))
    assert rate <= alpha + 3 * se
    # the certificate is not vacuous: far from the boundary, radii approach the truth
    far = made & (np.abs(margins) > 1.5 * sigma)
    assert far.sum() > 300 and np.median(cert.radius[far] / true_radius[far]) > 0.7


@pytest.mark.parametrize("noise", NOISES)
def test_predict_returns_the_smoothed_class_or_abstains(noise):
    w, b, sigma, alpha = [2.0, 1.0], -0.5, 0.5, 0.05
    margins = np.linspace(-0.3, 0.3, 2000) * sigma  # pA in about [0.5, 0.62]: a hard regime
    x = inputs_with_margins(w, b, margins)
    pred = Smooth(linear_classifier(w, b), 2, sigma, noise=noise, secret=SECRET, seed=4).predict(x, n=300, alpha=alpha)
    wrong = (pred != ABSTAIN) & (pred != (margins > 0).astype(int))
    assert wrong.mean() <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / len(x))
    assert (pred != ABSTAIN).mean() > 0.2  # it does answer when the vote is clear enough


@pytest.mark.parametrize("w", [[1.0, 1.0], [1.0, -2.0, 0.5, 3.0, 0.0]])  # noise in input space / in W's space
@pytest.mark.parametrize("noise", NOISES)
def test_vote_fraction_matches_closed_form_pa(w, noise):
    b, sigma = 0.2, 1.5
    margins = np.array([0.0, 0.5, 1.0, -1.0, 2.5])
    x = inputs_with_margins(w, b, margins)
    counts = Smooth(linear_classifier(w, b), 2, sigma, noise=noise, secret=SECRET, seed=5).counts(x, 20000, ESTIMATE)
    assert np.allclose(counts[:, 1] / 20000, norm.cdf(margins / sigma), atol=0.015)
    assert Smooth(linear_classifier(w, b), 2, sigma, seed=5).vote(x[1:], 501).tolist() == [1, 1, 0, 1]


def test_noise_drawn_in_the_first_layer_space_has_the_input_noise_law():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    smooth = Smooth(model, 2, 0.8)
    assert smooth.factor.shape == (3, 3)  # 3 normals per draw instead of 12
    w = model[0].weight.detach().double()
    f = smooth.factor.double()
    assert torch.allclose(f @ f.T, w @ w.T, atol=1e-5)  # Cov(F z) = Cov(W eps) = W W^T
    x = torch.randn(4, 12)

    class Opaque(torch.nn.Module):  # hides the Sequential: noise is added to x itself
        def forward(self, z):
            return model(z)

    fast = Smooth(model, 2, 0.8, seed=1).counts(x, 40000, ESTIMATE)[:, 1] / 40000
    plain = Smooth(Opaque(), 2, 0.8, seed=2).counts(x, 40000, ESTIMATE)[:, 1] / 40000
    assert np.all(np.abs(fast - plain) < 4 * np.sqrt(0.25 * 2 / 40000))


@pytest.mark.parametrize("noise", NOISES)
def test_counts_do_not_depend_on_chunk_size_or_threads(noise):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(9, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = torch.randn(45, 9)
    ref = Smooth(model, 3, 0.7, noise=noise, secret=SECRET, seed=11, chunk=45 * 150).counts(x, 150, SELECT, key=0)
    threads = torch.get_num_threads()
    try:
        for rows, nthreads in [(1, threads), (7, threads), (16, 1), (64, 1)]:
            torch.set_num_threads(nthreads)
            got = Smooth(model, 3, 0.7, noise=noise, secret=SECRET, seed=11, chunk=rows * 150).counts(x, 150, SELECT, key=0)
            assert np.array_equal(got, ref), (rows, nthreads)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("noise", NOISES)
def test_certify_gets_the_certificates_of_its_two_passes_made_as_separate_calls(noise):
    """CERTIFY runs its selection and estimation passes in one sweep over the rows; each pass
    gets the counts of its own call, and without a key they take two consecutive call numbers."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(7, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    x = torch.randn(60, 7)
    engine = lambda: Smooth(model, 2, 0.6, noise=noise, secret=SECRET, seed=8, chunk=5 * 400)  # noqa: E731
    for key in (None, 4):
        separate = engine()
        expected = certify_from_counts(separate.counts(x, 40, SELECT, key=key),
                                       separate.counts(x, 400, ESTIMATE, key=key), 0.01, 0.6)
        together = engine()
        got = together.certify(x, 40, 400, 0.01, key=key)
        assert len(set(expected.radius.round(6))) > 10  # the radii vary: a different draw would show
        for field in ("prediction", "pa_lower", "radius"):
            assert np.array_equal(getattr(got, field), getattr(expected, field)), (key, field)
        assert together.calls == separate.calls


@pytest.mark.parametrize("noise", NOISES)
def test_a_slice_with_its_offset_gets_the_counts_it_gets_inside_the_whole(noise):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(40, 5)
    smooth = Smooth(model, 2, 0.9, noise=noise, secret=SECRET, seed=4)
    whole = smooth.counts(x, 200, ESTIMATE, key=3)
    parts = [smooth.counts(x[a:b], 200, ESTIMATE, key=3, offset=a) for a, b in [(0, 13), (13, 29), (29, 40)]]
    assert np.array_equal(np.concatenate(parts), whole)
    if noise == "fresh":  # without the offset a slice would reuse the first rows' draws
        assert not np.array_equal(smooth.counts(x[13:29], 200, ESTIMATE, key=3), whole[13:29])


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize("d,h", [(12, 5), (4, 9)])  # h < d: noise drawn in the first layer's space
def test_engine_equals_a_plain_loop_fed_its_own_noise(noise, d, h):
    torch.manual_seed(2)  # a model that predicts both classes on these inputs
    model = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, 2))
    x = 1.3 * torch.randn(25, d)
    smooth = Smooth(model, 2, 0.8, noise=noise, secret=SECRET, seed=6, chunk=7 * 300)
    fast = smooth.counts(x, 300, ESTIMATE, key=5)
    with torch.no_grad():
        ones = [int(model(x[i] + smooth.input_noise(x[i], 300, ESTIMATE, key=5, position=i)).argmax(1).sum())
                for i in range(len(x))]
    assert 0 < sum(ones) < 25 * 300  # both classes occur: the comparison has teeth
    assert np.abs(fast[:, 1] - np.array(ones)).max() <= 1  # equal up to float rounding at the boundary
    assert np.mean(fast[:, 1] == np.array(ones)) >= 0.9


def test_first_layer_shortcut_equals_adding_noise_to_the_input():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    class Opaque(torch.nn.Module):  # hides the Sequential, so noise is added to x itself
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, z):
            return self.inner(z)

    x = torch.randn(30, 6)
    for noise in ("fresh", "shared"):  # h = 8 >= d = 6: the same input-space draws, projected
        fast = Smooth(model, 2, 0.5, noise=noise, secret=SECRET, seed=2).counts(x, 400, ESTIMATE, key=0)
        plain = Smooth(Opaque(), 2, 0.5, noise=noise, secret=SECRET, seed=2).counts(x, 400, ESTIMATE, key=0)
        assert np.abs(fast - plain).max() <= 1  # equal up to float rounding at the boundary
    assert not model[1].inplace  # the engine's in-place activations are its own copies


def test_noise_modes_differ_and_calls_get_fresh_noise():
    model = linear_classifier([1.0, 0.0], 0.0)
    x = torch.zeros(50, 2)  # pA = 1/2 exactly: counts are pure noise
    smooth = Smooth(model, 2, 1.0, noise="fresh", seed=0)
    first, second = smooth.counts(x, 100, ESTIMATE), smooth.counts(x, 100, ESTIMATE)
    assert not np.array_equal(first, second)
    assert len(set(first[:, 1])) > 5  # fresh: inputs get different draws
    shared = Smooth(model, 2, 1.0, noise="shared", seed=0).counts(x, 100, ESTIMATE)
    assert len(set(shared[:, 1])) == 1  # shared: identical inputs see the identical bank


def test_keyed_noise_answers_a_repeated_query_identically_and_distinct_inputs_independently():
    model = linear_classifier([1.0, 0.0], 0.0)
    x = torch.zeros(40, 2)
    x[:, 1] = torch.arange(40) * 1e-3  # distinct inputs (the classifier ignores the second feature)
    smooth = Smooth(model, 2, 1.0, noise="keyed", secret=SECRET)
    first = smooth.counts(x, 200, ESTIMATE)
    again = smooth.counts(x.flip(0), 200, ESTIMATE)[::-1]
    assert np.array_equal(first, again)  # a later call, other positions: the same answers
    assert len(set(first[:, 1])) > 10  # pA = 1/2 for every input: distinct inputs, distinct draws
    other = Smooth(model, 2, 1.0, noise="keyed", secret=b"another secret").counts(x, 200, ESTIMATE)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, smooth.counts(x, 200, SELECT))  # streams stay independent
    with pytest.raises(ValueError, match="secret"):
        Smooth(model, 2, 1.0, noise="keyed")


def test_bad_sigma_is_refused():
    with pytest.raises(ValueError, match="sigma"):
        Smooth(linear_classifier([1.0], 0.0), 2, 0.0)


@pytest.mark.parametrize("d,h", [(6, 16), (12, 8)])
def test_line_counts_solve_the_line_exactly_as_the_generic_path_counts_it(d, h):
    torch.manual_seed(4)
    model = mlp(d, h).eval()
    with torch.no_grad():
        model[0].weight[0, 2] = 0.0  # a unit the line does not move: on or off for the whole line
    x, values = torch.randn(d), np.linspace(-3, 3, 301)
    rows = x.repeat(len(values), 1)
    rows[:, 2] = torch.tensor(values, dtype=torch.float32)
    passes = [(400, ESTIMATE, 5), (50, SELECT, 9)]
    smooth = Smooth(model, 2, 1.5, noise="shared", seed=2)
    generic, line = smooth.counts_passes(rows, passes), smooth.line_counts(x, 2, values[::-1].copy(), passes)
    for g, l in zip(generic, line):
        l = l[::-1]  # the line's values were given in the other order
        assert g.sum() == l.sum() and 0 < g[:, 1].sum() < g.sum()
        assert np.abs(g - l).sum() <= 2e-5 * g.sum()  # float rounding only: a margin within ~1e-6 of 0


def test_line_counts_of_other_noise_modes_take_the_generic_path_unchanged():
    model = mlp(5, 8).eval()
    x, values = torch.randn(5), np.linspace(-1, 1, 7)
    rows = x.repeat(len(values), 1)
    rows[:, 0] = torch.tensor(values, dtype=torch.float32)
    smooth = Smooth(model, 2, 1.0, noise="fresh", seed=0)
    line = smooth.line_counts(x, 0, values, [(100, ESTIMATE, 3)])[0]
    assert np.array_equal(line, smooth.counts(rows, 100, ESTIMATE, key=3))


def test_a_conv_tail_with_pools_before_relus_gives_the_models_logits_bit_for_bit():
    from torch import nn

    from pipeline.vision.nets import target

    torch.manual_seed(0)
    model = target(1, 16, 10).eval()
    engine = Smooth(model, 10, 0.1)
    kinds = [type(m) for m in engine.tail]
    assert issubclass(kinds[1], nn.MaxPool2d) and kinds[0] is nn.Conv2d and kinds[2] is nn.ReLU  # swapped: ReLU then touches a quarter of the values
    x = torch.randn(500, 1, 16, 16).contiguous(memory_format=torch.channels_last)
    plain = nn.Sequential(*model).to(memory_format=torch.channels_last)  # the same layout, the model's order
    with torch.inference_mode():
        assert torch.equal(engine.tail(x), plain(x))

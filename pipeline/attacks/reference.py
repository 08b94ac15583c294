"""Membership attacks that calibrate every record on reference models.

Reference models are trained with the target's recipe on random halves of the population, so
every record is in some of them ("in") and out of the others; ``inclusion`` draws that design.
An attack compares the target's signal on a record with the record's own in/out distribution
over the reference models. Scores are higher = member.

* LiRA (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022,
  Section IV): the signal is the logit-scaled confidence on the true class,
  phi = log(p_y / (1 - p_y)), which is close to Gaussian over training runs. Online:
  log N(phi; mu_in, s_in^2) - log N(phi; mu_out, s_out^2), with per-record means over the
  reference models that hold / do not hold the record; offline: the one-sided test against the
  out distribution alone, -log P(Z > phi), Z ~ N(mu_out, s_out^2). With few reference models
  the variances are global (one over all records), as the paper recommends (Section VI.B).
* RMIA (Zarifzadeh et al., "Low-Cost High-Power Membership Inference Attacks", ICML 2024,
  Section 3): the pairwise likelihood ratio LR(x, z) = [p(x|theta) / p(x)] / [p(z|theta) / p(z)]
  of the record against population samples z the target never saw, with p(.) the average of
  the reference models' probabilities of the true class; score(x) = the fraction of z with
  LR(x, z) >= gamma. The z are out of every reference model, so their p(z) is the paper's
  offline estimate (1 + a) / 2 * p_out(z) + (1 - a) / 2; the records' p(x) averages the in and
  out models (the paper's online estimate), or uses the same offline estimate.

The label-only variant (for releases of a label only, such as Robust Privacy's vote) applies
LiRA to a label-only signal, the logit of the smoothed noise-robustness score
(``logit_rate``), fitted per record on reference models released the same way.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

_TINY = 1e-300


def inclusion(models: int, records: int, seed: int) -> np.ndarray:
    """(models, records) bool: which reference model trains on which record. Every record is in
    exactly ``models // 2`` models (Carlini et al.'s design: a random order per record)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(models, records)).argsort(0) < models // 2


def logit_confidence(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """phi = log p_y - log(sum_{j != y} p_j), computed from float64 probabilities."""
    p = np.asarray(probs, np.float64)
    rows = np.arange(len(p))
    py = p[rows, labels]
    rest = p.sum(1) - py
    return np.log(np.maximum(py, _TINY)) - np.log(np.maximum(rest, _TINY))


def logit_rate(rate: np.ndarray, queries: int) -> np.ndarray:
    """The logit of a share of ``queries`` label queries, smoothed by half a count each side."""
    k = np.asarray(rate, np.float64) * queries
    return np.log(k + 0.5) - np.log(queries - k + 0.5)


def _fits(ref: np.ndarray, ref_in: np.ndarray, variance: str) -> tuple:
    """Per-record in/out means over the reference models and the in/out standard deviations
    (global or per record). A record with no in (or out) model gets the mean over records."""
    ref, ref_in = np.asarray(ref, np.float64), np.asarray(ref_in, bool)
    n_in, n_out = ref_in.sum(0), (~ref_in).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu_in = np.where(ref_in, ref, 0).sum(0) / n_in
        mu_out = np.where(~ref_in, ref, 0).sum(0) / n_out
    mu_in = np.where(n_in > 0, mu_in, np.nanmean(mu_in) if (n_in > 0).any() else 0.0)
    mu_out = np.where(n_out > 0, mu_out, np.nanmean(mu_out) if (n_out > 0).any() else 0.0)
    dev = ref - np.where(ref_in, mu_in, mu_out)
    if variance == "global":
        s_in = np.full(ref.shape[1], np.sqrt((dev[ref_in] ** 2).mean()) if ref_in.any() else 1.0)
        s_out = np.full(ref.shape[1], np.sqrt((dev[~ref_in] ** 2).mean()) if (~ref_in).any() else 1.0)
    elif variance == "per_record":
        with np.errstate(invalid="ignore", divide="ignore"):
            s_in = np.sqrt(np.where(ref_in, dev ** 2, 0).sum(0) / np.maximum(n_in - 1, 1))
            s_out = np.sqrt(np.where(~ref_in, dev ** 2, 0).sum(0) / np.maximum(n_out - 1, 1))
    else:
        raise ValueError(f"variance must be 'global' or 'per_record', got {variance!r}")
    floor = 1e-6
    return mu_in, np.maximum(s_in, floor), mu_out, np.maximum(s_out, floor)


def lira(target: np.ndarray, ref: np.ndarray, ref_in: np.ndarray, variance: str = "global") -> dict[str, np.ndarray]:
    """Online and offline LiRA scores of the records from the target's signal ``target`` (n,)
    and the reference models' ``ref`` (models, n), ``ref_in[m, i]`` = record i trains model m."""
    mu_in, s_in, mu_out, s_out = _fits(ref, ref_in, variance)
    t = np.asarray(target, np.float64)
    return {"lira_online": norm.logpdf(t, mu_in, s_in) - norm.logpdf(t, mu_out, s_out),
            "lira_offline": -norm.logsf(t, mu_out, s_out)}


def rmia(target_x: np.ndarray, ref_x: np.ndarray, target_z: np.ndarray, ref_z: np.ndarray, a: float = 0.3,
         gamma: float = 1.0, online: bool = True, ref_in: np.ndarray | None = None) -> np.ndarray:
    """RMIA scores of the records. ``target_x`` (n,) and ``ref_x`` (models, n): probabilities of
    the true class of the records under the target and the reference models; ``target_z`` (k,)
    and ``ref_z`` (models, k) the same for the population samples z (out of every reference
    model). ``online``: p(x) is the mean over every reference model; else the offline estimate
    from the models ``ref_in`` marks out."""
    def offline(p_out):
        return (1 + a) / 2 * p_out + (1 - a) / 2
    ref_x = np.asarray(ref_x, np.float64)
    if online:
        px = ref_x.mean(0)
    else:
        out = ~np.asarray(ref_in, bool)
        px = offline(np.where(out, ref_x, 0).sum(0) / np.maximum(out.sum(0), 1))
    pz = offline(np.asarray(ref_z, np.float64).mean(0))
    ratio_x = np.asarray(target_x, np.float64) / np.maximum(px, _TINY)
    ratio_z = np.sort(np.asarray(target_z, np.float64) / np.maximum(pz, _TINY))
    # LR(x, z) >= gamma  <=>  ratio_z <= ratio_x / gamma
    return np.searchsorted(ratio_z, ratio_x / gamma, side="right") / len(ratio_z)

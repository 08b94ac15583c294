"""Metrics of a membership inference attack from its scores (higher = member): balanced accuracy
(TPR + TNR) / 2 at a threshold, ROC AUC (ties count 1/2), TPR at a fixed FPR, the ROC curve (and
the three together for a figure, ``roc_summary``),
and Song and Mittal's threshold choice (the one maximising balanced accuracy)."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(member: np.ndarray, nonmember: np.ndarray) -> float:
    """P(score of a random member > score of a random non-member) + P(tie) / 2 (Mann-Whitney U)."""
    member, nonmember = np.asarray(member, np.float64), np.asarray(nonmember, np.float64)
    ranks = rankdata(np.concatenate([member, nonmember]))  # average ranks on ties
    n1, n0 = len(member), len(nonmember)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(member: np.ndarray, nonmember: np.ndarray, fpr: float = 0.01) -> float:
    """Largest TPR of a rule "member iff score >= t" whose FPR on these non-members is <= fpr.
    With m = floor(fpr * n0) false positives allowed, the threshold must exceed the (m+1)-th
    largest non-member score v, so the TPR is the fraction of members scoring above v."""
    nonmember = np.sort(np.asarray(nonmember, np.float64))[::-1]
    m = int(np.floor(fpr * len(nonmember) + 1e-9))
    if m >= len(nonmember):
        return 1.0
    return float((np.asarray(member) > nonmember[m]).mean())


def roc_curve(member: np.ndarray, nonmember: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of the rules "member iff score >= t" over every distinct score t, from (0, 0)
    to (1, 1); tied scores move both rates at once, so the trapezoidal area equals ``roc_auc``."""
    member, nonmember = np.asarray(member, np.float64), np.asarray(nonmember, np.float64)
    t = np.unique(np.concatenate([member, nonmember]))[::-1]
    tpr = len(member) - np.searchsorted(np.sort(member), t, side="left")
    fpr = len(nonmember) - np.searchsorted(np.sort(nonmember), t, side="left")
    return np.r_[0.0, fpr / len(nonmember)], np.r_[0.0, tpr / len(member)]


def roc_summary(member: np.ndarray, nonmember: np.ndarray, fpr: float = 0.01) -> dict:
    """What a ROC figure shows of one attack: ``roc_curve``, ``roc_auc`` and ``tpr_at_fpr``."""
    x, y = roc_curve(member, nonmember)
    return {"fpr": x, "tpr": y, "auc": roc_auc(member, nonmember), "tpr_at_fpr": tpr_at_fpr(member, nonmember, fpr),
            "at_fpr": fpr}


def balanced_accuracy(member: np.ndarray, nonmember: np.ndarray, threshold: float) -> float:
    return float(0.5 * ((np.asarray(member) >= threshold).mean() + (np.asarray(nonmember) < threshold).mean()))


FPRS = {"tpr_at_0_1pct_fpr": 0.001, "tpr_at_1pct_fpr": 0.01}


def _metrics(member, nonmember, guess_member, guess_nonmember) -> dict:
    out = {"auc": roc_auc(member, nonmember), "accuracy": 0.5 * (guess_member.mean() + 1 - guess_nonmember.mean())}
    out.update({key: tpr_at_fpr(member, nonmember, fpr) for key, fpr in FPRS.items()})
    return out


def _auc_many(member: np.ndarray, nonmember: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``roc_auc(member[rows[r]], nonmember[cols[r]])`` for every resample r at once, bit for bit:
    U = sum over members of (non-members below + ties / 2), a sum of halves, exact in float64 as
    the rank sum is."""
    codes = np.unique(np.concatenate([member, nonmember]), return_inverse=True)[1]
    code_m, code_n, values = codes[:len(member)], codes[len(member):], int(codes.max()) + 1
    reps = len(rows)
    counts = np.bincount((code_n[cols] + values * np.arange(reps)[:, None]).ravel(),
                         minlength=values * reps).reshape(reps, values).astype(np.float64)
    below = np.cumsum(counts, axis=1) - counts
    u = np.take_along_axis(below + counts / 2, code_m[rows], axis=1).sum(axis=1)
    return u / (rows.shape[1] * cols.shape[1])


def _metrics_many(member, nonmember, guess_member, guess_nonmember, rows, cols) -> dict[str, np.ndarray]:
    """``_metrics`` of every resample (``rows``, ``cols``: (reps, size) index arrays), vectorised."""
    out = {"auc": _auc_many(member, nonmember, rows, cols),
           "accuracy": 0.5 * (guess_member[rows].mean(axis=1) + 1 - guess_nonmember[cols].mean(axis=1))}
    ranked = np.sort(nonmember[cols], axis=1)[:, ::-1]
    for key, fpr in FPRS.items():
        m = int(np.floor(fpr * cols.shape[1] + 1e-9))
        out[key] = np.ones(len(rows)) if m >= cols.shape[1] else (member[rows] > ranked[:, m:m + 1]).mean(axis=1)
    return out


def resamples(members: int, nonmembers: int, seed: int, reps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``reps`` stratified bootstrap resamples (member indices, non-member indices), each group
    drawn with replacement at its own size, from ``seed``. Passing the same resamples to every
    attack on the same records pairs their intervals (``attack_metrics``, ``paired_change``)."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, members, members), rng.integers(0, nonmembers, nonmembers)) for _ in range(reps)]


def attack_metrics(scores, boot: list[tuple[np.ndarray, np.ndarray]] = (), level: float = 0.95) -> dict:
    """AUC, TPR at 0.1% and 1% FPR and the balanced accuracy of the attack's guesses of
    ``AttackScores``, each with its percentile bootstrap interval over the records (``boot``:
    ``resamples``; Efron and Tibshirani, 1993, ch. 13)."""
    m, n = np.asarray(scores.member, np.float64), np.asarray(scores.nonmember, np.float64)
    gm, gn = np.asarray(scores.guess_member, bool), np.asarray(scores.guess_nonmember, bool)
    point = _metrics(m, n, gm, gn)
    if boot:
        values = _metrics_many(m, n, gm, gn, np.array([i for i, _ in boot]), np.array([j for _, j in boot]))
    out = {}
    for key, value in point.items():
        out[key] = value
        if boot:
            out[f"{key}_low"], out[f"{key}_high"] = (float(q) for q in
                                                     np.quantile(values[key], [(1 - level) / 2, (1 + level) / 2]))
    return out


def paired_change(a, b, boot: list[tuple[np.ndarray, np.ndarray]], level: float = 0.95) -> dict:
    """AUC of ``b`` minus AUC of ``a`` (two attacks' ``AttackScores`` on the same records), with
    the paired bootstrap interval: both are recomputed on each of the same resamples."""
    rows, cols = np.array([i for i, _ in boot]), np.array([j for _, j in boot])
    diff = (_auc_many(np.asarray(b.member, np.float64), np.asarray(b.nonmember, np.float64), rows, cols)
            - _auc_many(np.asarray(a.member, np.float64), np.asarray(a.nonmember, np.float64), rows, cols))
    lo, hi = np.quantile(diff, [(1 - level) / 2, (1 + level) / 2])
    return {"auc_change": roc_auc(b.member, b.nonmember) - roc_auc(a.member, a.nonmember),
            "auc_change_low": float(lo), "auc_change_high": float(hi)}


def best_threshold(member: np.ndarray, nonmember: np.ndarray) -> float:
    """The t maximising the balanced accuracy of "member iff score >= t" (Song and Mittal's
    threshold choice), over every observed score and +inf; the smallest such t on ties."""
    member, nonmember = np.sort(np.asarray(member, np.float64)), np.sort(np.asarray(nonmember, np.float64))
    candidates = np.append(np.unique(np.concatenate([member, nonmember])), np.inf)
    tpr = 1.0 - np.searchsorted(member, candidates, side="left") / len(member)
    tnr = np.searchsorted(nonmember, candidates, side="left") / len(nonmember)
    return float(candidates[np.argmax(tpr + tnr)])

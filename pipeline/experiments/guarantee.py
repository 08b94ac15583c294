"""The distinguishing game of (R, alpha)-Robust Privacy, played on the interface a service exposes
(the Robust Privacy paper's guarantee: a prediction certified on the l2 ball of radius R with
confidence 1 - alpha leaves "any adversary observing the released prediction at most alpha/2
advantage in distinguishing x from any input within distance R of x"; the adversary's side is
``pipeline.attacks.distinguish``).

Every x is certified (Cohen et al.'s CERTIFY); each certified x is paired with partners x'
(``partners``: on its sphere, inside its ball, along the sensitive attribute toward the decision
threshold), and for every release protocol the answer laws at x and x' are sampled from
``releases`` independent releases: fresh noise (each release its own i.i.d. draws) and keyed
noise (each release under its own secret). The protocols: ``certify`` (CERTIFY's label or
abstain), ``predict`` (PREDICT; in one release it reads the n estimation draws CERTIFY reads,
so the two protocols' answers are correlated, each with its own algorithm's law), ``vote`` (the
majority of ``vote_n`` draws, never abstaining), and always ``exact``: the smoothed classifier g
itself, the argmax of ``exact_n`` draws (one shared noise bank for all inputs: common random
numbers), whose advantage 1[g(x) != g(x')] is <= alpha in share if the certificates are right.
"""
from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import torch

from ..attacks.distinguish import disagreement, partners, repeated_tv, tv_interval
from ..core.errors import PipelineError
from ..core.metrics import token
from ..core.seeds import derive_seed
from ..smoothing import ABSTAIN, ESTIMATE, SELECT, VOTE, Smooth, certify_from_counts, predict_from_counts
from ..smoothing.stats import bootstrap_interval, clopper_pearson_interval
from ..tabular.preprocess import to_standard

GAME = 18  # the game's random streams: derive_seed(seed, GAME, role, ...)
RECORDS, CERTIFY, FRESH, EXACT, PARTNER = range(5)
KINDS = ("sphere", "inside", "axis")
PROTOCOLS = ("certify", "predict", "vote")


def pick_records(total: int, count: int, seed: int, near: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of ``count`` of ``total`` records (seeded): half from the ``near`` mask (e.g.
    close to the decision threshold) and the rest from the other records, or all uniformly."""
    rng = np.random.default_rng(derive_seed(seed, GAME, RECORDS))
    if near is None:
        return np.sort(rng.choice(total, size=min(count, total), replace=False))
    close, other = np.flatnonzero(near), np.flatnonzero(~near)
    first = rng.choice(close, size=min(count // 2, len(close)), replace=False)
    rest = rng.choice(other, size=min(count - len(first), len(other)), replace=False)
    return np.sort(np.concatenate([first, rest]))


def tabular_records(data: dict, meta: dict, cfg: dict, seed: int) -> tuple[np.ndarray, tuple[int, float]]:
    """The tabular task's test records (half within ``cfg['near']`` BMI units of the threshold
    B) and the sensitive axis: (index, B in standardised units) for the ``axis`` partners."""
    raw, B = data["test_raw"], meta["threshold"]
    idx = pick_records(len(raw), cfg["records"], seed, np.abs(raw - B) <= cfg["near"])
    return idx, (meta["sensitive_index"], float(to_standard(B, meta)))


def _secrets(secret: bytes, count: int) -> list[bytes]:
    """``count`` independent release secrets derived from the service ``secret``."""
    return [hmac.new(secret, b"distinguishing game release " + r.to_bytes(8, "little"), hashlib.sha256).digest()
            for r in range(count)]


def _passes(protocols, cfg: dict) -> list[tuple[int, int, int]]:
    """The engine passes (n, stream, key) the protocols read."""
    wanted = [(cfg["n0"], SELECT)] if "certify" in protocols else []
    wanted += [(cfg["n"], ESTIMATE)] if {"certify", "predict"} & set(protocols) else []
    wanted += [(cfg["vote_n"], VOTE)] if "vote" in protocols else []
    return [(n, stream, 0) for n, stream in wanted]


def _answers(counts: list[np.ndarray], passes, protocols, cfg: dict, sigma: float) -> dict:
    """Each protocol's answers (label or ABSTAIN) from one release's pass counts."""
    by = {stream: c for (_, stream, _), c in zip(passes, counts)}
    found = {"certify": lambda: certify_from_counts(by[SELECT], by[ESTIMATE], cfg["alpha"], sigma).prediction,
             "predict": lambda: predict_from_counts(by[ESTIMATE], cfg["alpha"]),
             "vote": lambda: by[VOTE].argmax(1)}
    return {p: found[p]() for p in protocols}


def _releases(engine, inputs: np.ndarray, secrets: list[bytes], protocols, cfg: dict, sigma: float) -> dict:
    """{(protocol, noise): answers (inputs, releases)}, one release per secret: fresh noise by
    repeating every input that many times (each row position its own draws), keyed noise one
    call per secret."""
    passes, releases = _passes(protocols, cfg), len(secrets)
    rows = torch.from_numpy(np.repeat(inputs, releases, axis=0))
    fresh = _answers(engine("fresh", FRESH).counts_passes(rows, passes), passes, protocols, cfg, sigma)
    out = {(p, "fresh"): a.reshape(len(inputs), releases) for p, a in fresh.items()}
    served, keyed = engine("keyed", FRESH, secrets[0]), []
    for secret in secrets:
        served.secret = secret  # the engine reads its secret per draw: one engine, one secret per release
        keyed.append(_answers(served.counts_passes(torch.from_numpy(inputs), passes), passes, protocols, cfg, sigma))
    out.update({(p, "keyed"): np.stack([k[p] for k in keyed], 1) for p in protocols})
    return out


def _outcome_counts(answers: np.ndarray, classes: int) -> np.ndarray:
    """Per input, counts of its answers over (class 0, ..., class K-1, abstain)."""
    outcome = np.where(answers == ABSTAIN, classes, answers)
    return np.stack([np.bincount(row, minlength=classes + 1) for row in outcome])


def _median(values: np.ndarray, seed: int, reps: int, name: str) -> dict:
    """The median of ``values`` (one per pair) with its bootstrap interval over pairs."""
    lo, hi = bootstrap_interval(lambda i: np.median(values[i]), len(values), seed, reps)
    return {name: float(np.median(values)), f"{name}_low": lo, f"{name}_high": hi}


def _share(hits: np.ndarray, name: str) -> dict:
    """The share of pairs in ``hits`` with its Clopper-Pearson interval; nothing for no pairs."""
    if not len(hits):
        return {}
    lo, hi = clopper_pearson_interval(int(hits.sum()), len(hits))
    return {name: float(hits.mean()), f"{name}_low": float(lo), f"{name}_high": float(hi)}


def _summary(rows: pd.DataFrame, alpha: float, margin: float, seed: int, reps: int) -> dict:
    """One (kind, protocol, noise, queries): the median advantage; the shares of pairs whose
    estimate and whose lower bound exceed alpha/2, the latter also among the pairs whose
    partner's p_A is within ``margin`` of 1/2 (``near``) and among the others (``far``), where
    there are any; the largest estimate with that pair's interval."""
    adv, low = rows["advantage"].to_numpy(), rows["advantage_low"].to_numpy()
    near, top = np.abs(rows["pa_partner"].to_numpy() - 0.5) <= margin, int(np.argmax(adv))
    large = low > alpha / 2
    return {"pairs": len(adv), "pairs_near_half": int(near.sum()), **_median(adv, seed, reps, "advantage_median"),
            **_share(adv > alpha / 2, "above_half_alpha"), **_share(large, "lower_above_half_alpha"),
            **_share(large[near], "lower_above_half_alpha_near"), **_share(large[~near], "lower_above_half_alpha_far"),
            "advantage_max": float(adv[top]), "advantage_max_low": float(low[top]),
            "advantage_max_high": float(rows["advantage_high"].iloc[top])}


def _exact_summary(rows: pd.DataFrame, margin: float, seed: int, reps: int) -> dict:
    """How often g itself differs between x and x' (<= alpha if the certificates are right), and
    where the partners' p_A sits."""
    pa = rows["pa_partner"].to_numpy()
    return {**_share(rows["advantage"].to_numpy() > 0, "differ"), **_median(pa, seed, reps, "pa_partner_median"),
            **_share(np.abs(pa - 0.5) <= margin, "near_half")}


def _partner_blocks(xs: np.ndarray, radius: np.ndarray, kinds, axis, seed: int) -> list[np.ndarray]:
    """The partners of the certified records, one block per kind (``axis``: toward the threshold)."""
    blocks = []
    for kind in kinds:
        rng = np.random.default_rng(derive_seed(seed, GAME, PARTNER, KINDS.index(kind)))
        toward = None if kind != "axis" else np.where(xs.reshape(len(xs), -1)[:, axis[0]] <= axis[1], 1.0, -1.0)
        blocks.append(partners(xs, radius, kind, rng, None if toward is None else axis[0], toward))
    return blocks


def _pair_rows(pair: dict, x_side: slice, partner: slice, answers: dict, classes: int, repeats) -> list[pd.DataFrame]:
    """One kind's rows: per protocol and noise the advantage estimate and interval of every pair
    (fresh: ``tv_interval``, and ``repeated_tv`` for the vote's K; keyed: ``disagreement``)."""
    rows = []
    for (protocol, noise), a in answers.items():
        ax, ap = a[x_side], a[partner]
        common = {**pair, "protocol": protocol, "noise": noise, "abstain_x": (ax == ABSTAIN).mean(1),
                  "abstain_partner": (ap == ABSTAIN).mean(1)}
        if noise == "keyed":
            found = {1: [disagreement(u, v) for u, v in zip(ax, ap)]}
        else:
            cx, cp = _outcome_counts(ax, classes), _outcome_counts(ap, classes)
            found = {k: [tv_interval(u, v) if k == 1 else repeated_tv(u, v, k) for u, v in zip(cx, cp)]
                     for k in [1] + (list(repeats) if protocol == "vote" else [])}
        rows += [pd.DataFrame({**common, "queries": k, **dict(zip(("advantage", "advantage_low", "advantage_high"),
                                                                  np.array(f).T))}) for k, f in found.items()]
    return rows


def _metrics(table: pd.DataFrame, cfg: dict, seed: int) -> dict:
    """{kind: {exact: ..., protocol: {noise: ..., repeat: {k_<K>: {fresh: ...}}}}} of the pair rows."""
    out = {}
    for kind, per_kind in table.groupby("kind", sort=False):
        node = out.setdefault(kind, {})
        exact = per_kind["protocol"] == "exact"
        node["exact"] = _exact_summary(per_kind[exact], cfg["margin"], seed, cfg["bootstrap"])
        for (protocol, noise, k), group in per_kind[~exact].groupby(["protocol", "noise", "queries"], sort=False):
            where = node.setdefault(protocol, {})
            where = where.setdefault("repeat", {}).setdefault(token("k", k), {}) if k > 1 else where
            where[noise] = _summary(group, cfg["alpha"], cfg["margin"], seed, cfg["bootstrap"])
    return out


def distinguishing_game(model, classes: int, x, sigma: float, cfg: dict, seed: int, secret: bytes,
                        device: torch.device | str = "cpu",
                        axis: tuple[int, float] | None = None) -> tuple[dict, pd.DataFrame]:
    """Play the game on the records ``x`` (module docstring); return the metrics (``_metrics``,
    plus the records, the certified ones and their median radius) and one row per (record,
    kind, protocol, noise, queries). ``axis``: (coordinate, threshold) of the ``axis`` partners.
    ``cfg``: n0, n, alpha (CERTIFY), kinds, protocols (of ``PROTOCOLS``), releases, vote_n,
    exact_n, repeats (the vote's K >= 2 fresh releases; K = 1 is the single answer; the keyed
    advantage does not grow with K), margin (``near_half``: partner p_A within it of 1/2), chunk,
    bootstrap. The fresh-noise advantage estimates are plug-in TVs, biased upward
    (``tv_interval``); the intervals are what bound the truth."""
    unknown = sorted(set(cfg["kinds"]) - set(KINDS)) + sorted(set(cfg["protocols"]) - set(PROTOCOLS))
    if unknown or any(k < 2 for k in cfg["repeats"]) or ("axis" in cfg["kinds"] and axis is None):
        raise PipelineError(f"distinguishing game: kinds are of {KINDS} (axis needs axis=(coordinate, threshold)), "
                            f"protocols of {PROTOCOLS}, repeats >= 2; got {unknown or cfg['kinds']}, {cfg['repeats']}")

    def engine(noise: str, role: int, key: bytes | None = None) -> Smooth:
        return Smooth(model, classes, sigma, noise=noise, seed=derive_seed(seed, GAME, role), chunk=cfg["chunk"],
                      secret=key, device=device)

    x = np.asarray(x, dtype=np.float32)
    cert = engine("fresh", CERTIFY).certify(torch.from_numpy(x), cfg["n0"], cfg["n"], cfg["alpha"], key=0)
    keep = np.flatnonzero(cert.radius > 0)
    if not len(keep):
        raise PipelineError(f"distinguishing game: CERTIFY abstained on all {len(x)} records at sigma={sigma:g}; "
                            "fix: more records, or a smaller sigma")
    xs, radius, label, m = x[keep], cert.radius[keep], cert.prediction[keep], len(keep)
    inputs = np.concatenate([xs, *_partner_blocks(xs, radius, cfg["kinds"], axis, seed)])
    answers = _releases(engine, inputs, _secrets(secret, cfg["releases"]), cfg["protocols"], cfg, sigma)
    exact = engine("shared", EXACT).counts(torch.from_numpy(inputs), cfg["exact_n"], ESTIMATE, key=0)
    g, pa = exact.argmax(1), exact[np.arange(len(inputs)), np.tile(label, len(inputs) // m)] / cfg["exact_n"]

    rows = []
    for j, kind in enumerate(cfg["kinds"], start=1):
        here, there = slice(0, m), slice(j * m, (j + 1) * m)
        pair = {"record": keep, "kind": kind, "radius": radius, "pa_x": pa[here], "pa_partner": pa[there]}
        rows.append(pd.DataFrame({**pair, "protocol": "exact", "noise": "none", "queries": 1,
                                  "advantage": (g[here] != g[there]).astype(float)}))
        rows += _pair_rows(pair, here, there, answers, classes, cfg["repeats"])
    table = pd.concat(rows, ignore_index=True)
    return {"records": len(x), "certified": m, "alpha": cfg["alpha"], "half_alpha": cfg["alpha"] / 2,
            **_median(radius, seed, cfg["bootstrap"], "radius_median"), **_metrics(table, cfg, seed)}, table

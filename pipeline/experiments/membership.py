"""The membership experiment: every defense against the membership attacks on the image target.

Setting of Song and Mittal ("Systematic evaluation of privacy risks of machine learning models",
USENIX Security 2021): the attacker knows the training procedure and holds data from the
target's distribution. From the private images the target never saw (the ``shadow`` split) it
draws a shadow training set with the target's per-class counts and a shadow non-member set with
the test split's, trains a shadow model with the target's recipe (and one MID shadow per beta
with the MID recipe), and fits every attack of ``pipeline.attacks.membership`` on it. The
output-perturbation defender makes its own, disjoint draw and its own shadow model to fit the
risk evaluator and calibrate epsilon.

Defenses (``pipeline.defenses.release``: what the target releases for a query x, y):

* ``none``: the softmax of the target's logits.
* ``output_perturbation``: the same logits through ``OutputPerturbation``; every released label
  must equal the target's argmax (checked: a mismatch raises). The attacker does not know the
  mechanism: its attacks are the ones fitted for ``none``.
* ``mid.beta_<b>``: the MID target (Wang, Zhang and Jia, AAAI 2021), sampling at inference.
* ``rp.sigma_<s>.n_<n>``: RP's label-only release, the majority vote of n noisy copies. No
  confidence vector is released, so the confidence-based attacks (confidence, entropy,
  modified entropy, neural) do not apply by construction (``None``); correctness and the
  noise-robustness attack need only labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from ..attacks.membership import (ATTACKS, LABEL_ONLY_ATTACKS, METRIC_ATTACKS, AttackScores, MetricAttack,
                                  NeuralAttack, NoiseRobustnessAttack, Outputs)
from ..attacks.membership_metrics import attack_metrics
from ..core.errors import PipelineError
from ..core.metrics import token
from ..core.seeds import derive_seed as derive
from ..core.training import logits
from ..defenses.mid import train_mid
from ..defenses.perturbation import OutputPerturbation, RiskEvaluator
from ..defenses.release import Perturbed, Plain, Release, Smoothed
from ..vision.nets import train_classifier
NOT_APPLICABLE = "label-only release: not applicable by construction"
ATTACKER, DEFENDER = 0, 1  # parties drawing from the shadow split


def stratified_draws(y: np.ndarray, member_counts: np.ndarray, nonmember_counts: np.ndarray, parties: int,
                     seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Disjoint (members, non-members) index sets into ``y``, one pair per party, with
    ``member_counts[c]`` and ``nonmember_counts[c]`` records of class c each (seeded)."""
    rng = np.random.default_rng(seed)
    need = np.asarray(member_counts) + np.asarray(nonmember_counts)
    draws = [([], []) for _ in range(parties)]
    for c in range(len(need)):
        pool = rng.permutation(np.flatnonzero(y == c))
        if len(pool) < parties * need[c]:
            raise PipelineError(f"shadow split: class {c} has {len(pool)} images, the {parties} shadow draws need "
                                f"{parties * need[c]}; fix: lower images.train_fraction or images.test_fraction")
        for p, (ins, outs) in enumerate(draws):
            block = pool[p * need[c]:(p + 1) * need[c]]
            ins.append(block[:member_counts[c]])
            outs.append(block[member_counts[c]:])
    return [(np.sort(np.concatenate(i)), np.sort(np.concatenate(o))) for i, o in draws]


@dataclass
class Split:
    """Members (training set of the model) and non-members of one model."""
    x_in: np.ndarray
    y_in: np.ndarray
    x_out: np.ndarray
    y_out: np.ndarray

    @classmethod
    def draw(cls, x, y, idx: tuple[np.ndarray, np.ndarray]) -> "Split":
        return cls(x[idx[0]], y[idx[0]], x[idx[1]], y[idx[1]])


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


def outputs(release: Release, split: Split, classes: int) -> Outputs:
    """The release's probability vectors (one-hot released labels for a label-only release)."""
    if release.label_only:
        return Outputs(one_hot(release.labels(split.x_in), classes), split.y_in,
                       one_hot(release.labels(split.x_out), classes), split.y_out)
    return Outputs(release.probs(split.x_in, split.y_in), split.y_in,
                   release.probs(split.x_out, split.y_out), split.y_out)


@dataclass
class Attacker:
    """Attacks fitted on one shadow release; ``label_only`` is the noise-robustness attack."""
    output: dict  # name -> fitted MetricAttack / NeuralAttack
    label_only: NoiseRobustnessAttack

    @classmethod
    def fit(cls, shadow: Release, split: Split, classes: int, cfg: dict, seed: int) -> "Attacker":
        out = outputs(shadow, split, classes)
        names = LABEL_ONLY_ATTACKS[:1] if shadow.label_only else METRIC_ATTACKS
        fitted = {name: MetricAttack(name).fit(out) for name in names}
        if not shadow.label_only:
            fitted["neural"] = NeuralAttack(seed=seed).fit(out)
        noise = NoiseRobustnessAttack(cfg["label_only_sigmas"], cfg["label_only_queries"], seed)
        noise.fit(shadow.labels, split.x_in, split.y_in, split.x_out, split.y_out)
        return cls(fitted, noise)

    def run(self, target: Release, split: Split, classes: int) -> tuple[dict, Outputs]:
        released = outputs(target, split, classes)
        scores = {name: a.run(released) for name, a in self.output.items()}
        scores["label_only_noise"] = self.label_only.run(target.labels, split.x_in, split.y_in, split.x_out,
                                                         split.y_out)
        return scores, released


def row(scores: dict[str, AttackScores], released: Outputs) -> dict:
    """One defense's entry: utility of what is released, every attack's metrics (None where
    the attack does not apply), ``best_auc`` over the applicable attacks."""
    attacks = {name: attack_metrics(scores[name]) if name in scores else None for name in ATTACKS}
    entry = {"train_accuracy": float((released.probs_in.argmax(1) == released.labels_in).mean()),
             "test_accuracy": float((released.probs_out.argmax(1) == released.labels_out).mean()),
             "attacks": attacks, "best_auc": max(a["auc"] for a in attacks.values() if a is not None)}
    if any(a is None for a in attacks.values()):
        entry["note"] = NOT_APPLICABLE
    return entry


def train_shadow(split: Split, classes: int, params: dict, seed: int, beta: float | None = None) -> nn.Module:
    """A model trained like the target (``target`` recipe) or like a MID target (``mid`` recipe)."""
    if beta is None:
        return train_classifier("target", split.x_in, split.y_in, classes, params["target"], seed,
                                     progress=False)[0]
    return train_mid(split.x_in, split.y_in, classes, params["mid"], beta, seed, progress=False)[0]


def defend(model: nn.Module, split: Split, classes: int, params: dict, seed: int) -> OutputPerturbation:
    """The defender's output perturbation: risk evaluator on its own shadow model's outputs,
    epsilon calibrated on them."""
    cfg = params["membership"]["perturbation"]
    z_in = logits(model, split.x_in).double().numpy()
    z_out = logits(model, split.x_out).double().numpy()
    evaluator = RiskEvaluator.fit(z_in, split.y_in, z_out, split.y_out, seed=seed)
    defense = OutputPerturbation(evaluator, tau=cfg["tau"], steps=cfg["steps"])
    return defense.calibrate(np.concatenate([z_in, z_out]), np.concatenate([split.y_in, split.y_out]),
                             reach=cfg["reach"])


def name_rp(sigma: float, n: int) -> str:
    return f"rp.{token('sigma', sigma)}.{token('n', n)}"


def evaluate_defenses(target: nn.Module, mids: dict[float, nn.Module], data: dict, classes: int,
                      params: dict) -> tuple[dict, dict[str, dict[str, AttackScores]]]:
    """The defense x attack table (``row`` per defense) and every attack's per-record scores."""
    cfg, seed = params["membership"], params["seed"]
    test = Split(data["train_x"], data["train_y"], data["test_x"], data["test_y"])
    members = np.bincount(test.y_in, minlength=classes)
    nonmembers = np.bincount(test.y_out, minlength=classes)
    draws = stratified_draws(data["shadow_y"], members, nonmembers, 2, derive(seed, 0))
    shadow, own = (Split.draw(data["shadow_x"], data["shadow_y"], d) for d in draws)
    table, scores = {}, {}
    jobs = ["none", "output_perturbation", *[f"mid.{token('beta', b)}" for b in mids],
            *[name_rp(s, n) for s in cfg["rp"]["sigmas"] for n in cfg["rp"]["ns"]]]
    bar = tqdm(total=len(jobs), desc="defenses")

    def record(name: str, attacker: Attacker, release: Release, extra: dict | None = None):
        bar.set_postfix_str(name)
        s, released = attacker.run(release, test, classes)
        table[name], scores[name] = {**row(s, released), **(extra or {})}, s
        bar.update()

    shadow_model = train_shadow(shadow, classes, params, derive(seed, ATTACKER))
    undefended = Attacker.fit(Plain(shadow_model), shadow, classes, cfg, derive(seed, ATTACKER, 1))
    record("none", undefended, Plain(target))

    defender_model = train_shadow(own, classes, params, derive(seed, DEFENDER))
    defense = defend(defender_model, own, classes, params, derive(seed, DEFENDER, 1))
    perturbed = Perturbed(target, defense)
    released, changed = perturbed.release(np.concatenate([test.x_in, test.x_out]),
                                          np.concatenate([test.y_in, test.y_out]))
    summary, n_in = released.summary(), len(test.y_in)
    record("output_perturbation", undefended, perturbed,  # a mechanism-unaware attacker
           {"epsilon": defense.epsilon, "labels_changed": changed,
            "fraction_perturbed_members": float(released.perturbed[:n_in].mean()),
            "fraction_perturbed_nonmembers": float(released.perturbed[n_in:].mean()),
            **{k: summary[k] for k in ("fraction_perturbed", "fraction_reached", "mean_delta_l2", "mean_prob_l1")}})

    for i, (beta, model) in enumerate(mids.items(), start=2):
        shadow_mid = train_shadow(shadow, classes, params, derive(seed, ATTACKER, i), beta)
        attacker = Attacker.fit(Plain(shadow_mid, derive(seed, ATTACKER, i, 1)), shadow, classes, cfg,
                                derive(seed, ATTACKER, i, 2))
        record(f"mid.{token('beta', beta)}", attacker, Plain(model, derive(seed, 2, i)))

    chunk = cfg["chunk"]
    for sigma in cfg["rp"]["sigmas"]:
        for n in cfg["rp"]["ns"]:
            served = Smoothed(shadow_model, classes, sigma, n, derive(seed, ATTACKER, 100), chunk)
            attacker = Attacker.fit(served, shadow, classes, cfg, derive(seed, ATTACKER, 101))
            record(name_rp(sigma, n), attacker, Smoothed(target, classes, sigma, n, derive(seed, 3), chunk))
    bar.close()
    return table, scores


def score_rows(scores: dict[str, dict[str, AttackScores]]) -> list[tuple[str, str, int, float]]:
    """(defense, attack, member flag, score) for every record and attack."""
    return [(defense, attack, flag, float(v))
            for defense, per in scores.items() for attack, s in per.items()
            for flag, values in ((1, s.member), (0, s.nonmember)) for v in values]


"""The membership experiment: every defense against the strongest membership attacks.

Set-up of Carlini et al. ("Membership Inference Attacks From First Principles", S&P 2022): the
population is the target's training split (its members) and test split (its non-members),
one half each. The attacker knows the recipe and the population but not the halves; it trains
``reference_models`` + 1 models with the target's recipe (one training routine,
``pipeline.vision.nets.train_classifier``) on random halves of the population
(``pipeline.attacks.reference.inclusion``), on the ``compute`` backend. Model 0 is its shadow
model, released like the target: the metric, neural and noise-robustness attacks
(``pipeline.attacks.membership``, the noise's sigma included) are fitted on it, as is the
mechanism-aware attacker's own output perturbation. Model 1 is its
pseudo-target: every attack is run on it with models 2.. as references, and the attack with the
highest AUC there is the attacker's choice ("strongest"); on the target, models 1.. are the
references. The RMIA population samples are the shadow split (images no model trained on).

Defenses (``pipeline.defenses.release``: what the target releases for a query x, y), and the
reference models the attacker mirrors them with:

* ``none``: the target's softmax; plain reference models.
* ``output_perturbation``: ``OutputPerturbation`` on the target's logits, fitted by the defender
  on its own shadow model (trained on the shadow split). Three attackers: one unaware of the
  mechanism (plain references), a mechanism-aware one (references through its own output
  perturbation, fitted on its shadow model: ``output_perturbation_aware``), and one who supplies
  a wrong label so that the risk evaluator passes the raw output (``output_perturbation_wrong_label``).
* ``mid.beta_<b>``: the MID target (Wang, Zhang and Jia, AAAI 2021), sampling at inference;
  plain reference models (the attacker does not mirror MID: docs/membership.md).
* ``rp.sigma_<s>.n_<n>``: RP's label-only release, the vote of n noisy copies; the label-only
  attacks, with the first ``label_only_models`` references served the same way. The attacks on
  confidence vectors do not apply by construction (``None``).
* ``dpsgd.epsilon_<e>``: a DP-SGD model (``pipeline.defenses.dpsgd``) in place of the target; plain
  (non-private) reference models: the attacker does not retrain them per epsilon (docs/deviations.md).
* ``rr.epsilon_<e>.fresh`` / ``.keyed``: the target's label through randomized response; the
  label-only attacks, with the label-only references served through the same mechanism.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..attacks.membership import (ATTACKS, METRIC_ATTACKS, AttackScores, MetricAttack, NeuralAttack,
                                  NoiseRobustnessAttack, Outputs)
from ..attacks.membership_metrics import attack_metrics, best_threshold, paired_change, resamples, roc_auc
from ..attacks.reference import inclusion, lira, logit_confidence, logit_rate, rmia
from ..core.compute import map_rows
from ..core.device import select
from ..core.errors import PipelineError
from ..core.metrics import token
from ..core.seeds import derive_seed as derive
from ..core.training import logits, predict
from ..defenses.perturbation import OutputPerturbation, RiskEvaluator
from ..defenses.release import Perturbed, Plain, RandomizedResponse, Release, Smoothed, WrongLabel, demo_secret
from ..vision.nets import SMALL, build, train_classifier

NOT_APPLICABLE = "label-only release: not applicable by construction"
SHADOW, PSEUDO = 0, 1  # reference model roles: the shadow model, the pseudo-target of the attack choice
REFERENCES, DEFENDER, ATTACKER_OP, TARGET_NOISE, BOOT = range(5)  # random streams under the seed


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


def train_references(start: int, stop: int, x: np.ndarray, y: np.ndarray, keep: np.ndarray, classes: int,
                     cfg: dict, seed: int, device: str = "cpu") -> list[dict]:
    """State dicts (on the CPU) of reference models ``start``..``stop`` - 1: model m trains with
    the target's recipe (``train_classifier``) on ``x[keep[m]]`` with seed ``derive(seed, m)`` on
    ``device`` (a compute task; a ``compute.device`` value, resolved where the task runs)."""
    torch.set_num_threads(1)
    where = select(device)
    return [train_classifier("target", x[keep[m]], y[keep[m]], classes, cfg, derive(seed, m), progress=False,
                             device=where)[0].state_dict() for m in range(start, stop)]


def reference_models(x, y, keep, classes: int, params: dict, seed: int) -> list[nn.Module]:
    """Every reference model of ``keep`` (one row each; the target's recipe and architecture,
    ``params['target']``), trained on the ``compute`` backend and its ``device``, one task per
    model (locally: spread over the worker processes)."""
    compute = {**params["compute"], "chunk": 1}
    states = [s for block in map_rows(train_references, len(keep), compute, "reference models", unit="model",
                                      spread=True, x=x, y=y, keep=keep, classes=classes, cfg=params["target"], seed=seed,
                                      device=compute.get("device", "cpu"))
              for s in block]
    models = []
    for state in states:
        model = build("target", params["target"].get("arch", SMALL), x.shape[1], x.shape[2], classes)
        model.load_state_dict(state)
        models.append(model.eval())
    return models


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


def defend(model: nn.Module, x_in, y_in, x_out, y_out, params: dict, seed: int) -> OutputPerturbation:
    """Output perturbation: the risk evaluator fitted on a model's known members and
    non-members, epsilon calibrated on the same outputs."""
    cfg = params["membership"]["perturbation"]
    z_in, z_out = logits(model, x_in).double().numpy(), logits(model, x_out).double().numpy()
    evaluator = RiskEvaluator.fit(z_in, y_in, z_out, y_out, seed=seed)
    defense = OutputPerturbation(evaluator, tau=cfg["tau"], steps=cfg["steps"])
    return defense.calibrate(np.concatenate([z_in, z_out]), np.concatenate([y_in, y_out]), reach=cfg["reach"])


class Attacker:
    """The attacks of one attacker against one defense: fitted on its shadow release (``noise``:
    an unfitted ``NoiseRobustnessAttack``, its sigma chosen here), calibrated on its reference
    releases; ``run`` scores every record of a release (``None`` where an
    attack does not apply)."""

    def __init__(self, shadow: Release, references: list[Release], label_only_refs: list[Release], keep: np.ndarray,
                 data: dict, noise: NoiseRobustnessAttack, cfg: dict, seed: int):
        """``references`` and ``label_only_refs``: releases of reference models 1, 2, ...;
        ``keep[m]``: the records model m trains on (model 0: the shadow)."""
        self.data, self.noise, self.cfg = data, noise, cfg
        self.label_only = shadow.label_only
        self.keep = keep[PSEUDO:PSEUDO + len(references)]
        self.keep_label_only = keep[PSEUDO:PSEUDO + len(label_only_refs)]
        shadow_in = keep[SHADOW]
        x, y = data["x"], data["y"]
        noise.fit(shadow.labels, x[shadow_in], y[shadow_in], x[~shadow_in], y[~shadow_in])
        p = one_hot(shadow.labels(x), data["classes"]) if self.label_only else shadow.probs(x, y)
        out = Outputs(p[shadow_in], y[shadow_in], p[~shadow_in], y[~shadow_in])
        self.fitted = {"correctness": MetricAttack("correctness").fit(out)}
        if not self.label_only:
            self.fitted.update({name: MetricAttack(name).fit(out) for name in METRIC_ATTACKS[1:]})
            self.fitted["neural"] = NeuralAttack(seed=seed).fit(out)
            self.ref_x = np.array([logit_confidence(r.probs(x, y), y) for r in references])
            self.ref_px = np.array([r.probs(x, y)[np.arange(len(y)), y] for r in references])
            self.ref_pz = np.array([r.probs(data["z"], data["z_y"])[np.arange(len(data["z_y"])), data["z_y"]]
                                    for r in references])
        self.ref_rate = np.array([self.signal_label_only(r) for r in label_only_refs])

    def signal_label_only(self, release: Release) -> np.ndarray:
        return logit_rate(self.noise.robustness(release.labels, self.data["x"], self.data["y"], self.noise.sigma,
                                                stream=1), self.noise.queries)

    def run(self, release: Release, refs: slice, member: np.ndarray) -> dict[str, AttackScores | None]:
        """Every attack's scores of the records of ``release`` (``member``: the truth), with the
        reference models ``refs`` (indices into this attacker's references)."""
        x, y, classes = self.data["x"], self.data["y"], self.data["classes"]

        def split(name, s, threshold=np.inf):  # inf: the guesses' threshold is set by ``choose``
            return AttackScores(name, s[member], s[~member], threshold)
        scores: dict[str, AttackScores | None] = dict.fromkeys(ATTACKS)
        p = one_hot(release.labels(x), classes) if self.label_only else release.probs(x, y)
        out = Outputs(p[member], y[member], p[~member], y[~member])
        for name, attack in self.fitted.items():
            scores[name] = attack.run(out)
        rate = self.noise.robustness(release.labels, x, y, self.noise.sigma, stream=1)
        scores["label_only_noise"] = split("label_only_noise", rate, self.noise.threshold)
        lo = lira(logit_rate(rate, self.noise.queries), self.ref_rate[refs], self.keep_label_only[refs],
                  self.cfg["lira_variance"])
        scores["label_only_lira_online"] = split("label_only_lira_online", lo["lira_online"])
        scores["label_only_lira_offline"] = split("label_only_lira_offline", lo["lira_offline"])
        if not self.label_only:
            full = lira(logit_confidence(p, y), self.ref_x[refs], self.keep[refs], self.cfg["lira_variance"])
            for name, s in full.items():
                scores[name] = split(name, s)
            pz = release.probs(self.data["z"], self.data["z_y"])[np.arange(len(self.data["z_y"])), self.data["z_y"]]
            scores["rmia"] = split("rmia", rmia(p[np.arange(len(y)), y], self.ref_px[refs], pz, self.ref_pz[refs],
                                                self.cfg["rmia"]["a"], self.cfg["rmia"]["gamma"]))
        return scores


def choose(pseudo: dict[str, AttackScores | None], target: dict[str, AttackScores | None]) -> tuple[str, dict]:
    """The attack with the highest AUC on the pseudo-target, and each applicable attack's AUC
    there. Attacks without a fitted threshold take the one that maximises their balanced
    accuracy on the pseudo-target."""
    auc = {}
    for name, s in pseudo.items():
        if s is None:
            continue
        auc[name] = roc_auc(s.member, s.nonmember)
        if np.isinf(target[name].threshold):
            t = best_threshold(s.member, s.nonmember)
            target[name] = AttackScores(name, target[name].member, target[name].nonmember, t)
    return max(auc, key=auc.get), auc


def name_rp(sigma: float, n: int) -> str:
    return f"rp.{token('sigma', sigma)}.{token('n', n)}"


def randomized_response(model: nn.Module, classes: int, epsilon: float, seed: int, keyed: bool,
                        secret: bytes) -> RandomizedResponse:
    return RandomizedResponse(lambda x: predict(model, x), classes, epsilon, seed, keyed, secret)


def evaluate_defenses(target: nn.Module, mids: dict[float, nn.Module], data: dict, classes: int,
                      params: dict, private: dict[float, nn.Module] | None = None
                      ) -> tuple[dict, dict[str, dict[str, AttackScores]], dict]:
    """The defense x attack table, every attack's per-record scores on the target, and the
    set-up (population and reference-model counts). ``private``: the DP-SGD models by epsilon.
    The reference models, the defender's model and the RP engines run on ``compute.device``."""
    cfg, seed, device = params["membership"], params["seed"], select(params["compute"]["device"])
    x = np.concatenate([data["train_x"], data["test_x"]])
    y = np.concatenate([data["train_y"], data["test_y"]])
    member = np.arange(len(y)) < len(data["train_y"])
    keep = inclusion(cfg["reference_models"] + 1, len(y), derive(seed, REFERENCES))
    models = reference_models(x, y, keep, classes, params, derive(seed, REFERENCES, 1))
    shared = {"x": x, "y": y, "z": data["shadow_x"], "z_y": data["shadow_y"], "classes": classes}
    boot = resamples(int(member.sum()), int((~member).sum()), derive(seed, BOOT), params["bootstrap"])
    lo_count = cfg["label_only_models"]
    table, scores = {}, {}

    def attacker(shadow, refs, label_only_refs, seed_):
        noise = NoiseRobustnessAttack(cfg["label_only_sigmas"], cfg["label_only_queries"], derive(seed, TARGET_NOISE))
        return Attacker(shadow, refs[1:], label_only_refs[1:], keep, shared, noise, cfg, seed_)

    def record(name: str, a: Attacker, release: Release, pseudo: Release, extra: dict | None = None):
        bar.set_postfix_str(name)
        target_scores = a.run(release, slice(0, None), member)
        pseudo_scores = a.run(pseudo, slice(1, None), keep[PSEUDO])
        strongest, selection = choose(pseudo_scores, target_scores)
        p = one_hot(release.labels(x), classes) if release.label_only else release.probs(x, y)
        correct = p.argmax(1) == y
        table[name] = {"train_accuracy": float(correct[member].mean()), "test_accuracy": float(correct[~member].mean()),
                       "attacks": {k: None if s is None else attack_metrics(s, boot) for k, s in target_scores.items()},
                       "strongest": strongest, "selection_auc": selection, "label_only_sigma": a.noise.sigma,
                       **(extra or {})}
        table[name].update({f"strongest_{k}": v for k, v in table[name]["attacks"][strongest].items()})
        if release.label_only:
            table[name]["note"] = NOT_APPLICABLE
        scores[name] = {k: s for k, s in target_scores.items() if s is not None}
        bar.update()

    jobs = ["none", "output_perturbation", "output_perturbation_aware", "output_perturbation_wrong_label",
            *[f"mid.{token('beta', b)}" for b in mids], *[name_rp(s, n) for s in cfg["rp"]["sigmas"]
                                                           for n in cfg["rp"]["ns"]],
            *[f"dpsgd.{token('epsilon', e)}" for e in private or {}],
            *[f"rr.{token('epsilon', e)}.{mode}" for e in params["randomized_response"]["epsilons"]
              for mode in ("fresh", "keyed")]]
    bar = tqdm(total=len(jobs), desc="defenses")
    plain = [Plain(m) for m in models]
    unaware = attacker(plain[SHADOW], plain, plain[:lo_count + 1], derive(seed, SHADOW))
    record("none", unaware, Plain(target), plain[PSEUDO])

    own = stratified_draws(data["shadow_y"], np.bincount(data["train_y"], minlength=classes),
                           np.bincount(data["test_y"], minlength=classes), 1, derive(seed, DEFENDER))[0]
    sx, sy = data["shadow_x"], data["shadow_y"]
    defender_model = train_classifier("target", sx[own[0]], sy[own[0]], classes, params["target"],
                                      derive(seed, DEFENDER, 1), progress=False, device=device)[0]
    defense = defend(defender_model, sx[own[0]], sy[own[0]], sx[own[1]], sy[own[1]], params, derive(seed, DEFENDER, 2))
    perturbed = Perturbed(target, defense)
    released, changed = perturbed.release(x, y)
    summary = released.summary()
    extra = {"epsilon": defense.epsilon, "labels_changed": changed,
             "fraction_perturbed_members": float(released.perturbed[member].mean()),
             "fraction_perturbed_nonmembers": float(released.perturbed[~member].mean()),
             **{k: summary[k] for k in ("fraction_perturbed", "fraction_reached", "mean_delta_l2", "mean_prob_l1")}}
    own_op = defend(models[SHADOW], x[keep[SHADOW]], y[keep[SHADOW]], x[~keep[SHADOW]], y[~keep[SHADOW]], params,
                    derive(seed, ATTACKER_OP))
    mirrored = [Perturbed(m, own_op) for m in models]
    record("output_perturbation", unaware, perturbed, plain[PSEUDO], extra)
    aware = attacker(mirrored[SHADOW], mirrored, plain[:lo_count + 1], derive(seed, SHADOW))
    record("output_perturbation_aware", aware, perturbed, mirrored[PSEUDO], extra)
    wrong = WrongLabel(perturbed)
    record("output_perturbation_wrong_label", unaware, wrong, WrongLabel(mirrored[PSEUDO]),
           {**extra, "fraction_raw": float(wrong.raw_share(x, y))})

    for i, (beta, model) in enumerate(mids.items()):
        record(f"mid.{token('beta', beta)}", unaware, Plain(model, derive(seed, 2, i)), plain[PSEUDO])

    chunk = cfg["chunk"]
    for sigma in cfg["rp"]["sigmas"]:
        for n in cfg["rp"]["ns"]:
            served = [Smoothed(m, classes, sigma, n, derive(seed, 3, j), chunk, device)
                      for j, m in enumerate(models[:lo_count + 1])]
            a = attacker(served[SHADOW], plain, served, derive(seed, SHADOW))
            record(name_rp(sigma, n), a, Smoothed(target, classes, sigma, n, derive(seed, 3), chunk, device),
                   served[PSEUDO])
    for eps, model in (private or {}).items():
        record(f"dpsgd.{token('epsilon', eps)}", unaware, Plain(model), plain[PSEUDO])
    secret = demo_secret(seed)
    for i, eps in enumerate(params["randomized_response"]["epsilons"]):
        for keyed in (False, True):
            served = [randomized_response(m, classes, eps, derive(seed, 4, i, j), keyed, secret)
                      for j, m in enumerate(models[:lo_count + 1])]
            a = attacker(served[SHADOW], plain, served, derive(seed, SHADOW))
            record(f"rr.{token('epsilon', eps)}.{'keyed' if keyed else 'fresh'}", a,
                   randomized_response(target, classes, eps, derive(seed, 4, i), keyed, secret), served[PSEUDO])
    bar.close()
    for name, row in table.items():
        if name != "none":
            row.update(paired_change(scores["none"][table["none"]["strongest"]], scores[name][row["strongest"]], boot))
    setup = {"members": int(member.sum()), "nonmembers": int((~member).sum()), "reference_models": len(models) - 1,
             "label_only_models": lo_count, "population_samples": len(data["shadow_y"])}
    return table, scores, setup


def score_rows(scores: dict[str, dict[str, AttackScores]]) -> list[tuple[str, str, int, float]]:
    """(defense, attack, member flag, score) for every record and attack."""
    return [(defense, attack, flag, float(v))
            for defense, per in scores.items() for attack, s in per.items()
            for flag, values in ((1, s.member), (0, s.nonmember)) for v in values]

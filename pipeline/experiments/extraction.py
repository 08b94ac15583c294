"""The distillation boundary of Robust Privacy: the revised paper says RP mitigates attribute- and
instance-level leakage but not function-level extraction. Measured here with
``pipeline.attacks.extraction``, per task, per served model and per query budget q:

* served models: the undefended base model; RP, the always-return-a-label majority vote of N
  noisy copies with keyed noise (``Smooth(..., noise='keyed').vote``: a repeated query gets the
  same answer), per sigma; on the image task also MID (one beta).
* the student: the served model's architecture, distilled from the served labels of the first
  q inputs of one transfer set (the same for every served model; a smaller budget's queries are
  a prefix of a larger one's), initialised and shuffled from one seed per budget (the same for
  every served model: paired comparisons).
* (a) the student's agreement with the served model's labels and with the base model's on the
  private test split, and its test accuracy (Wilson 95% intervals);
* (b) the privacy attack against the student, beside the same attack against the served model
  (key ``served``) and, for the tabular task, the base model:

  - tabular: Scenario I (``pipeline.attacks.attribute``; the ``attribute_attack`` stage's
    victims and grid). The victim's released label comes from the service (what the attacker
    sees of the victim); the attacker then sweeps the sensitive value on the student, with
    queries that cost it nothing. Median interval width (bootstrap interval) and coverage
    (Clopper-Pearson), and the paired change of the median width from the served model to the
    student and from the base model to the student (bootstrap over victims). A student change
    vs served near 0 means the student leaks what the service leaks; a change vs base near 0,
    that what RP hid came back.
  - images: BREP-MI (label-only, ``pipeline.experiments.inversion``'s attack and judgement; on
    the served RP model with the invert stage's fresh-noise vote, which per query has the law
    of the keyed one: BREP-MI does not repeat queries) and white-box gradient inversion of the
    student (``gradient_inversion``), judged by the evaluator: ASR beside its chance 1 / classes.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import torch

from ..attacks import attribute as attack
from ..attacks import brepmi, extraction
from ..core.metrics import nest, token
from ..core.seeds import derive_seed
from ..core.training import predict
from ..smoothing import Smooth
from ..smoothing.stats import bootstrap_interval
from ..tabular.mlp import mlp
from ..vision import nets
from .attribute import _intervals
from .inversion import _change, _rate, attack_configurations, generate, judge, labeller, summarise

EXTRACTION = 19  # this experiment's random streams: derive_seed(seed, EXTRACTION, role, ...)
TRANSFER, STUDENT, SERVED, WHITEBOX = range(4)


def _agreements(labels: np.ndarray, base: np.ndarray, truth: np.ndarray, served: np.ndarray | None = None) -> dict:
    """Agreement of ``labels`` with the base labels (and the served ones, if given) and their
    accuracy on the private test split, each with its Wilson interval."""
    m = {}
    for name, other in (("agreement", served), ("agreement_base", base), ("test_accuracy", truth)):
        if other is not None:
            m[name], m[f"{name}_low"], m[f"{name}_high"] = extraction.agreement(labels, other)
    return m


def _scenario_one(answers: np.ndarray, released: np.ndarray, grid: np.ndarray, truth: np.ndarray, seed: int,
                  reps: int) -> tuple[dict, np.ndarray]:
    """Scenario I from ``answers`` on the grid (R, G) and the victims' ``released`` labels (R,):
    ``interval_summary`` with its intervals, and the per-victim widths (NaN: no compatible value)."""
    lo, hi = attack.hull(grid, answers == released[:, None])
    return {**attack.interval_summary(lo, hi, truth), **_intervals(lo, hi, truth, seed, reps)}, hi - lo


def _width_change(metrics: dict, name: str, widths: np.ndarray, other: np.ndarray, seed: int, reps: int) -> None:
    """``name`` = median width minus the ``other`` attack's median width (victims with a
    compatible value under each), with a paired percentile-bootstrap interval over victims."""
    def change(i):
        a, b = widths[i], other[i]
        return np.nanmedian(a) - np.nanmedian(b) if np.isfinite(a).any() and np.isfinite(b).any() else np.nan
    lo, hi = bootstrap_interval(change, len(widths), seed, reps)
    metrics.update({name: float(change(np.arange(len(widths)))), f"{name}_low": lo, f"{name}_high": hi})


def extraction_tabular(model, data: dict, meta: dict, params: dict, seed: int, secret: bytes,
                       device: torch.device | str = "cpu", progress: bool = False) -> tuple[dict, pd.DataFrame]:
    """The tabular half (module docstring): the Section 5 MLP ``model`` served as base and as RP
    (``params['extraction']['tabular']``: sigmas, n, budgets, chunk), students of the MLP
    architecture trained with ``params['train']``'s recipe without its l1 penalty (the attacker
    does not know the defender's regulariser), Scenario I with ``params['attribute_attack']``'s
    victims and grid. Returns the nested metrics and one table row per (served model, attacked
    model: ``served`` or a budget)."""
    cfg, att, reps = params["extraction"]["tabular"], params["attribute_attack"], params["bootstrap"]
    idx, truth, grid, sweep = attack.queries(data, meta, att["near"], att["step"], att["records"], seed)
    rows = sweep[0:len(sweep)].numpy()  # column 0: the victim's own record, then the grid
    queries = extraction.transfer_set_tabular(meta["feature_names"], max(cfg["budgets"]),
                                              derive_seed(seed, EXTRACTION, TRANSFER))
    build = partial(mlp, rows.shape[1], params["train"]["hidden"])
    recipe = {k: params["train"][k] for k in ("epochs", "batch_size", "lr")}
    base_labels = partial(predict, model, batch=None)
    served_models = [("base", base_labels)] + [
        (f"rp.{token('sigma', sigma)}.{token('n', cfg['n'])}",
         partial(Smooth(model, 2, sigma, noise="keyed", chunk=cfg["chunk"], secret=secret, device=device).vote,
                 n=cfg["n"]))
        for sigma in map(float, cfg["sigmas"])]
    test_x, test_y = data["test_x"], data["test_y"]
    base_test = base_labels(test_x)
    metrics, table = {}, []
    for name, labels_of in served_models:  # base first: its widths are every other attack's reference
        served_test, answers = labels_of(test_x), labels_of(rows).reshape(sweep.values.shape)
        released = answers[:, 0]
        served, served_widths = _scenario_one(answers[:, 1:], released, grid, truth, seed, reps)
        if name == "base":
            base_widths = served_widths
        else:
            _width_change(served, "width_change_vs_base", served_widths, base_widths, seed, reps)
        metrics[f"{name}.served"] = {**served, **_agreements(served_test, base_test, test_y)}
        table.append({"served": name, "attacked": "served", **metrics[f"{name}.served"]})
        for j, q in enumerate(cfg["budgets"]):
            student = extraction.distill(labels_of, queries[:q], build, recipe,
                                         derive_seed(seed, EXTRACTION, STUDENT, j), device, progress)
            on_grid = predict(student.model, rows, None).reshape(sweep.values.shape)[:, 1:]
            m, widths = _scenario_one(on_grid, released, grid, truth, seed, reps)
            _width_change(m, "width_change_vs_served", widths, served_widths, seed, reps)
            _width_change(m, "width_change_vs_base", widths, base_widths, seed, reps)
            m.update(queries=q, answered=student.answered, abstained=student.abstained,
                     **_agreements(predict(student.model, test_x, None), base_test, test_y, served_test))
            metrics[f"{name}.{token('q', q)}"] = m
            table.append({"served": name, "attacked": token("q", q), **m})
    return nest(metrics), pd.DataFrame(table)


def _served_images(models: dict, spec: dict, classes: int, seed: int, chunk: int, secret: bytes,
                   device: torch.device | str):
    """Hard labels of a served image model: RP as the keyed vote of ``spec['n']`` noisy copies,
    base and MID as ``inversion.labeller`` serves them (MID's bottleneck sampled from ``seed``)."""
    if "sigma" in spec:
        smooth = Smooth(models["target"], classes, spec["sigma"], noise="keyed", chunk=chunk, secret=secret,
                        device=device)
        return partial(smooth.vote, n=spec["n"])
    return labeller(models, spec, classes, seed, chunk, device)


def _inversions(G, evaluator, models: dict, specs: list[dict], data: dict, cfg: dict, brep: brepmi.Config,
                z_dim: int, classes: int, seed: int, reps: int, device: torch.device | str) -> list[dict]:
    """BREP-MI against each of ``specs`` (``inversion.attack_configurations``: the same starts
    and sphere points for every model), judged by the evaluator (``summarise``), with chance."""
    targets = np.repeat(np.arange(cfg["targets"]), cfg["restarts"])
    results = attack_configurations(0, len(specs), G=G, models=models, configs=specs, cfg=brep,
                                    targets=cfg["targets"], restarts=cfg["restarts"], z_dim=z_dim, classes=classes,
                                    seed=seed, chunk=cfg["chunk"], device=torch.device(device).type)
    return [{**summarise(pd.DataFrame(records), judge(evaluator, firsts, targets, data),
                         judge(evaluator, images, targets, data), classes, seed, reps), "chance": 1 / classes}
            for records, firsts, images, _ in results]


def _whitebox(G, evaluator, model, data: dict, cfg: dict, clamp: float, z_dim: int, classes: int, seed: int,
              reps: int, device: torch.device | str) -> dict:
    """``gradient_inversion`` of ``model`` (one latent per attacked class and restart) on
    ``device``, judged by the evaluator: ASR, its value at the random starts and the paired lift,
    and chance."""
    targets = np.repeat(np.arange(cfg["targets"]), cfg["restarts"])
    w = cfg["whitebox"]
    starts, found = extraction.gradient_inversion(G, model, targets, z_dim, w["steps"], w["lr"], clamp,
                                                  derive_seed(seed, EXTRACTION, WHITEBOX), device)
    image = generate(G, device)
    start, end = (judge(evaluator, image(torch.from_numpy(z)).cpu().numpy(), targets, data)["success"].to_numpy()
                  for z in (starts, found))
    m = {"attacks": len(targets), "chance": 1 / classes}
    _rate(m, "asr", end)
    _rate(m, "asr_no_attack", start)
    _change(m, "lift", end.astype(float), start.astype(float), seed, reps)
    return m


def extraction_images(target, mids: dict, G, evaluator, data: dict, params: dict, seed: int, secret: bytes,
                      device: torch.device | str = "cpu", progress: bool = False) -> tuple[dict, pd.DataFrame]:
    """The image half (module docstring): the ``target`` served as base, as RP per sigma and as
    the MID model ``mids[beta]`` (``params['extraction']['images']``: sigmas, n, beta, budgets,
    student, targets, restarts, whitebox, chunk); students of the target's architecture
    (``target.arch``) trained with ``params['target']``'s recipe updated by ``student``; BREP-MI with
    ``params['brepmi']``'s settings on ``targets`` classes x ``restarts`` through the prior
    ``G``, judged by the ``evaluator``. Against the base model, the white-box attack uses the
    target's own gradients: the ceiling of a perfect copy. The generator, the served models, the
    students' training and both attacks run on ``device``. Returns the nested metrics and one
    table row per (served model, attacked model: ``served`` or a budget)."""
    cfg, reps, z_dim = params["extraction"]["images"], params["bootstrap"], params["gan"]["z_dim"]
    classes = int(target[-1].out_features)
    queries = extraction.transfer_set_images(data["public_x"], max(cfg["budgets"]),
                                             derive_seed(seed, EXTRACTION, TRANSFER), G, z_dim, device)
    build = partial(nets.build, "target", params["target"]["arch"], data["train_x"].shape[1], data["train_x"].shape[2],
                    classes)
    recipe = {**{k: params["target"][k] for k in ("epochs", "batch_size", "lr")}, **cfg["student"]}
    brep = brepmi.Config(**{k: v for k, v in params["brepmi"].items() if k not in ("targets", "restarts")})
    models = {"target": target, "mid": mids}
    specs = ([{"name": "base"}]
             + [{"name": f"rp.{token('sigma', s)}.{token('n', cfg['n'])}", "sigma": float(s), "n": cfg["n"]}
                for s in cfg["sigmas"]]
             + [{"name": f"mid.{token('beta', cfg['beta'])}", "beta": cfg["beta"]}])
    served_attacks = _inversions(G, evaluator, models, specs, data, cfg, brep, z_dim, classes, seed, reps, device)
    test_x, test_y = data["test_x"], data["test_y"]
    base_test = predict(target, test_x)
    metrics = {}
    for i, spec in enumerate(specs):
        served = partial(_served_images, models, spec, classes, derive_seed(seed, EXTRACTION, SERVED, i),
                         cfg["chunk"], secret, device)  # a fresh labeller each time: the same answers
        served_test = served()(test_x)
        metrics[f"{spec['name']}.served"] = {**_agreements(served_test, base_test, test_y),
                                             "brepmi": served_attacks[i]}
        if spec["name"] == "base":
            metrics["base.served"]["whitebox"] = _whitebox(G, evaluator, target, data, cfg, brep.clamp, z_dim,
                                                           classes, seed, reps, device)
        for j, q in enumerate(cfg["budgets"]):
            student = extraction.distill(served(), queries[:q], build, recipe,
                                         derive_seed(seed, EXTRACTION, STUDENT, j), device, progress)
            metrics[f"{spec['name']}.{token('q', q)}"] = {
                "queries": q, "answered": student.answered, "abstained": student.abstained,
                **_agreements(predict(student.model, test_x), base_test, test_y, served_test),
                "brepmi": _inversions(G, evaluator, {"target": student.model}, [{"name": "base"}], data, cfg, brep,
                                      z_dim, classes, seed, reps, device)[0],
                "whitebox": _whitebox(G, evaluator, student.model, data, cfg, brep.clamp, z_dim, classes, seed, reps,
                                      device)}
    table = pd.json_normalize([{"served": name.rpartition(".")[0], "attacked": name.rpartition(".")[2], **m}
                               for name, m in metrics.items()], sep="_")
    return nest(metrics), table

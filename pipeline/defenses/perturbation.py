"""Inference-time output perturbation against membership inference ("Crafting privacy-preserving
adversarial examples: a defense against membership inference", ACL 2025; a summary without code,
read as below: docs/deviations.md lists our choices).

Between the model and the querier, for each released output (logits z, label y of the query,
or the predicted label when the querier gives none):

1. Risk evaluator (the paper's "membership exposure risk evaluator"): a small binary classifier
   trained with binary cross-entropy on shadow outputs of known members (1) and non-members
   (0). Features, as the paper lists them: max confidence, entropy, correctness 1[argmax z = y],
   and the deviation ||softmax(z) - m_y||_2 from the mean shadow output m_y of the class.
   Risk r(z) = sigmoid(MLP(features)) in [0, 1].
2. Outputs with r(z) < tau are released unchanged (bit for bit).
3. The others get the smallest logit perturbation delta the search finds with
   r(z + delta) < tau, the predicted label kept ("min |delta| s.t. r(z + delta) < tau", solved
   by projected gradient descent): sign-gradient steps on r, projected onto the box
   |delta_j| <= eps_j and onto the label-keeping set {argmax = argmax z} (every other logit
   at least ``margin`` below the predicted one), stopping at the first iterate under tau
   (the paper: 3-5 steps); then a bisection along the segment t * delta, t in [0, 1], for the
   smallest t still under tau (the label set is convex, so every point of the segment keeps
   the label). delta is centred (softmax ignores a common shift), which changes nothing
   released but its size. If no iterate reaches tau, the lowest-risk one is released.
   The steps never raise the confidence (the predicted logit only goes down, the others only
   up); where the gradient leaves no such move (a softmax rounded to one-hot, or a risk that
   locally rewards even more confidence) they follow the margin-lowering direction
   -(e_yhat - 1 / C), since the paper's exposure signal is "excessively high confidence".
4. Adaptive intensity per output dimension (the paper: "smaller perturbations on dimensions with
   high impact on the predicted label, larger on dimensions containing significant information
   for the attacker; importance through gradient analysis"): eps_j = eps * w_j / mean(w),
   w_j = (|dr/dz_j| + mean_k |dr/dz_k|) / (1 + |dm/dz_j|), with m = z_yhat - max_(j != yhat) z_j
   the label margin (its gradient is 1 on the predicted and the runner-up logit, 0 elsewhere);
   the mean term gives every logit some room.
   eps itself is calibrated on a calibration set (the paper: "initial value determined by a
   statistical analysis of a calibration set"): the smallest value of a geometric grid that
   brings at least ``reach`` of the calibration set's risky outputs under tau.
5. Check: every released label equals the model's; a row that would differ is released
   unperturbed (counted in ``labels_reverted``; by construction it stays 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

FEATURES = ("max_confidence", "entropy", "correctness", "class_deviation")


def _features(z: torch.Tensor, y: torch.Tensor, class_means: torch.Tensor) -> torch.Tensor:
    """(n, 4) features of logits ``z`` for labels ``y``. Max confidence is read at the predicted
    class, so it is smooth wherever the label is kept."""
    logp = torch.log_softmax(z, dim=1)
    p = logp.exp()
    yhat = z.argmax(1, keepdim=True)
    max_conf = p.gather(1, yhat).squeeze(1)
    entropy = -(p * logp).sum(1)
    correct = (yhat.squeeze(1) == y).to(z.dtype)
    deviation = torch.sqrt(((p - class_means[y]) ** 2).sum(1) + 1e-12)
    return torch.stack([max_conf, entropy, correct, deviation], dim=1)


class RiskEvaluator(nn.Module):
    """r(z, y) = sigmoid(MLP(standardised features)); float64 throughout."""

    def __init__(self, class_means: torch.Tensor, feature_mean: torch.Tensor, feature_std: torch.Tensor,
                 hidden: int = 32):
        super().__init__()
        self.register_buffer("class_means", class_means)
        self.register_buffer("feature_mean", feature_mean)
        self.register_buffer("feature_std", feature_std)
        self.net = nn.Sequential(nn.Linear(len(FEATURES), hidden), nn.Tanh(), nn.Linear(hidden, 1)).double()

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f = (_features(z, y, self.class_means) - self.feature_mean) / self.feature_std
        return torch.sigmoid(self.net(f).squeeze(1))

    @torch.no_grad()
    def risk(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return self(torch.as_tensor(logits, dtype=torch.float64), torch.as_tensor(labels)).numpy()

    @classmethod
    def fit(cls, logits_in: np.ndarray, labels_in: np.ndarray, logits_out: np.ndarray, labels_out: np.ndarray,
            hidden: int = 32, epochs: int = 500, lr: float = 0.01, seed: int = 0) -> "RiskEvaluator":
        """Full-batch Adam on class-balanced BCE over shadow members (1) and non-members (0)."""
        torch.manual_seed(seed)
        z = torch.as_tensor(np.concatenate([logits_in, logits_out]), dtype=torch.float64)
        y = torch.as_tensor(np.concatenate([labels_in, labels_out]), dtype=torch.long)
        member = torch.cat([torch.ones(len(logits_in)), torch.zeros(len(logits_out))]).double()
        classes = z.shape[1]
        p = torch.softmax(z, 1)
        class_means = torch.stack([p[y == c].mean(0) if (y == c).any() else p.mean(0) for c in range(classes)])
        f = _features(z, y, class_means)
        model = cls(class_means, f.mean(0), f.std(0).clamp_min(1e-6), hidden)
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(len(logits_out) / len(logits_in), dtype=torch.float64))
        opt = torch.optim.Adam(model.net.parameters(), lr=lr)
        fs = (f - model.feature_mean) / model.feature_std
        for _ in range(epochs):
            loss = loss_fn(model.net(fs).squeeze(1), member)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model.eval()


@dataclass
class PerturbedOutputs:
    """What the defense releases, and what it did to each output."""
    logits: np.ndarray       # (n, C) float64; rows not perturbed are the input rows unchanged
    probs: np.ndarray        # softmax of ``logits``
    perturbed: np.ndarray    # bool: risk was >= tau, a perturbation was searched
    reached: np.ndarray      # bool: released risk < tau
    risk_before: np.ndarray
    risk_after: np.ndarray
    delta_l2: np.ndarray     # ||released - input logits||_2 after centring (0 where unperturbed)
    prob_l1: np.ndarray      # ||released - input probabilities||_1
    labels_reverted: int     # rows released unperturbed because the label check failed

    def summary(self) -> dict:
        n_pert = int(self.perturbed.sum())
        return {"outputs": len(self.perturbed), "fraction_perturbed": float(self.perturbed.mean()),
                "fraction_reached": float(self.reached[self.perturbed].mean()) if n_pert else 1.0,
                "mean_delta_l2": float(self.delta_l2[self.perturbed].mean()) if n_pert else 0.0,
                "mean_prob_l1": float(self.prob_l1[self.perturbed].mean()) if n_pert else 0.0,
                "labels_reverted": self.labels_reverted}


class OutputPerturbation:
    """The defense. ``epsilon`` (mean per-dimension box, logit units) is set by ``calibrate``
    unless given; ``steps`` PGD steps of ``step_fraction`` * eps_j each; ``bisection`` halvings."""

    def __init__(self, evaluator: RiskEvaluator, tau: float = 0.5, epsilon: float | None = None, steps: int = 10,
                 step_fraction: float = 0.25, bisection: int = 20, margin: float = 1e-3):
        if not 0 < tau < 1:
            raise ValueError(f"tau must lie in (0, 1), got {tau}")
        self.evaluator, self.tau, self.epsilon = evaluator, tau, epsilon
        self.steps, self.step_fraction, self.bisection, self.margin = steps, step_fraction, bisection, margin

    def calibrate(self, logits: np.ndarray, labels: np.ndarray, grid=tuple(0.25 * 2.0 ** np.arange(10)),
                  reach: float = 0.95, progress: bool = False) -> "OutputPerturbation":
        """eps = the smallest grid value bringing >= ``reach`` of the risky calibration outputs under tau."""
        for eps in tqdm(grid, desc="calibrate epsilon", disable=not progress):
            self.epsilon = float(eps)
            release = self(logits, labels)
            if not release.perturbed.any() or release.reached[release.perturbed].mean() >= reach:
                break
        return self

    def _risk(self, z, y):
        return self.evaluator(z, y)

    def _project(self, z, delta, yhat):
        """Largest change to ``delta`` that only lowers the logits above (predicted - margin)."""
        v = z + delta
        cap = v.gather(1, yhat[:, None]) - self.margin
        capped = torch.minimum(v, cap)
        capped.scatter_(1, yhat[:, None], v.gather(1, yhat[:, None]))
        return capped - z

    def _search(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        yhat = z.argmax(1)
        # per-dimension intensity from the gradient of the risk and of the label margin
        zg = z.clone().requires_grad_(True)
        grad_r, = torch.autograd.grad(self._risk(zg, y).sum(), zg)
        label_impact = torch.zeros_like(z)
        label_impact.scatter_(1, yhat[:, None], 1.0)
        runner_up = z.scatter(1, yhat[:, None], -torch.inf).argmax(1)
        label_impact.scatter_(1, runner_up[:, None], 1.0)
        info = grad_r.abs()
        w = (info + info.mean(1, keepdim=True)) / (1.0 + label_impact)
        mean_w = w.mean(1, keepdim=True)
        w = torch.where(mean_w > 0, w / mean_w.clamp_min(1e-300), torch.ones_like(w))
        box = self.epsilon * w
        top = torch.nn.functional.one_hot(yhat, z.shape[1]).bool()
        lower_margin = top.to(z.dtype) - 1.0 / z.shape[1]
        step = self.step_fraction * box

        target = self.tau - 1e-9  # so that recomputing the risk of a released output cannot cross tau
        delta = torch.zeros_like(z)
        best, best_risk = delta.clone(), self._risk(z, y).detach()
        done = best_risk < target
        for _ in range(self.steps):
            if bool(done.all()):
                break
            d = delta.clone().requires_grad_(True)
            g, = torch.autograd.grad(self._risk(z + d, y).sum(), d)
            with torch.no_grad():
                # descend on the risk without ever raising the confidence: the predicted logit
                # may only go down, the others only up; where nothing is left (a softmax
                # rounded to one-hot, or a risk that locally rewards even more confidence)
                # step along the margin-lowering direction -(e_yhat - 1 / C) instead
                move = torch.where(top, (-g).clamp_max(0.0), (-g).clamp_min(0.0))
                move = torch.where((move == 0).all(1, keepdim=True), -lower_margin, move)
                new = torch.maximum(torch.minimum(delta + step * move.sign(), box), -box)
                new = self._project(z, new, yhat)
                delta = torch.where(done[:, None], delta, new)
                risk = self._risk(z + delta, y)
                better = (risk < best_risk) & ~done
                best = torch.where(better[:, None], delta, best)
                best_risk = torch.where(better, risk, best_risk)
                done = done | (risk < target)
        # shrink the feasible perturbations: smallest t in (0, 1] with r(z + t * delta) < tau
        with torch.no_grad():
            reached = best_risk < target
            lo, hi = torch.zeros(len(z), dtype=z.dtype), torch.ones(len(z), dtype=z.dtype)
            for _ in range(self.bisection):
                mid = (lo + hi) / 2
                ok = self._risk(z + mid[:, None] * best, y) < target
                hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
            t = torch.where(reached, hi, torch.ones_like(hi))
            delta = t[:, None] * best
            return delta - delta.mean(1, keepdim=True)

    def __call__(self, logits: np.ndarray, labels: np.ndarray | None = None) -> PerturbedOutputs:
        """Release ``logits`` (n, C) for queries labelled ``labels`` (the predicted labels if None)."""
        if self.epsilon is None:
            raise ValueError("set epsilon or call calibrate() on calibration outputs first")
        z_in = np.asarray(logits, dtype=np.float64)
        yhat_in = z_in.argmax(1)
        y_np = yhat_in if labels is None else np.asarray(labels, dtype=np.int64)
        z, y = torch.from_numpy(z_in), torch.from_numpy(y_np)
        risk_before = self.evaluator.risk(z_in, y_np)
        perturbed = risk_before >= self.tau
        out = z_in.copy()
        if perturbed.any():
            idx = np.flatnonzero(perturbed)
            out[idx] = (z[idx] + self._search(z[idx], y[idx])).numpy()
        changed = out.argmax(1) != yhat_in  # the label check
        out[changed] = z_in[changed]
        perturbed &= ~changed
        risk_after = self.evaluator.risk(out, y_np)
        p_in, p_out = _softmax(z_in), _softmax(out)
        diff = out - z_in
        diff -= diff.mean(1, keepdims=True)
        return PerturbedOutputs(out, p_out, perturbed, risk_after < self.tau, risk_before, risk_after,
                       np.linalg.norm(diff, axis=1), np.abs(p_out - p_in).sum(1), int(changed.sum()))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)

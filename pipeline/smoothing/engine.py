"""The Robust Privacy engine: the smoothed classifier of Cohen, Rosenfeld and Kolter ("Certified
Adversarial Robustness via Randomized Smoothing", ICML 2019), g(x) = argmax_c P(f(x + eps) = c),
eps ~ N(0, sigma^2 I). ``Smooth`` draws the Monte Carlo votes; the statistics on the counts are
in ``pipeline.smoothing.stats``:

* ``certify``: Algorithm CERTIFY (n0 selection draws, n fresh estimation draws).
* ``predict``: Algorithm PREDICT (binomial test of the top two counts of n draws).
* ``vote``: the always-return-a-label mode of the Robust Privacy paper's Section 7.2
  (majority vote, no test).

Noise modes (every result depends only on the seed, a key (the call number unless given)
and each input's position, or on a secret and the input's bytes, never on the chunk size or
the thread count):

* ``fresh``: every input gets its own i.i.d. draws, from a generator seeded by
  (seed, key, stream, position), as in Cohen et al.
* ``shared``: one noise bank per key and stream, used for every input of the call. For any
  single input the draws are still i.i.d. N(0, sigma^2 I) and independent of that input, so
  each input's certificate holds with probability >= 1 - alpha exactly as before. What
  changes is the joint behaviour: the errors of different inputs are correlated (an unlucky
  bank affects many inputs at once), so the *expected* fraction of wrong certificates is
  still <= alpha but its spread across runs is larger. The bank is pushed through the first
  linear layer once per call, f(x + eps) = tail(W x + b + W eps), which is what makes it fast.
* ``keyed``: every input gets its own i.i.d. draws, from a generator seeded by
  HMAC-SHA256(secret, stream, the input's float32 bytes). Distinct inputs get independent
  noise, so each certificate holds as with ``fresh``; the same input always gets the same
  draws, so a served model answers a repeated query identically and averaging repeated
  answers (docs/threats.md) learns nothing new.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import math
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from ..core.seeds import mix
from .stats import Certificate, certify_from_counts, predict_from_counts

SELECT, ESTIMATE, PREDICT, VOTE = range(4)  # noise streams: independent draws per purpose
MEMORY_SHARE = 0.5  # of a CUDA device's total memory, what one chunk's work may take (``Smooth._evaluations``)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, k: int) -> None:
        pass


def _bar(total: int, desc: str, shown: bool):
    """A progress bar over inputs; tqdm is imported only when one is shown, so the engine needs
    torch, numpy and scipy alone."""
    if not shown:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="input", mininterval=1.0)


def _pool_first(layers: list[nn.Module]) -> list[nn.Module]:
    """``layers`` with every ReLU - MaxPool2d pair swapped: max pooling commutes exactly with the
    (monotone) ReLU, max(relu(a), relu(b)) = relu(max(a, b)) bit for bit, and the ReLU then
    touches a quarter of the values."""
    out = list(layers)
    for i in range(len(out) - 1):
        if type(out[i]) is nn.ReLU and isinstance(out[i + 1], nn.MaxPool2d):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


class Smooth:
    """The smoothed version g of a base classifier ``base`` (inputs (M, d) -> logits (M, K)).

    ``chunk`` bounds the work in memory on the CPU: about that many noisy evaluations at a time.
    ``device`` (``pipeline.core.device.select``): where the base classifier runs and the noise is
    drawn (a generator on that device); counts come back as numpy arrays. On a CUDA device the
    chunk is sized to its memory instead (``_evaluations``). On the CPU the engine is the same
    code, byte for byte, as before the setting existed.

    If ``base`` is an ``nn.Sequential`` starting with ``nn.Linear`` W, the noise is drawn
    directly in that layer's output space (W eps, see ``_noise_factor``) and added to W x + b
    (and if ReLU and a second ``nn.Linear`` follow, those run as in ``_two_layers``);
    otherwise it is added to the input. All give f(x + eps) with eps ~ N(0, sigma^2 I).
    """

    def __init__(self, base: nn.Module, num_classes: int, sigma: float, noise: str = "fresh",
                 seed: int = 0, chunk: int = 32768, progress: bool = False, secret: bytes | None = None,
                 device: torch.device | str = "cpu"):
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if noise not in ("fresh", "shared", "keyed"):
            raise ValueError(f"noise must be 'fresh', 'shared' or 'keyed', got {noise!r}")
        if noise == "keyed" and not secret:
            raise ValueError("keyed noise needs a non-empty secret")
        base.eval()
        self.device = torch.device(device)
        if self.device.type != "cpu":
            base = copy.deepcopy(base).to(self.device)  # our own copy on the device
        self.num_classes, self.sigma = num_classes, float(sigma)
        self.noise, self.seed, self.chunk, self.progress, self.secret = noise, seed, chunk, progress, secret
        self.calls = 0
        self._local = threading.local()  # per-thread work buffers, kept between calls
        self.first = self.second = self.factor = self.scaled = None
        self.tail = base
        if isinstance(base, nn.Sequential):
            if isinstance(base[0], nn.Linear):
                self.first, base = base[0], base[1:]
                self.factor = self._noise_factor(self.first.weight.detach())
                self.scaled = self.sigma * self.factor  # sigma F: noise in the first layer's output space
                if len(base) >= 2 and type(base[0]) is nn.ReLU and isinstance(base[1], nn.Linear):
                    self.second, base = base[1], base[2:]
            # activations work in place on our own buffers (the base model is not modified)
            self.tail = nn.Sequential(*_pool_first([nn.ReLU(inplace=True) if type(m) is nn.ReLU else m for m in base]))
        # convolutions on the CPU run several times faster on channels-last images (our own copy)
        self.layout = (torch.channels_last if any(isinstance(m, nn.Conv2d) for m in self.tail.modules())
                       else torch.contiguous_format)
        if self.layout is torch.channels_last:
            self.tail = copy.deepcopy(self.tail).to(memory_format=self.layout)

    # -- the three procedures -------------------------------------------------------------
    def certify(self, x, n0: int, n: int, alpha: float, key: int | None = None, offset: int = 0) -> Certificate:
        """Cohen et al.'s CERTIFY for every row of ``x``."""
        keys = (key, key) if key is not None else (self._next_key(), self._next_key())
        counts0, counts = self.counts_passes(x, [(n0, SELECT, keys[0]), (n, ESTIMATE, keys[1])], offset)
        return certify_from_counts(counts0, counts, alpha, self.sigma)

    def predict(self, x, n: int, alpha: float, key: int | None = None, offset: int = 0) -> np.ndarray:
        """Cohen et al.'s PREDICT for every row of ``x``."""
        return predict_from_counts(self.counts(x, n, PREDICT, key, offset), alpha)

    def vote(self, x, n: int, key: int | None = None, offset: int = 0) -> np.ndarray:
        """Majority vote over n noisy copies, never abstaining (ties: the lowest class)."""
        return self.counts(x, n, VOTE, key, offset).argmax(axis=1)

    # -- Monte Carlo ------------------------------------------------------------------------
    @staticmethod
    def _noise_factor(w: torch.Tensor) -> torch.Tensor:
        """F with W eps ~ F z, z ~ N(0, I_k), for eps ~ N(0, I_d) and W of shape (h, d).

        W eps is N(0, W W^T). With h < d it is drawn from h normals instead of d:
        F = U diag(sqrt(lambda)) from W W^T = U diag(lambda) U^T (float64, then float32).
        """
        if w.shape[0] >= w.shape[1]:
            return w.float()
        lam, u = torch.linalg.eigh(w.double() @ w.double().T)
        return (u * lam.clamp_min(0).sqrt()).float()

    def counts(self, x, n: int, stream: int, key: int | None = None, offset: int = 0) -> np.ndarray:
        """Class counts (M, K) of f(x_i + eps_ij), j = 1..n, for each row x_i of ``x``.

        ``x`` is a tensor or anything with ``len`` and slicing that yields tensors (rows made
        on the fly). The noise depends on (seed, key, stream, row position); ``key`` defaults
        to this instance's call number, so repeated calls get fresh noise. Row i of ``x`` has
        position ``offset + i``, so a slice certified elsewhere (another process or machine)
        with its offset gets the same counts as inside the whole. Which thread runs a chunk,
        and how many rows a chunk holds, changes nothing.
        """
        key = self._next_key() if key is None else key
        return self.counts_passes(x, [(n, stream, key)], offset)[0]

    def _next_key(self) -> int:
        """This instance's call number, then one more: the default key of each pass."""
        key, self.calls = self.calls, self.calls + 1
        return key

    def counts_passes(self, x, passes: list[tuple[int, int, int]], offset: int = 0) -> list[np.ndarray]:
        """``counts`` for several passes (n, stream, key) over the same rows of ``x``, each
        exactly as its own call would give: a chunk of rows is made, and its first-layer
        product W x + b computed, once for all the passes."""
        outs = [np.zeros((len(x), self.num_classes), dtype=np.int64) for _ in passes]
        if len(x) == 0:
            return outs
        inputs = self._rows(x, 0, 1).shape[1:]
        shape = inputs if self.factor is None else self.factor.shape[1:]  # one standard-normal draw
        width = inputs if self.factor is None else self.factor.shape[:1]  # where f sees it
        banks = [None] * len(passes)
        if self.noise == "shared":
            banks = [self._scale(self._draw(self._seed(key, stream), n, shape)) for n, stream, key in passes]
            banks = [b.T.contiguous() for b in banks] if self.second is not None else banks  # (h, n) for _two_layers
        step = max(1, self._evaluations(shape, width) // max(n for n, _, _ in passes))  # rows per chunk

        @torch.inference_mode()
        def work(start: int) -> list[np.ndarray]:
            rows = self._rows(x, start, start + step)
            lifted = self._lift(rows, self.first) if self.first is not None else rows
            found = []
            for (n, stream, key), bank in zip(passes, banks):
                if bank is None:  # fresh or keyed: each row's draws from its own generator
                    draws = self._buffer("draws", (len(rows), n, *shape))
                    gen = self._generator()
                    for i, draw in enumerate(draws.unbind(0)):
                        row = rows[i] if self.noise == "keyed" else None
                        torch.randn(draw.shape, generator=gen.manual_seed(self._seed(key, stream, offset + start + i, row)),
                                    out=draw)
                if self.second is not None:
                    logits = self._two_layers(lifted, bank if bank is not None else draws, n)
                else:
                    noisy = self._buffer("noisy", (len(rows), n, *width))  # x + eps, or W x + b + W eps
                    if bank is not None:
                        torch.add(lifted[:, None], bank, out=noisy)
                    else:
                        self._scale(draws, out=noisy).add_(lifted[:, None])
                    flat = noisy.flatten(0, 1)
                    flat = flat.contiguous(memory_format=self.layout) if flat.dim() == 4 else flat
                    logits = self.tail(flat).view(len(rows), n, self.num_classes)
                found.append(self._count(logits))
            return found

        starts = list(range(0, len(x), step))
        names = ("select", "estimate", "predict", "vote")
        desc = f"sigma={self.sigma:g} " + " + ".join(f"{names[stream]} n={n}" for n, stream, _ in passes)
        with _bar(len(x), desc, self.progress) as bar:
            # one chunk at a time on a GPU (it is parallel itself), or with shared noise (see _map)
            for start, found in self._map(work, starts, parallel=self.noise != "shared" and self.device.type == "cpu"):
                for out, counts in zip(outs, found):
                    out[start:start + len(counts)] = counts
                bar.update(len(found[0]))
        return outs

    def line_counts(self, x: torch.Tensor, index: int, values, passes: list[tuple[int, int, int]]) -> list[np.ndarray]:
        """``counts_passes`` for the rows "``x`` with coordinate ``index`` set to each of
        ``values``" (a line through input space, such as a record's trajectory), with shared
        noise: every row of the line sees the same bank of each pass.

        For Linear W1 - ReLU - Linear W2 with two classes the line is solved exactly instead of
        row by row: with a(t) = a0 + t w the first-layer output at value t, a draw's margin
        l1 - l0 = c + sum over active units of v_h (a_h(t) + P_h) is piecewise linear in t,
        unit h switching on or off where a_h(t) + P_h = 0; the units active at each value come
        from those kinks (sorted search), the margins from cumulative sums (float64). The same
        f(x + eps) as the generic path, up to float rounding (a draw whose margin is within
        about 1e-6 of 0 may count differently). Other models take the generic path."""
        values = torch.as_tensor(np.asarray(values), dtype=torch.float32, device=self.device)
        if self.noise != "shared" or self.second is None or self.num_classes != 2 or len(self.tail):
            rows = torch.as_tensor(x).float().to(self.device).repeat(len(values), 1)
            rows[:, index] = values
            return self.counts_passes(rows, passes)
        w1, b1 = self.first.weight.detach().double(), self.first.bias.detach().double()
        w2, b2 = self.second.weight.detach().double(), self.second.bias.detach().double()
        x0 = torch.as_tensor(x).double().to(self.device).clone()
        x0[index] = 0.0
        a0, w = w1 @ x0 + b1, w1[:, index]
        v, c = w2[1] - w2[0], float(b2[1] - b2[0])
        order = torch.argsort(values.double(), stable=True)
        t = values.double()[order]
        width = len(t)
        outs = []
        for n, stream, key in passes:
            z = self._scale(self._draw(self._seed(key, stream), n, self.factor.shape[1:])).double() + a0  # (n, h)
            kink = -z / torch.where(w == 0, 1.0, w)
            rising, falling = (w > 0).expand_as(z), (w < 0).expand_as(z)
            lo = torch.where(rising, torch.searchsorted(t, kink.contiguous(), right=True), 0)  # first value with t > kink
            hi = torch.where(falling, torch.searchsorted(t, kink.contiguous()), width)  # first value with t >= kink
            hi = torch.where((w == 0) & (z <= 0), 0, hi)  # flat and off: never active
            active_sum = lambda coef: self._ranges(coef, lo, hi, width)  # noqa: E731 (per draw and value)
            margin = c + active_sum(v * z) + t * active_sum((v * w).expand_as(z))
            ones = (margin > 0).sum(0)
            counts = torch.empty(width, 2, dtype=torch.int64, device=self.device)
            counts[order] = torch.stack([n - ones, ones], 1)
            outs.append(counts.cpu().numpy())
        return outs

    @staticmethod
    def _ranges(coef: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, width: int) -> torch.Tensor:
        """Per row i and position p < ``width``, the sum of coef[i, h] over the h with
        lo[i, h] <= p < hi[i, h] (a difference array, then a cumulative sum)."""
        diff = torch.zeros(len(coef), width + 1, dtype=coef.dtype, device=coef.device)
        diff.scatter_add_(1, lo, coef).scatter_add_(1, hi, -coef)
        return diff.cumsum(1)[:, :width]

    @staticmethod
    def _map(work, starts: list[int], parallel: bool):
        """Yield (start, work(start)) in order. ``parallel``: chunks run in threads, one torch
        thread each, so torch's own idle worker threads never spin against them (fresh noise
        is bound by its per-row generators); otherwise one chunk at a time on torch's threads
        (shared noise is bound by memory bandwidth, which torch's threads already use)."""
        if not parallel:
            yield from ((start, work(start)) for start in starts)
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(threads) as pool:
                pending = deque()  # at most 4 chunks a thread in flight (no future per chunk of 2M rows), no barrier
                for start in starts:
                    pending.append((start, pool.submit(work, start)))
                    if len(pending) >= 4 * threads:
                        first, future = pending.popleft()
                        yield first, future.result()
                yield from ((first, future.result()) for first, future in pending)
        finally:
            torch.set_num_threads(threads)

    def _evaluations(self, shape, width) -> int:
        """Noisy evaluations per chunk: ``chunk`` on the CPU. On a CUDA device, as many as fit in
        ``MEMORY_SHARE`` of its total memory at ``_evaluation_bytes`` each, rounded down to a power
        of two: a property of the device and the model, not of what else holds memory at the
        time, so a GPU run chunks, and rounds, the same way each time on its device. The chunk
        changes no random draw (each row's noise comes from its own seed, a shared bank is drawn
        once per call), so counts depend on it at most through the float rounding of the
        device's batched kernels."""
        if self.device.type != "cuda":
            return self.chunk
        total = torch.cuda.get_device_properties(self.device).total_memory
        fit = int(MEMORY_SHARE * total) // self._evaluation_bytes(shape, width)
        return 1 << max(0, fit.bit_length() - 1)

    def _evaluation_bytes(self, shape, width) -> int:
        """Device memory of one noisy evaluation (float32): its standard-normal draw (none with a
        shared bank), its noisy input or hidden layer, and twice the tail's largest activation (a
        layer's input and output), measured on one zero input with forward hooks."""
        tail_in = (self.second.out_features,) if self.second is not None else tuple(width)
        sizes = [int(np.prod(tail_in))]

        def record(_module, _inputs, out):
            sizes.append(out.numel() if isinstance(out, torch.Tensor) else 0)
        hooks = [m.register_forward_hook(record) for m in self.tail.modules()]
        try:
            with torch.inference_mode():
                probe = torch.zeros(1, *tail_in, device=self.device)
                self.tail(probe.contiguous(memory_format=self.layout) if probe.dim() == 4 else probe)
        finally:
            for hook in hooks:
                hook.remove()
        draw = 0 if self.noise == "shared" else int(np.prod(shape))
        return 4 * (draw + int(np.prod(width)) + 2 * max(sizes))

    def _buffer(self, name: str, shape) -> torch.Tensor:
        """A work buffer of this thread, grown when needed (no page faults per chunk)."""
        size = math.prod(shape)
        buf = getattr(self._local, name, None)
        if buf is None or buf.numel() < size:
            buf = torch.empty(size, device=self.device)
            setattr(self._local, name, buf)
        return buf[:size].view(*shape)

    def _generator(self) -> torch.Generator:
        """This thread's generator on the device, reseeded for every row (``manual_seed`` resets
        all of its state, so the draws are those of a new generator with that seed)."""
        gen = getattr(self._local, "generator", None)
        if gen is None:
            gen = self._local.generator = torch.Generator(self.device)
        return gen

    def _rows(self, x, start: int, stop: int) -> torch.Tensor:
        return torch.as_tensor(x[start:stop]).float().to(self.device)

    def input_noise(self, row: torch.Tensor, n: int, stream: int, key: int, position: int = 0) -> torch.Tensor:
        """The n noise vectors (n, *row.shape) that ``counts`` adds to the input ``row`` at
        ``position``, in input space, for checking the engine against a plain loop: f(row + e_j)
        is the engine's j-th evaluation, up to float rounding. With the first-layer factor F
        (h < d) the engine draws W eps = sigma F z, z ~ N(0, I_h); the vector returned is
        sigma W^+ F z, which W maps to the same point (W W^+ = I for W of full row rank)."""
        seed = self._seed(key, stream, position, torch.as_tensor(row).float())
        if self.factor is None or self.factor.shape[1] == row.shape[-1]:  # draws live in input space
            return (self.sigma * self._draw(seed, n, row.shape)).cpu()
        lift = self.factor.double().T @ torch.linalg.pinv(self.first.weight.detach().double()).T
        return (self.sigma * self._draw(seed, n, self.factor.shape[1:]).double() @ lift).float().cpu()

    def _seed(self, key: int, stream: int, position: int = 0, row: torch.Tensor | None = None) -> int:
        """Seed of the standard-normal draws: one bank per (key, stream) with shared noise, one
        per (key, stream, position) with fresh noise, one per (stream, row bytes) with keyed."""
        if self.noise == "keyed":
            message = stream.to_bytes(8, "little") + row.contiguous().cpu().numpy().tobytes()
            return int.from_bytes(hmac.new(self.secret, message, hashlib.sha256).digest()[:8], "little") >> 1
        return mix(self.seed, key, stream) if self.noise == "shared" else mix(self.seed, key, stream, position)

    def _draw(self, seed: int, n: int, shape) -> torch.Tensor:
        return torch.randn(n, *shape, generator=torch.Generator(self.device).manual_seed(seed), device=self.device)

    def _scale(self, z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Standard normal z -> sigma * eps (input space) or sigma * W eps (first-layer space)."""
        if self.factor is None:
            return torch.mul(z, self.sigma, out=out)
        return torch.matmul(z, self.scaled.T, out=out)

    def _two_layers(self, a: torch.Tensor, noise: torch.Tensor, n: int) -> torch.Tensor:
        """Logits (C, n, K) for Linear W1 - ReLU - Linear W2 - tail, hidden units as the middle
        axis so that W2 is one matrix product per row: relu(a + P) W2^T = max(P, -a) W2^T + a W2^T
        with a = W1 x + b1 (given, for rows x) and P = W1 eps (one pass over the hidden
        activations, not three).
        For two classes and no tail, the margin l1 - l0 (C, n) instead: label 1 iff it is > 0.
        ``noise``: the shared bank W eps as (h, n), or fresh standard-normal draws (C, n, k)."""
        hidden = self._buffer("hidden", (len(a), a.shape[1], n))
        if noise.dim() == 2:
            torch.maximum(noise, -a[:, :, None], out=hidden)
        else:
            torch.matmul(self.scaled, noise.transpose(1, 2), out=hidden)
            torch.maximum(hidden, -a[:, :, None], out=hidden)
        w2 = self.second.weight.detach()  # a plain tensor: matmul with a Parameter takes a slow path
        shift = self._lift(a, self.second)  # W2 a + b2
        if self.num_classes == 2 and not len(self.tail):  # only the sign of l1 - l0 matters: one row
            margin = torch.matmul((w2[1] - w2[0])[None], hidden)[:, 0]
            return margin.add_((shift[:, 1] - shift[:, 0])[:, None])
        y = torch.matmul(w2, hidden).add_(shift[:, :, None])
        if len(self.tail):
            return self.tail(y.transpose(1, 2).flatten(0, 1)).view(len(a), -1, self.num_classes)
        return y.transpose(1, 2)

    def _count(self, logits: torch.Tensor) -> np.ndarray:
        """Per-row class counts of argmax labels (ties go to the lowest class), from logits
        (C, n, K) or, for two classes, margins l1 - l0 (C, n)."""
        if self.num_classes == 2:  # the same labels as argmax, in one comparison
            ones = (logits > 0 if logits.dim() == 2 else logits[..., 1] > logits[..., 0]).sum(dim=1)
            return torch.stack([logits.shape[1] - ones, ones], dim=1).cpu().numpy()
        rows, k = len(logits), self.num_classes
        labels = logits.argmax(dim=-1) + torch.arange(rows, device=logits.device)[:, None] * k
        return torch.bincount(labels.flatten(), minlength=rows * k).view(rows, k).cpu().numpy()

    @staticmethod
    def _lift(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        """W x + b, computed row by row (an elementwise product and sum, so a row's value does
        not depend on how many rows share the call, unlike a small-batch BLAS path)."""
        return (x[:, None, :] * layer.weight.detach()).sum(-1) + layer.bias.detach()

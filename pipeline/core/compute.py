"""Where the Monte Carlo work runs: consecutive chunks of rows, in this process or as Ray tasks.

``map_rows(fn, total, compute, desc, **shared)`` yields ``fn(start, stop, **shared)`` for the
chunks [0, c), [c, 2c), ... of ``range(total)`` (c = ``compute.chunk`` rows), in order. A task
certifies its rows with the engine's ``offset=start`` (``pipeline.smoothing``), and the noise
depends only on the seed, a key, a stream and each row's position, so the results do not
depend on the backend, the chunk size or how many workers share the chunks.

``backend: local`` runs the chunks in this process, whose torch threads use every core for
the large vectorised chunks of the smoothing engine; tasks that cannot use them (training a
small model: ``spread=True``) are spread over a pool of ``compute.workers`` spawned processes
with one torch thread each (0 = one per core; 1 = this process), results in order.

``backend: ray`` submits one Ray task per chunk (``compute.ray.cpus``/``gpus`` each, retried
up to ``max_retries`` times when its worker dies), ships this package to the workers with the
job (so every node runs the driver's engine code), and puts ``shared`` in the object store
once. The driver shows one progress bar over all chunks.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from typing import Callable, Iterator

from tqdm.auto import tqdm

from .errors import PipelineError


def spans(total: int, rows: int) -> list[tuple[int, int]]:
    """[(0, rows), (rows, 2 rows), ..., (.., total)]: the chunks covering range(total)."""
    return [(start, min(start + rows, total)) for start in range(0, total, rows)]


def map_rows(fn: Callable, total: int, compute: dict, desc: str, progress: bool = True, unit: str = "input",
             spread: bool = False, **shared) -> Iterator:
    """Yield ``fn(start, stop, **shared)`` for every chunk of ``range(total)``, in order
    (``spread``: single-threaded tasks, run on the local pool).

    ``fn`` must be a module-level function of this package (Ray workers import it by name).
    """
    chunks = spans(total, compute["chunk"])
    backend = _ray_map if compute["backend"] == "ray" else _local_map
    with tqdm(total=total, desc=f"{desc} ({compute['backend']})", unit=unit, mininterval=1.0,
              disable=not progress) as bar:
        yield from backend(fn, chunks, compute, shared, bar, spread)


def workers(compute: dict) -> int:
    """The local backend's processes: ``compute.workers``, 0 = one per core."""
    return compute.get("workers", 1) or os.cpu_count() or 1


def _single_thread() -> None:
    import torch
    torch.set_num_threads(1)


def _call(task):
    fn, start, stop, shared = task
    return fn(start, stop, **shared)


def _local_map(fn, chunks, compute, shared, bar, spread):
    processes = min(workers(compute), len(chunks)) if spread else 1
    if processes <= 1:
        for start, stop in chunks:
            result = fn(start, stop, **shared)
            bar.update(stop - start)
            yield result
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    pool = context.Pool(processes, initializer=_single_thread)
    try:
        tasks = [(fn, start, stop, shared) for start, stop in chunks]
        for (start, stop), result in zip(chunks, pool.imap(_call, tasks)):
            bar.update(stop - start)
            yield result
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _ray_map(fn, chunks, compute, shared, bar, spread):
    ray = connect(compute["ray"])
    cfg = compute["ray"]
    refs = {k: ray.put(v) for k, v in shared.items()}  # once, not once per task
    task = ray.remote(fn).options(num_cpus=cfg["cpus"], num_gpus=cfg["gpus"], max_retries=cfg["max_retries"])
    futures = [task.remote(start, stop, **refs) for start, stop in chunks]
    index = {ref: i for i, ref in enumerate(futures)}
    pending, done, next_ = list(futures), set(), 0
    while next_ < len(futures):
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:  # progress as chunks finish, in whatever order
            i = index[ref]
            done.add(i)
            bar.update(chunks[i][1] - chunks[i][0])
        while next_ in done:  # results in order
            yield ray.get(futures[next_])
            futures[next_] = None  # let the object store free it
            next_ += 1


# Ray Client (a ray:// address): the head starts a server process per job, which can fail to come
# up on a busy head; Ray then reports this and the next connection usually succeeds.
CLIENT_STARTUP, CLIENT_ATTEMPTS = "Starting Ray client server failed", 3


def connect(cfg: dict):
    """Import Ray and join the cluster at ``cfg['address']`` (``""``: the one in ``RAY_ADDRESS``
    if set, else a new local instance with ``cfg['local_cpus']`` CPUs, 0 = every core) unless
    this process already has, with this package in the job's runtime environment. Returns the
    ``ray`` module."""
    import pipeline

    try:
        import ray
    except ImportError:
        raise PipelineError("params.yaml: compute.backend is 'ray' but Ray is not installed; "
                            "fix: pip install -e '.[ray]', or set compute.backend: local") from None
    if not ray.is_initialized():
        address = cfg["address"] or None  # None: Ray's own rule, RAY_ADDRESS if set, else a new instance
        new = address is None and not os.environ.get("RAY_ADDRESS")
        local = {"num_cpus": cfg["local_cpus"] or None, "include_dashboard": False} if new else {}
        for attempt in range(1, CLIENT_ATTEMPTS + 1):
            try:
                ray.init(address=address, runtime_env={"py_modules": [os.path.dirname(pipeline.__file__)]},
                         logging_level=logging.WARNING, **local)
                break
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if CLIENT_STARTUP in str(exc) and attempt < CLIENT_ATTEMPTS:
                    ray.shutdown()
                    print(f"Ray Client: the head's server for this job did not start (attempt {attempt} of "
                          f"{CLIENT_ATTEMPTS}); retrying", file=sys.stderr)
                    continue
                raise PipelineError(f"params.yaml: cannot reach the Ray cluster at compute.ray.address = "
                                    f"{cfg['address']!r} ({exc}); fix: start it (docs/cluster.md) "
                                    f"or set the address to \"\" for a local instance") from None
    return ray

"""The certify stage's work (``certify_table``, sigma = 1) on the local backend against local Ray
instances with 1 and 2 workers (1 CPU each), on the same inputs and params.

    .venv/bin/python bench/cluster.py            # table, then one JSON line
    .venv/bin/python bench/cluster.py --json     # the JSON line only

Uses the pipeline's trained model and test inputs when `make repro` has run (``bench/certify.py``
``load_inputs``), params.yaml's smoothing and compute.chunk. For Ray, ``startup_s`` is starting
the instance and its workers (a small untimed-for-throughput call that imports torch in every
worker); ``seconds`` is then the full call. ``identical`` checks the tables against the local
backend's, byte for byte as the stage writes them. Setting up Ray and reading the figures:
docs/cluster.md.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._args import parser as make_parser, positive_int  # noqa: E402
from bench.certify import load_inputs  # noqa: E402
from pipeline.core.cli import execute  # noqa: E402
from pipeline.core.compute import connect  # noqa: E402
from pipeline.core.params import load_params  # noqa: E402
from pipeline.smoothing.certification import certify_table  # noqa: E402


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--inputs", type=positive_int, default=40000,
                        help="test inputs to certify (the synthetic data set's test split has 40,000)")
    parser.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2],
                        help="sizes of the local Ray instances to try, workers of 1 CPU each")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def run(args) -> None:
    params = load_params(ROOT / "params.yaml")
    cfg, chunk = params["smoothing"], params["compute"]["chunk"]
    model, x, source = load_inputs(args.inputs, params["train"]["hidden"])
    y = (x[:, 0] > 0).long().numpy()  # labels only fill the `correct` column; speed does not depend on them

    def timed_table(compute, rows=len(x)):
        start = time.perf_counter()
        table = certify_table(model, x[:rows], y[:rows], 1.0, cfg, params["seed"], 1.0, compute, progress=False)
        return table.to_csv(sep="\t", index=False, float_format="%.6f"), time.perf_counter() - start

    local = {"backend": "local", "chunk": chunk}
    timed_table(local, 64)  # warm-up: allocations and thread start-up
    reference, t_local = timed_table(local)
    result = {"inputs": len(x), "chunk_rows": chunk, "n0": cfg["n0"], "n": cfg["n"], "local_seconds": t_local}
    for workers in args.workers:
        ray_cfg = {**params["compute"]["ray"], "address": "", "local_cpus": workers, "cpus": 1}
        start = time.perf_counter()
        ray = connect(ray_cfg)
        compute = {"backend": "ray", "chunk": max(1, 64 // workers), "ray": ray_cfg}
        timed_table(compute, 64)  # starts every worker
        startup = time.perf_counter() - start
        table, seconds = timed_table({**compute, "chunk": chunk})
        ray.shutdown()
        result.update({f"ray{workers}_startup_s": startup, f"ray{workers}_seconds": seconds,
                       f"ray{workers}_speedup": t_local / seconds, f"ray{workers}_identical": table == reference})
    if not args.json:
        print(f"{len(x)} inputs ({source}), sigma=1, N0={cfg['n0']}, N={cfg['n']}, noise={cfg['noise']}, "
              f"chunk {chunk} rows")
        print(f"{'backend':22s} {'start-up s':>10s} {'seconds':>8s} {'speed-up':>9s} {'identical':>9s}")
        print(f"{'local':22s} {'':>10s} {t_local:8.1f} {1.0:9.2f} {'':>9s}")
        for w in args.workers:
            print(f"{f'ray, {w} worker(s)':22s} {result[f'ray{w}_startup_s']:10.1f} {result[f'ray{w}_seconds']:8.1f} "
                  f"{result[f'ray{w}_speedup']:9.2f} {str(result[f'ray{w}_identical']):>9s}")
    print(json.dumps(result))


if __name__ == "__main__":
    execute(run, build_parser())

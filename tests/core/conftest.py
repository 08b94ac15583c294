"""Fixtures and helpers of the scale-out tests (test_cluster.py: the backends on a local Ray
instance; test_cluster_stages.py: the stages on Ray, on a two-node cluster, with a team's MLflow
server and DVC remote), split in two files so that pytest-xdist runs them side by side."""
import secrets
import shutil
import socket
import tempfile
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cfg(address="", cpus=1, **kw):
    return {"address": address, "local_cpus": 2, "cpus": cpus, "gpus": 0, "max_retries": 3, **kw}


@pytest.fixture(scope="module")
def ray_env():
    """Environment of every Ray process here: its own temp dir and token, fast shutdown. The dir
    is a short path of its own: Ray's socket paths must stay under 108 bytes."""
    tmp = Path(tempfile.mkdtemp(prefix="ray-"))
    (tmp / "token").write_text(secrets.token_hex(32))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"RAY_TMPDIR": str(tmp), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp / "token"),
                           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "RAY_USAGE_STATS_ENABLED": "0"}.items():
            mp.setenv(key, value)
        yield tmp
    shutil.rmtree(tmp, ignore_errors=True)

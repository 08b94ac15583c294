"""Atomic writes and clear errors for missing or corrupt pipeline files."""
import json

import numpy as np
import pytest
import torch

from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path, load_state, read_json, read_npz, save_state, write_json, write_npz


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("killed mid-write")
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_failed_rewrite_keeps_the_previous_complete_file(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"accuracy": 0.5})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise RuntimeError
    assert json.loads(target.read_text()) == {"accuracy": 0.5}


def test_round_trips(tmp_path):
    write_npz(tmp_path / "a.npz", {"x": np.arange(3)})
    assert read_npz(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]
    model = torch.nn.Linear(2, 1)
    save_state(tmp_path / "m.pt", model)
    assert torch.equal(load_state(tmp_path / "m.pt")["weight"], model.weight.detach())


@pytest.mark.parametrize("reader, name", [(read_json, "meta.json"), (read_npz, "data.npz"), (load_state, "m.pt")])
def test_missing_and_corrupt_files_name_the_file_and_the_fix(tmp_path, reader, name):
    path = tmp_path / name
    with pytest.raises(PipelineError, match="missing; fix: run `dvc repro`"):
        reader(path)
    path.write_bytes(b"\x00garbage{")
    with pytest.raises(PipelineError) as err:
        reader(path)
    assert str(path) in str(err.value) and "dvc repro --force" in str(err.value)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([object()], dtype=object))
    with pytest.raises(PipelineError, match="unreadable"):
        read_npz(path)


def test_a_process_killed_mid_write_leaves_the_previous_file_and_a_rerun_completes(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    target = tmp_path / "metrics" / "out.json"
    write_json(target, {"complete": 1})
    child = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from pipeline.core.io import atomic_path
with atomic_path({str(target)!r}) as tmp:
    with open(tmp, "w") as f:
        f.write('{{"half": ')
        f.flush()
        print("ready", flush=True)
        time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert json.loads(target.read_text()) == {"complete": 1}  # never the half-written file
    leftovers = [p.name for p in target.parent.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].startswith(".out.json.") and leftovers[0].endswith(".tmp")
    write_json(target, {"complete": 2})  # the re-run
    assert json.loads(target.read_text()) == {"complete": 2}


def test_code_in_data_files_is_refused(tmp_path):
    from pipeline.core.params import load_params

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(1), "evil": Evil()}, path)
    with pytest.raises(PipelineError):
        load_state(path)
    params = tmp_path / "params.yaml"
    params.write_text("seed: !!python/object/apply:os.system ['echo executed']\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_params(params)


def test_the_same_state_dict_gives_the_same_bytes(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_state(tmp_path / "a.pt", model)
    save_state(tmp_path / "b.pt", model)  # the temporary file's name must not leak into the archive
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()

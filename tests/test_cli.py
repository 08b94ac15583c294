"""Every stage and bench script answers ``--help`` with its options' defaults, and a bad argument
ends in one line on stderr naming it, exit code 2 and no traceback (run in-process with runpy)."""
import runpy
import sys

import pytest

from tests.helpers import ROOT

STAGES = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")
BENCHES = sorted(p.name for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))
REQUIRED = {"stages.certify": ["--sigma", "1.0"], "stages.train_classifier": ["--kind", "target"],
            "stages.train_dpsgd": ["--task", "images"]}


def run(target: str, *args: str, monkeypatch, capsys) -> tuple[int, str, str]:
    """Run a stage (module name) or a bench script (path) as ``__main__``; (exit code, out, err)."""
    bench = target.endswith(".py")
    monkeypatch.setattr(sys, "argv", [target if bench else f"{target}.py", *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(target, run_name="__main__") if bench else runpy.run_module(target, run_name="__main__",
                                                                                     alter_sys=True)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.mark.parametrize("script", [f"stages.{s}" for s in STAGES] + [str(ROOT / "bench" / b) for b in BENCHES])
def test_help_and_a_bad_option(script, monkeypatch, capsys):
    code, out, _ = run(script, "--help", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and out.startswith("usage: python") and "--help" in out
    code, _, err = run(script, *REQUIRED.get(script, []), "--no-such-option", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "--no-such-option" in err and "--help" in err
    assert "Traceback" not in err


def test_options_with_a_value_show_their_defaults(monkeypatch, capsys):
    for bench in BENCHES:
        _, out, _ = run(str(ROOT / "bench" / bench), "--help", monkeypatch=monkeypatch, capsys=capsys)
        options = [line for line in out.splitlines() if line.strip().startswith("--") and "=" not in line]
        assert "(default:" in out or not options, f"{bench}: --help shows no defaults"


def test_a_bad_value_names_the_argument(monkeypatch, capsys):
    code, _, err = run("stages.certify", "--sigma", "abc", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "--sigma" in err and "'abc' is not a number" in err
    code, _, err = run("stages.train_classifier", "--kind", "critic", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "--kind" in err and "invalid choice" in err

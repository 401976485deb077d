"""`minisg check` runs the student's file in a worker process: a file that exits, loops forever,
crashes or is killed fails the exercise it was running (every exercise when it happens on
import) with a one-line message, the other exercises are still graded, and nothing passes
silently. The hostile files are the reference solutions with one line changed."""
import time
from pathlib import Path

import pytest

from minisg.classroom import grading as check

SOLUTIONS = Path(__file__).resolve().parent / "exercise_solutions"
EXP_BACKWARD = "return g * F.exp(self.inputs[0])"         # 01.1's Exp.backward; 01.2 and 01.3 don't call it
NOISE_STDEVS = "flat = np.asarray(x, dtype=np.float64)"    # 06.1's noise_stdevs; 06.2 calls it


def hostile(tmp_path, lesson, old=None, new=None, append="", name="hostile"):
    (source,) = SOLUTIONS.glob(f"ex{lesson}_*.py")
    text = source.read_text()
    if old is not None:
        assert text.count(old) == 1
        text = text.replace(old, new + old)
    path = tmp_path / f"ex{lesson}_{name}.py"
    path.write_text(text + append)
    return path


def by_number(results):
    return {r.number: r for r in results}


def test_sys_exit_on_import_fails_every_exercise_and_main_says_so(tmp_path, capsys):
    path = hostile(tmp_path, "06", append="\nimport sys\nsys.exit(0)\n")
    assert check.main("06", file=str(path)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"checking {path}"
    for line, number in zip(out[1:3], ("06.1", "06.2")):
        assert line.startswith(f"FAIL {number} ") and "the file called sys.exit(0) while being imported" in line
    assert out[3:] == ["0 of 2 exercises pass"]


def test_sys_exit_in_a_function_fails_each_exercise_that_calls_it(tmp_path):
    results = by_number(check.run("06", file=hostile(tmp_path, "06", NOISE_STDEVS, "import sys; sys.exit(3); ")))
    assert results["06.1"].message == "the file called sys.exit(3) while running exercise 06.1"
    assert results["06.2"].message == "the file called sys.exit(3) while running exercise 06.2"
    assert not any(r.passed for r in results.values())


def test_os_exit_fails_that_exercise_and_the_others_are_still_graded(tmp_path):
    results = by_number(check.run("01", file=hostile(tmp_path, "01", EXP_BACKWARD, "import os; os._exit(0); ")))
    assert not results["01.1"].passed
    assert "ended the grading process while running exercise 01.1: exit status 0 (os._exit(0)?)" \
        in results["01.1"].message
    assert results["01.2"].passed and results["01.3"].passed

    results = check.run("01", file=hostile(tmp_path, "01", append="\nimport os\nos._exit(0)\n", name="on_import"))
    assert [r.passed for r in results] == [False] * 3
    assert all("while being imported: exit status 0" in r.message for r in results)


@pytest.mark.parametrize("name,shown", [("SIGSEGV", "crashed while running exercise 01.1: SIGSEGV"),
                                        ("SIGKILL", "was killed while running exercise 01.1: SIGKILL")])
def test_a_crash_or_a_kill_fails_that_exercise_and_the_others_are_still_graded(tmp_path, name, shown):
    path = hostile(tmp_path, "01", EXP_BACKWARD, f"import os, signal; os.kill(os.getpid(), signal.{name}); ")
    results = by_number(check.run("01", file=path))
    assert not results["01.1"].passed and shown in results["01.1"].message, results["01.1"].line()
    assert results["01.2"].passed and results["01.3"].passed


def test_an_endless_loop_fails_with_the_time_limit(tmp_path):
    path = hostile(tmp_path, "01", EXP_BACKWARD, "while True:\n            pass\n        ")
    start = time.monotonic()
    results = by_number(check.run("01", file=path, time_limit=1.5))
    assert time.monotonic() - start < 15
    assert results["01.1"].message == "exercise 01.1 took longer than 1.5 s (time limit); an endless loop?"
    assert check.TIME_LIMIT_VARIABLE in results["01.1"].hint
    assert results["01.2"].passed and results["01.3"].passed


def test_an_endless_loop_on_import_fails_every_exercise_and_the_limit_comes_from_the_environment(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(check.TIME_LIMIT_VARIABLE, "1")
    path = hostile(tmp_path, "06", append="\nwhile True:\n    pass\n")
    start = time.monotonic()
    assert check.main("06", file=str(path)) == 1
    assert time.monotonic() - start < 15
    out = capsys.readouterr().out
    assert out.count("importing the file took longer than 1 s (time limit); an endless loop?") == 2


def test_the_default_time_limit_is_generous_and_a_bad_one_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(check.TIME_LIMIT_VARIABLE, raising=False)
    assert check.TIME_LIMIT >= 60 and check.time_limit_seconds() == check.TIME_LIMIT
    path = str(hostile(tmp_path, "06"))
    assert check.main("06", file=path, time_limit=0) == 2
    assert "time_limit: expected a finite number of seconds > 0, got 0" in capsys.readouterr().err
    monkeypatch.setenv(check.TIME_LIMIT_VARIABLE, "soon")
    assert check.main("06", file=path) == 2
    assert f"{check.TIME_LIMIT_VARIABLE}: expected a finite number of seconds > 0, got 'soon'" in capsys.readouterr().err
    assert check.main("06", file=path, time_limit=30) == 0   # the argument wins over the environment


def test_a_file_that_rebinds_library_functions_does_not_spoil_the_next_one(tmp_path):
    spoiler = hostile(tmp_path, "01", append="\nimport numpy\nF.exp = None\nnumpy.exp = None\n", name="spoiler")
    assert not check.run("01.1", file=spoiler)[0].passed
    for result in check.run("01", file=SOLUTIONS / "ex01_autodiff.py"):
        assert result.passed, result.line()


def test_the_file_runs_in_the_callers_current_folder(tmp_path, monkeypatch):
    check.run("06", file=hostile(tmp_path, "06"))       # a worker that started elsewhere, maybe
    work = tmp_path / "work"
    work.mkdir()
    (work / "noise.txt").write_text("0.25")
    monkeypatch.chdir(work)
    path = hostile(tmp_path, "06", NOISE_STDEVS, "assert open('noise.txt').read() == '0.25'; ", name="reads")
    assert all(r.passed for r in check.run("06", file=path))

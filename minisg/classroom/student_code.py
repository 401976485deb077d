"""The student's file, loaded and checked in the process that grades it (the worker's side).

    load_exercise_file(path) -> module      executes the file as a fresh module
    run_one(exercise, module, path) -> Result   one check; whatever the student's code raises
                                                 (an exception, sys.exit) becomes a FAIL line

A failure is told what went wrong, then: for a mistake a check recognises, the hint written for
it (Result.hint); for an untouched stub and for any other wrong answer or error, where to read
(Result.reading, from Exercise.reading()). Never the exercise's own hint, its approach: only
``minisg check --hint`` prints that. registry.py lists the cases.
"""
import re
import sys
import traceback
import types
import warnings
from pathlib import Path

import numpy as np

from .expect import Mismatch
from .registry import NOT_IMPLEMENTED, Result, exercise_by_number


def load_exercise_file(path):
    """Execute the student's file as a fresh module (no bytecode cache: edits always count).

    It is registered in sys.modules under a private name while it is graded (dataclasses and
    the like look their module up there); the worker removes it afterwards.
    """
    name = f"minisg_exercise_{Path(path).stem}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    code = compile(Path(path).read_text(encoding="utf-8"), str(path), "exec")
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def describe(error, path):
    """'TypeError: message (line 12, in f)' with the last line of the student's file involved."""
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    if isinstance(error, SyntaxError) and error.lineno:
        return f"{type(error).__name__}: {error.msg} (line {error.lineno})"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    if frames:
        text += f" (line {frames[-1].lineno}, in {frames[-1].name})"
    return text


def exit_call(error):
    """How a SystemExit was raised: 'sys.exit(3)', 'sys.exit()'."""
    return "sys.exit()" if error.code is None else f"sys.exit({error.code!r})"


EXIT_HINT = ("the grader imports your file and calls its functions: remove the exit call (code meant to run "
             "only as a script goes under `if __name__ == \"__main__\":`)")


def run_one(item, module, path):
    missing = [name for name in item.names if not hasattr(module, name)]
    if missing:
        return Result(item.number, item.title, False, f"{', '.join(missing)} is not defined in {path}",
                      "keep the names of the stub file")
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            item.check(module)
    except NotImplementedError as error:
        unsolved = _unsolved_exercise(error, item)
        if unsolved is not None:
            needs = f" (needs Exercise {unsolved.number})" if unsolved is not item else ""
            return Result(item.number, item.title, False, NOT_IMPLEMENTED + needs, reading=unsolved.reading())
        return _error_result(item, error, path)
    except Mismatch as error:  # error.hint: the hint for a recognised mistake, else None
        return Result(item.number, item.title, False, str(error), error.hint or "", item.reading())
    except SystemExit as error:
        return Result(item.number, item.title, False,
                      f"the file called {exit_call(error)} while running exercise {item.number}", EXIT_HINT)
    except BaseException as error:  # noqa: BLE001 -- any error of the student's code is a result
        return _error_result(item, error, path)
    return Result(item.number, item.title, True)


def _error_result(item, error, path):
    """An error of the student's code: what was raised, and where to read."""
    return Result(item.number, item.title, False, f"your code raised {describe(error, path)}",
                  reading=item.reading())


def _unsolved_exercise(error, item):
    """The Exercise whose stub raised `error`: the one its message names ("Exercise 02.1"), `item`
    for a bare NotImplementedError; None for one with another message (not a stub's)."""
    named = re.fullmatch(r"Exercise (\d\d\.\d+)", str(error))
    if named:
        try:
            return exercise_by_number(named.group(1))
        except KeyError:
            return item
    return item if not str(error) else None

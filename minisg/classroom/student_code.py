"""The student's file, loaded and checked in the process that grades it (the worker's side).

    load_exercise_file(path) -> module      executes the file as a fresh module
    run_one(exercise, module, path) -> Result   one check; whatever the student's code raises
                                                 (an exception, sys.exit) becomes a FAIL line
"""
import re
import sys
import traceback
import types
import warnings
from pathlib import Path

import numpy as np

from .expect import Mismatch
from .registry import Result


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
        other = re.search(r"Exercise (\d\d\.\d+)", str(error))
        needs = f" (needs Exercise {other.group(1)})" if other and other.group(1) != item.number else ""
        return Result(item.number, item.title, False, "not implemented yet" + needs, item.hint)
    except Mismatch as error:
        return Result(item.number, item.title, False, str(error), error.hint or item.hint)
    except SystemExit as error:
        return Result(item.number, item.title, False,
                      f"the file called {exit_call(error)} while running exercise {item.number}", EXIT_HINT)
    except BaseException as error:  # noqa: BLE001 -- any error of the student's code is a result
        return Result(item.number, item.title, False, f"your code raised {describe(error, path)}", item.hint)
    return Result(item.number, item.title, True)

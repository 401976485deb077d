"""Grade the classroom exercises: ``minisg check NN [--file PATH] [--hint]``.

Every exercise NN.k in ``lessons/exercises/exNN_*.py`` has a check in checks_*.py. A check calls
the student's functions on small seeded inputs (float64, tiny models built with minisg.nn, no
trained checkpoints) and compares the answers with finite differences, with the properties in
minisg/methods/METHODS.md (SmoothGrad at noise 0 is the gradient, IG is exact on a bias-free
ReLU net, 0 < alpha <= 1/2, ...) and with minisg's own implementation. Each check passes, or
fails with what went wrong and what to do next: for an untouched stub, the lesson section to
read; for a typical mistake the check recognises, a hint naming it; for any other wrong answer,
the section to read and that ``--hint`` shows the approach (the exercise's own hint, which
nearly gives the answer away, is printed only then; registry.py lists the cases).

    main(number, file=None, time_limit=None, hint=False) -> exit code   one line per exercise
                                              (two for a FAIL with hint=True) and a summary
    run(number, file=None, time_limit=None)  -> [Result]    the same, as data (tests, notebooks)
    copy_stubs(lesson, dest=None) -> [Path]   copies the stubs exNN_*.py (``minisg exercises NN``)

Without ``file``, the student's file is the first exNN_*.py in the current folder, then in
lessons/exercises/ under it, then the stub that comes with minisg.

``number`` is a lesson ("01", 1) or one exercise ("01.2"). Exit codes: 0 all pass,
1 something fails, 2 unknown exercise or missing file.

The student's code runs in a worker process (worker.py), one exercise after another, each with
a time limit (TIME_LIMIT seconds; ``time_limit=`` or the environment variable
MINISG_CHECK_TIME_LIMIT change it). A file that calls sys.exit or os._exit, loops forever,
crashes the interpreter or is killed fails the exercise it was running (every exercise when it
happens on import) with a one-line message, and the other exercises are still graded.

The parts: registry.py (Exercise, Result, the registry EXERCISES), expect.py (what a check
compares an answer with), checks_*.py (one check per exercise), student_code.py (loading the
student's file and running one check on it), worker.py (the worker process and its time limit),
stubs.py (writes the stubs from the reference solutions; for developers).
"""
import os
import re
import sys
from pathlib import Path

from .. import files
from . import worker
from .registry import Exercise, Result, all_exercises  # noqa: F401 -- Exercise, Result: part of this API
from .worker import TIME_LIMIT, TIME_LIMIT_VARIABLE, GraderError

EXERCISES = all_exercises()      # lesson "01" -> [Exercise, ...] in order


class UsageError(Exception):
    """An unknown exercise number or a missing file (exit code 2)."""


# ------------------------------------------------------------------------------ running the checks

def parse_number(number):
    """("01", None) for a lesson, ("01", "01.2") for one exercise; UsageError when unknown."""
    text = str(number).strip()
    found = re.fullmatch(r"(\d{1,2})(?:\.(\d+))?", text)
    if not found:
        raise UsageError(f"number: expected a lesson (e.g. 06) or one exercise (e.g. 06.2), got {text!r}")
    lesson = f"{int(found.group(1)):02d}"
    if lesson not in EXERCISES:
        raise UsageError(f"number: expected a lesson with exercises ({', '.join(sorted(EXERCISES))}), got {text!r}")
    only = None if found.group(2) is None else f"{lesson}.{int(found.group(2))}"
    known = [e.number for e in EXERCISES[lesson]]
    if only is not None and only not in known:
        raise UsageError(f"number: expected one of lesson {lesson}'s exercises ({', '.join(known)}), got {text!r}")
    return lesson, only


def default_places():
    """Where the student's file is looked for when no --file is given, in this order."""
    cwd = Path.cwd()
    places = []
    for place in (cwd, cwd / "lessons" / "exercises", files.exercise_stubs()):
        if place not in places:
            places.append(place)
    return places


def exercise_file(lesson, file=None):
    """The student's file: `file` if given, else the first exNN_*.py in the current folder, then
    in lessons/exercises/ under it, then the stubs that come with minisg."""
    if file is not None:
        reason = files.unreadable_reason(file)
        if reason:
            raise UsageError(f"--file: expected a readable file, got {str(file)!r}, which {reason}")
        return Path(file)
    pattern = f"ex{lesson}_*.py"
    places = default_places()
    for place in places:
        found = sorted(path for path in place.glob(pattern) if path.is_file())
        if found:
            return found[0]
    where = ", ".join(str(place) for place in places[:-1]) + f" or {places[-1]}"
    raise UsageError(f"no file {pattern} in {where}; `minisg exercises {lesson}` copies the stubs into "
                     f"the current directory, or pass --file PATH")


def time_limit_seconds(time_limit=None):
    """`time_limit` if given, else $MINISG_CHECK_TIME_LIMIT if set, else TIME_LIMIT."""
    name, value = "time_limit", time_limit
    if value is None:
        value = os.environ.get(TIME_LIMIT_VARIABLE, "").strip()
        if not value:
            return TIME_LIMIT
        name = TIME_LIMIT_VARIABLE
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise UsageError(f"{name}: expected a finite number of seconds > 0, got {value!r}")
    return seconds


# ------------------------------------------------------------------------------ copying the stubs

def lessons_with_stubs():
    """The lessons ("01", ...) whose exercise stubs come with minisg."""
    found = (re.match(r"ex(\d\d)_.*\.py$", path.name) for path in files.exercise_stubs().glob("ex*_*.py"))
    return sorted({match.group(1) for match in found if match})


def copy_stubs(lesson, dest=None):
    """Copy lesson `lesson`'s stubs exNN_*.py into the folder `dest` (default: the current one)
    and return the paths written (``minisg exercises NN [--dest DIR]``).

    Never overwrites: when a file of that name is already there, nothing is copied and a
    UsageError names it. Each copy appears whole or not at all (a temporary file, hard-linked
    to its name; the link fails when the name exists, even one made a moment ago).
    """
    text = str(lesson).strip()
    found = re.fullmatch(r"(\d{1,2})(?:\.\d+)?", text)
    number = f"{int(found.group(1)):02d}" if found else None
    sources = sorted(files.exercise_stubs().glob(f"ex{number}_*.py")) if number else []
    if not sources:
        raise UsageError(f"number: expected a lesson with exercises ({', '.join(lessons_with_stubs())}), "
                         f"got {text!r}")
    dest = Path.cwd() if dest is None else Path(dest)
    nearest = next(folder for folder in (dest, *dest.parents) if folder.exists())  # "." always is
    if not nearest.is_dir():
        which = "which is a file" if nearest == dest else f"under the file {str(nearest)!r}"
        raise UsageError(f"--dest: expected a folder, got {str(dest)!r}, {which}")
    targets = [dest / source.name for source in sources]
    existing = [target for target in targets if os.path.lexists(target)]
    if existing:
        raise UsageError(_refusal(existing))
    written, current = [], dest
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for source, current in zip(sources, targets):
            if not files.write_new_file(current, source.read_bytes()):
                raise FileExistsError(current)
            written.append(current)
    except BaseException as error:
        for path in written:  # all or nothing
            path.unlink(missing_ok=True)
        if isinstance(error, FileExistsError):
            raise UsageError(_refusal([current])) from None
        if isinstance(error, OSError):
            raise UsageError(f"cannot write {current}: {error.strerror or error}") from None
        raise
    return written


def _refusal(existing):
    names = ", ".join(str(path) for path in existing)
    verb, pronoun = ("exists", "it") if len(existing) == 1 else ("exist", "them")
    return (f"{names} already {verb}; nothing was copied (a copy never overwrites): move {pronoun} away "
            f"or pass another folder (--dest DIR)")


# ------------------------------------------------------------------------------ run and main

def run(number, file=None, time_limit=None):
    """Check lesson `number`'s exercises (or one exercise "NN.k"); returns a list of Results.

    Each exercise (and the import of the file) may take `time_limit` seconds (default: TIME_LIMIT,
    or $MINISG_CHECK_TIME_LIMIT when set)."""
    lesson, only = parse_number(number)
    path = exercise_file(lesson, file)
    limit = time_limit_seconds(time_limit)
    items = [e for e in EXERCISES[lesson] if only in (None, e.number)]
    return worker.grade(path, items, limit)


def main(number, file=None, time_limit=None, hint=False):
    """Print one line per exercise and a summary; 0 when all pass, 1 otherwise, 2 on bad usage.
    hint=True (``minisg check --hint``) adds each failed exercise's approach on a second line."""
    try:
        lesson, _ = parse_number(number)
        path = exercise_file(lesson, file)
        results = run(number, file, time_limit=time_limit)
    except UsageError as error:
        print(f"minisg check: error: {error}", file=sys.stderr)
        return 2
    except GraderError as error:
        print(f"minisg check: error: {error}", file=sys.stderr)
        return 1
    print(f"checking {path}")
    approaches = {e.number: e.approach for e in EXERCISES[lesson]}
    for result in results:
        print(result.line(approaches[result.number] if hint else None))
    passed = sum(r.passed for r in results)
    noun = "exercise passes" if len(results) == 1 else "exercises pass"
    print(f"{passed} of {len(results)} {noun}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":  # the same as `minisg check ...`
    from ..tools.cli import main as minisg_main
    sys.exit(minisg_main(["check", *sys.argv[1:]]))

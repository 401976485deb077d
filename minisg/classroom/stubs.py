"""Write the exercise stubs from the reference solutions (a tool for minisg's developers).

The stub a student solves, lessons/exercises/exNN_topic.py, is its reference solution,
tests/exercise_solutions/exNN_topic.py, with each answer taken out: the two cannot drift apart,
because the stub is made from the solution. In a solution file

- the docstring opens with a paragraph that starts "A reference solution"; the stub leaves that
  paragraph out and starts with the next one;
- each answer stands between two marker lines, indented like the code between them:

      # --- solution 06.1
      flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
      return noise_level * (flat.max(axis=1) - flat.min(axis=1))
      # --- end solution

  and the stub has ``raise NotImplementedError("Exercise 06.1")`` in their place.

Edit the solution (the contract in its docstrings, the hint, the answer), then run

    python -m minisg.classroom.stubs            rewrite the stubs that differ
    python -m minisg.classroom.stubs --check    only list them (exit status 1 if any)

tests/test_exercises.py fails while a committed stub differs from what this writes. The solutions
are not shipped with minisg (the wheel has the stubs only), so this runs in a source checkout.
"""
import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "tests" / "exercise_solutions"
STUBS = ROOT / "lessons" / "exercises"

HEADER = '"""A reference solution'
START = re.compile(r"(?P<indent>[ \t]*)# --- solution (?P<number>\d\d\.\d+)[ \t]*")
END = re.compile(r"(?P<indent>[ \t]*)# --- end solution[ \t]*")


class StubError(ValueError):
    """A solution file whose header or markers are not as described above."""


def stub_text(solution, name="the solution", only=None):
    """The stub made from the text of a solution file: the header paragraph left out and each
    marked answer replaced by ``raise NotImplementedError("Exercise NN.k")`` (with `only`, a
    collection of exercise numbers, just those answers; the others keep their code, markers left out)."""
    lines = solution.split("\n")
    if not lines[0].startswith(HEADER) or "" not in lines:
        raise StubError(f"{name}: the docstring must open with a paragraph that starts {HEADER[3:]!r}")
    blank = lines.index("")
    if blank + 1 >= len(lines) or not lines[blank + 1].strip():
        raise StubError(f"{name}: the header paragraph must be followed by the stub's docstring")
    out = ['"""' + lines[blank + 1]]
    lesson = re.match(r"ex(\d\d)_", Path(name).name)
    open_at, seen = None, set()
    for number, line in enumerate(lines[blank + 2:], start=blank + 3):
        start, end = START.fullmatch(line), END.fullmatch(line)
        where = f"{name}:{number}"
        if start:
            if open_at is not None:
                raise StubError(f"{where}: a solution starts inside the solution of line {open_at[0]}")
            exercise = start["number"]
            if lesson and not exercise.startswith(lesson.group(1) + "."):
                raise StubError(f"{where}: exercise {exercise} in a file of lesson {lesson.group(1)}")
            if exercise in seen:
                raise StubError(f"{where}: a second solution of exercise {exercise}")
            seen.add(exercise)
            open_at, body = (number, start["indent"], exercise), []
        elif end:
            if open_at is None:
                raise StubError(f"{where}: '# --- end solution' without a solution before it")
            first, indent, exercise = open_at
            if end["indent"] != indent:
                raise StubError(f"{where}: the end of solution {exercise} is not indented like its start "
                                f"(line {first})")
            if not any(text.strip() for text in body):
                raise StubError(f"{name}:{first}: the solution of exercise {exercise} is empty")
            keep = only is not None and exercise not in only
            out += body if keep else [f'{indent}raise NotImplementedError("Exercise {exercise}")']
            open_at = None
        elif open_at is not None:
            body.append(line)
        else:
            out.append(line)
    if open_at is not None:
        raise StubError(f"{name}:{open_at[0]}: the solution of exercise {open_at[2]} has no '# --- end solution'")
    if not seen:
        raise StubError(f"{name}: no '# --- solution NN.k' marker")
    return "\n".join(out)


def expected_stubs(solutions=SOLUTIONS):
    """{file name: the stub's text} for every solution exNN_*.py in the folder `solutions`."""
    solutions = Path(solutions)
    if not solutions.is_dir():
        raise StubError(f"no folder {solutions}: the reference solutions are only in a source checkout of minisg")
    return {path.name: stub_text(path.read_text(encoding="utf-8"), str(path))
            for path in sorted(solutions.glob("ex[0-9][0-9]_*.py"))}


def differing_stubs(solutions=SOLUTIONS, stubs=STUBS):
    """The stubs in `stubs` that are not what their solution makes (or have no solution)."""
    expected, stubs = expected_stubs(solutions), Path(stubs)
    names = set(expected) | {path.name for path in stubs.glob("ex[0-9][0-9]_*.py")}
    return [stubs / name for name in sorted(names)
            if name not in expected or not (stubs / name).is_file()
            or (stubs / name).read_text(encoding="utf-8") != expected[name]]


def write_stubs(solutions=SOLUTIONS, stubs=STUBS):
    """Write each stub whose text differs from what its solution makes; returns the paths written.
    A stub without a solution is a StubError, and then nothing is written."""
    expected, stubs = expected_stubs(solutions), Path(stubs)
    orphans = sorted(path.name for path in stubs.glob("ex[0-9][0-9]_*.py") if path.name not in expected)
    if orphans:
        raise StubError(f"no solution in {solutions} for {', '.join(orphans)} in {stubs}: add one, or delete "
                        f"the stub (nothing was written)")
    written = differing_stubs(solutions, stubs)
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(expected[path.name], encoding="utf-8")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minisg.classroom.stubs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the stubs that differ (exit status 1)")
    parser.add_argument("--solutions", default=str(SOLUTIONS), help="folder of the reference solutions")
    parser.add_argument("--stubs", default=str(STUBS), help="folder of the stubs")
    args = parser.parse_args(argv)
    try:
        if args.check:
            differ = differing_stubs(args.solutions, args.stubs)
            for path in differ:
                print(f"differs from its solution: {path}")
            return 1 if differ else 0
        for path in write_stubs(args.solutions, args.stubs):
            print(f"wrote {path}")
    except StubError as error:
        print(f"stubs: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

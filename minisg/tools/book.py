"""`minisg book --out DIR [--quick] [--lessons 01 06]`: the lessons as a book to read along.

Each lesson (lessons/NN_*.py, percent format) becomes a notebook (jupytext) that runs in a fresh
kernel of this Python (nbclient, ipykernel) with the lessons folder as its working folder, and
then a page; one line per lesson reports its status and time. The lesson's options come from a
first cell, run before the lesson and left out of what is written, that sets sys.argv (which the
lesson's setup() reads): --quick with --quick, and --out the folder beside its page, so the
figures the page shows are the files the lesson wrote. DIR gets:

    index.html             the lessons table (lessons/README.md) and how this build went
    NN_topic.html          one page per lesson: prose, formulas, code, printed numbers, figures
    NN_topic_files/        the figures and tables the lesson wrote (not its binary files, such
                           as a checkpoint), and any figure it only displayed
    NN_topic.ipynb         the executed notebook
    exercises/             the graded exercises: an index, a page and a copy of each exNN_*.py
    credits.html           the papers, MNIST, and the photos and networks of lessons 14-16
    style.css
    .minisg-book.json      the files this book wrote

The site needs no network: no script, font or style sheet from elsewhere; formulas are MathML.

DIR must be new, empty, or a book written before; then exactly the files its .minisg-book.json
lists are replaced or removed, and nothing else in DIR is touched. Any other non-empty folder is
refused. A lesson that fails gets a page marked FAILED with its error, the others still run,
and the command exits with status 1. A photo lesson (14-16) without the ImageNet files stops
itself; its page says so and shows the prose and code without outputs (not a failure).
"""
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from .. import files

MANIFEST = ".minisg-book.json"
EXTRA = ("jupytext", "nbclient", "nbformat", "ipykernel", "markdown_it", "mdit_py_plugins", "latex2mathml", "pygments")
READABLE = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".txt", ".csv", ".md", ".json"}  # lesson files kept
LESSON_FILE = re.compile(r"^(\d\d)_\w+\.py$")
_SOURCE_LESSONS = files.PACKAGE_DIR.parent / "lessons"


class BookError(ValueError):
    """A bad argument or a missing [book] extra: one line from the command."""


def require_extra():
    """Import what the book needs, or BookError saying how to install it."""
    import importlib
    missing = []
    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise BookError(f'the book needs the [book] extra: pip install "minisg[book]" (missing: {", ".join(missing)})')


# ---------------------------------------------------------------------------- which lessons

@dataclass
class Lesson:
    path: Path            # lessons/06_smoothgrad.py
    title: str            # "Lesson 06 — SmoothGrad: ..." (its first heading)

    @property
    def name(self):       # "06_smoothgrad"
        return self.path.stem

    @property
    def number(self):     # "06"
        return self.name[:2]


def lessons_folder(lessons_dir=None):
    """--lessons-dir, else the lessons/ of this source checkout, else lessons/ in the current folder
    (minisg installed from the repository without -e); BookError when it has no lessons."""
    if lessons_dir is not None:
        folder = Path(lessons_dir)
    else:
        folder = next((f for f in (_SOURCE_LESSONS, Path.cwd() / "lessons") if _has_lessons(f)), _SOURCE_LESSONS)
    if not _has_lessons(folder):
        where = "" if lessons_dir is not None else " (the lessons/ of a source checkout or of this folder; a wheel has none)"
        raise BookError(f"--lessons-dir {folder}: expected a folder of lesson files NN_topic.py{where}; found none")
    return folder


def _has_lessons(folder):
    return folder.is_dir() and any(LESSON_FILE.match(p.name) for p in folder.iterdir())


def choose_lessons(folder, only=None):
    """The lesson files of `folder` in order; `only`: numbers such as ["01", "6"] (None: all)."""
    import jupytext
    from . import book_html

    paths = sorted(p for p in folder.iterdir() if LESSON_FILE.match(p.name))
    if only:
        by_number = {p.name[:2]: p for p in paths}
        wanted = [str(n).zfill(2) for n in only]
        unknown = [n for n in only if str(n).zfill(2) not in by_number]
        if unknown:
            raise BookError(f"--lessons: expected lesson numbers among {', '.join(by_number)}, got {' '.join(unknown)}")
        paths = [by_number[n] for n in sorted(set(wanted))]
    lessons = []
    for path in paths:
        prose = "\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "markdown")
        lessons.append(Lesson(path, book_html.first_heading(prose) or path.stem))
    return lessons


# ---------------------------------------------------------------------------- the output folder

def _safe_relative(name):
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and str(path) != "."


class BookFolder:
    """DIR, written file by file, atomically; it remembers what it wrote in .minisg-book.json so
    that the next build replaces those files and never touches anything else."""

    def __init__(self, out):
        self.out = Path(out)
        self.previous = self._previous_files()
        self.written = set()

    def _previous_files(self):
        if self.out.exists() and not self.out.is_dir():
            raise BookError(f"--out {self.out}: is a file; expected a folder for the book")
        if not self.out.is_dir() or not any(self.out.iterdir()):
            return set()
        manifest = self.out / MANIFEST
        if not manifest.is_file():
            raise BookError(f"--out {self.out}: expected a new or empty folder, or a book written before; got a "
                            f"folder with other files (no {MANIFEST}); minisg book never deletes files it did "
                            f"not write")
        try:
            listed = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BookError(f"--out {self.out}: {MANIFEST} is damaged ({exc}); remove the folder or choose another")
        return {name for name in listed if isinstance(name, str) and _safe_relative(name)}

    def write(self, relative, content):
        """Write text or bytes to DIR/relative, atomically."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        with files.atomic_write(self.out / relative) as handle:
            handle.write(data)
        self.written.add(relative)

    def files_under(self, folder):
        """The files now in `folder` (inside DIR), as paths relative to DIR."""
        if not folder.is_dir():
            return set()
        return {p.relative_to(self.out).as_posix() for p in folder.rglob("*") if p.is_file()}

    def adopt(self, folder, before):
        """Count the files a lesson wrote into `folder` as the book's: all there now except those
        someone else had put there before (`before`: files_under(folder) before the lesson ran).
        What a browser cannot show (lesson 03's 13 MB checkpoint) is removed. Returns
        {sha256 of the content: relative path}."""
        adopted = {}
        for relative in sorted(self.files_under(folder)):
            if relative.endswith(files.TEMP_SUFFIX) or (relative in before and relative not in self.previous):
                continue
            if PurePosixPath(relative).suffix.lower() not in READABLE:
                (self.out / relative).unlink()
                continue
            self.written.add(relative)
            adopted[hashlib.sha256((self.out / relative).read_bytes()).hexdigest()] = relative
        return adopted

    def record(self, final=False):
        """Write the manifest: while building, every file the book may have here (so a killed
        build's files are still known as the book's); at the end, exactly those of this build."""
        listed = self.written if final else self.written | self.previous
        text = json.dumps({"written_by": "minisg book", "files": sorted(listed)}, indent=1)
        with files.atomic_write(self.out / MANIFEST) as handle:
            handle.write(text.encode("utf-8"))

    def finish(self):
        """Remove the previous build's files that this one did not write, then the final manifest."""
        for name in sorted(self.previous - self.written):
            path = self.out / name
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):  # its folder (NN_topic_files/), once empty
                if path.parent != self.out:
                    path.parent.rmdir()
        self.record(final=True)


# ---------------------------------------------------------------------------- running a lesson

@dataclass
class Outcome:
    status: str           # "ok", "stopped" (the lesson stopped itself: no ImageNet files) or "failed"
    message: str          # what the reader is told: the stop message or the error
    seconds: float


def _kernel_manager_class():
    """A kernel manager that always starts ipykernel in this Python, whatever kernel specs
    Jupyter has installed elsewhere (a 'python3' of another environment would lack minisg)."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class ThisPythonKernel(AsyncKernelManager):
        @property
        def kernel_spec(self):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="Python 3 (ipykernel)", language="python")

    return ThisPythonKernel


def _options_cell(argv):
    import nbformat
    return nbformat.v4.new_code_cell(f"import sys\nsys.argv = sys.argv[:1] + {argv!r}  # options of minisg book")


def _first_error(notebook):
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, cell, output
    return None, None, None


def _stop_message(cell):
    printed = "".join(o.get("text", "") for o in cell.get("outputs", [])
                      if o.get("output_type") == "stream" and o.get("name") == "stdout").strip()
    return printed.splitlines()[-1] if printed else "the lesson stopped itself"


def execute(notebook, folder, argv):
    """Run `notebook` in place in a fresh kernel, in `folder`, with sys.argv[1:] = argv; an Outcome."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook.cells.insert(0, _options_cell(argv))
    client = NotebookClient(notebook, kernel_manager_class=_kernel_manager_class(), kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    started = time.perf_counter()
    with tempfile.TemporaryFile() as kernel_log:
        try:
            # the kernel's log lines stay out of the progress; a MINISG_LESSON_ARGS of the user's shell
            # (lesson options for notebooks) must not change what the book runs
            environment = {k: v for k, v in os.environ.items() if k != "MINISG_LESSON_ARGS"}
            client.execute(stderr=kernel_log, env=environment)
            status, message = "ok", ""
        except CellExecutionError:
            index, cell, error = _first_error(notebook)
            if error is not None and error.get("ename") == "SystemExit" and error.get("evalue") in ("0", "None"):
                status, message = "stopped", _stop_message(cell)
            elif error is not None:
                status, message = "failed", f"cell {index}: {error.get('ename')}: {error.get('evalue')}"
            else:
                status, message = "failed", "a cell failed without an error output"
        except Exception as exc:  # noqa: BLE001 -- a kernel that died or never started: this lesson fails
            kernel_log.seek(0)
            tail = kernel_log.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            if tail:
                message += f" (kernel: {' | '.join(tail)})"
    notebook.cells.pop(0)
    return Outcome(status, message, time.perf_counter() - started)


# ---------------------------------------------------------------------------- what the pages need

def exercise_pages(exercises_folder):
    """{exNN_topic.py: relative page address} of the exercise stubs."""
    return {p.name: f"exercises/{p.stem}.html" for p in sorted(exercises_folder.glob("ex[0-9][0-9]_*.py"))}


def _text_or_none(path):
    return path.read_text(encoding="utf-8") if path.is_file() else None


# ---------------------------------------------------------------------------- the command

def build_lesson(book, lesson, neighbours, argv, exercises):
    """Run one lesson into `book` (a BookFolder): its page, figures and executed notebook; an Outcome."""
    import jupytext
    import nbformat

    from . import book_html
    notebook = jupytext.read(lesson.path)
    lesson_files = book.out / f"{lesson.name}_files"  # the lesson's --out: its figures beside its page
    before = book.files_under(lesson_files)
    outcome = execute(notebook, lesson.path.parent, argv + ["--out", str(lesson_files.resolve())])
    written_by_lesson = book.adopt(lesson_files, before)
    page, figures = book_html.lesson_page(lesson, notebook, outcome, "--quick" in argv, neighbours, exercises,
                                          written_by_lesson)
    for relative, data in figures.items():
        book.write(relative, data)
    book.write(f"{lesson.name}.html", page)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.metadata["minisg_book"] = {"options": argv, "status": outcome.status}
    book.write(f"{lesson.name}.ipynb", nbformat.writes(notebook))
    return outcome


def build(out, quick=False, only=None, lessons_dir=None, log=print):
    """Build the book into `out`; {lesson name: Outcome}. See the module's docstring."""
    require_extra()
    from . import book_html
    folder = lessons_folder(lessons_dir)
    lessons = choose_lessons(folder, only)
    exercises_folder = folder / "exercises" if (folder / "exercises").is_dir() else files.exercise_stubs()
    exercises = exercise_pages(exercises_folder)
    argv = ["--quick"] if quick else []
    started, outcomes = time.perf_counter(), {}
    with files.exclusive(out, "--out"):
        book = BookFolder(out)
        book.record()
        book.write("style.css", book_html.stylesheet())
        for position, lesson in enumerate(lessons):
            neighbours = (lessons[position - 1] if position else None,
                          lessons[position + 1] if position + 1 < len(lessons) else None)
            outcome = outcomes[lesson.name] = build_lesson(book, lesson, neighbours, argv, exercises)
            book.record()
            log(f"[{position + 1:>2}/{len(lessons)}] {lesson.name:<32} {outcome.status:<8} {outcome.seconds:6.1f} s"
                + (f"  {outcome.message}" if outcome.status != "ok" else ""))
        stubs = sorted(exercises_folder.glob("ex[0-9][0-9]_*.py"))
        built = {lesson.number: lesson for lesson in lessons}
        for relative, text in book_html.exercise_files(stubs, _text_or_none(exercises_folder / "README.md"),
                                                       built).items():
            book.write(relative, text)
        from ..classroom import imagenet
        book.write("credits.html", book_html.credits_page(imagenet.CREDITS, imagenet.NETWORK_CREDITS))
        lesson_files = sorted(p.name for p in folder.iterdir() if LESSON_FILE.match(p.name))
        book.write("index.html", book_html.index_page(_text_or_none(folder / "README.md"), lesson_files, lessons,
                                                      outcomes, quick, datetime.now(), time.perf_counter() - started))
        book.finish()
    return outcomes


def run(out, quick=False, only=None, lessons_dir=None):
    """The command: build, say where the book is; exit status 1 when a lesson failed."""
    started = time.perf_counter()
    outcomes = build(out, quick=quick, only=only, lessons_dir=lessons_dir, log=lambda line: print(line, flush=True))
    failed = [name for name, outcome in outcomes.items() if outcome.status == "failed"]
    stopped = [name for name, outcome in outcomes.items() if outcome.status == "stopped"]
    print(f"wrote {Path(out) / 'index.html'}: {len(outcomes)} lesson{'s' if len(outcomes) != 1 else ''} "
          f"in {time.perf_counter() - started:.0f} s" + (f"; stopped early: {', '.join(stopped)}" if stopped else "")
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0

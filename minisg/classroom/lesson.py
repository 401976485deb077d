"""What every lesson does before its first section, in one call.

    lesson = setup("06", "SmoothGrad's noise level and sample size", quick="one image, a few samples")

reads the lesson's options (``--quick``, ``--out DIR`` and any in `options`: MODE_OPTION for
``--mode`` of lessons 06-09, ``Count(help, full=300, quick=15)`` for a number whose default
depends on --quick, or argparse's keywords), makes the folder for its figures and starts its
clock. Then

    lesson.quick                              True with --quick (a fast pass with small numbers)
    lesson.out                                the folder for the figures: --out, or out/ beside
                                              the lesson files
    lesson.mode, lesson.steps, ...            the lesson's own options (--mode, --steps, ...)
    lesson.args                               every option, as argparse parsed them
    lesson.folder                             the folder of the lesson files
    lesson.save(figure, "06_sweep.png")       writes a matplotlib Figure into lesson.out, says so,
                                              and shows it inline in a notebook
    lesson.figure_grid(images, columns, "06_sweep.png", ...)
                                              minisg.viz.figure_grid into lesson.out, the same way
    lesson.elapsed()                          seconds since setup()
    lesson.finish()                           "lesson 06 finished in 12.3 s (quick run; ...)"

A lesson runs as a script from any folder (``python lessons/06_smoothgrad.py --quick``), in
Jupyter (no ``__file__``; the notebook runs in lessons/, in the repository or elsewhere) and
with an installed minisg outside the repository: its figures go to out/ beside the lesson file,
or, in Jupyter, to lessons/out/ under the current folder when there is one, else to out/ there.

In a notebook (Jupyter, VS Code, or nbclient executing a jupytext conversion) each figure is
also shown inline below its cell; save and figure_grid return None, so a cell that ends with
one shows the figure and no stray value. A notebook has no command line: setup() also reads
options from the environment variable MINISG_LESSON_ARGS, e.g. MINISG_LESSON_ARGS="--quick"
(words split as a shell would; options on the command line come after them, so they win).
"""
import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import files

# The option of lessons 06-09: how a signed map becomes gray levels (minisg.viz.to_grayscale's mode).
MODE_OPTION = {"--mode": dict(choices=["positive", "absolute"], default="positive",
                              help="how a signed map becomes gray levels (default: its positive part)")}


@dataclass(frozen=True)
class Count:
    """An option --name N whose default is `full`, or `quick` with --quick:
    ``options={"--steps": Count("demo training steps per run", full=300, quick=15)}``."""
    help: str
    full: int
    quick: int


@dataclass
class Lesson:
    number: str                   # "06"
    quick: bool
    out: Path
    args: argparse.Namespace
    folder: Path
    started: float = field(default_factory=time.perf_counter)

    def __getattr__(self, name):
        """The lesson's own options: lesson.mode for --mode, lesson.steps for --steps, ..."""
        if name.startswith("__") or name == "args":
            raise AttributeError(name)
        try:
            return getattr(self.args, name)
        except AttributeError:
            raise AttributeError(f"lesson {self.number} has no option --{name.replace('_', '-')}") from None

    def save(self, figure, name, dpi=110):
        """Write a matplotlib Figure (made without pyplot) to out/name, say so, and show it
        inline in a notebook. Returns None (the path is lesson.out / name)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(figure)
        path = self.out / name
        with files.atomic_write(path) as handle:  # a half-written figure never replaces a good one
            figure.savefig(handle, format=path.suffix.lstrip(".") or "png", dpi=dpi)
        _announce(path)

    def figure_grid(self, images, columns, name, **options):
        """minisg.viz.figure_grid(images, columns, out/name, **options): rows of images and their
        maps, one column per entry of `columns`; says so and shows it as save() does."""
        from .. import viz

        _announce(viz.figure_grid(images, columns, self.out / name, **options))

    def elapsed(self):
        """Seconds since setup()."""
        return time.perf_counter() - self.started

    def finish(self):
        print(f"lesson {self.number} finished in {self.elapsed():.1f} s "
              f"({'quick' if self.quick else 'full'} run; wall-clock time on a shared machine is noisy)")


def _announce(path):
    """Print where a figure went; in a notebook, also show it below the cell (PNG, JPEG)."""
    print(f"wrote {path}")
    if in_notebook() and path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        from IPython.display import Image, display

        display(Image(filename=str(path)))


def in_notebook():
    """True inside a Jupyter kernel (Jupyter, VS Code, nbclient): IPython already imported and
    running with a kernel. A script, or IPython in a terminal, shows nothing inline."""
    ipython = sys.modules.get("IPython")           # never import IPython where it is not in use
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def lesson_folder(file=None):
    """The folder of the lesson files: that of `file` (a lesson's __file__); without one (Jupyter),
    lessons/ under the current folder when it holds the lessons, else the current folder."""
    if file:
        return Path(file).resolve().parent
    here = Path.cwd()
    return here / "lessons" if (here / "lessons" / "exercises").is_dir() else here


def setup(number, title, quick, options=None, file=None):
    """Parse the lesson's options, make its figure folder, start its clock; returns a Lesson.

    number: "06"; title: what the lesson is about (its --help); quick: what --quick does;
    options: {"--name": keyword arguments of argparse's add_argument, or a Count}; file: the
    lesson's __file__ (default: the caller's, when it has one). The options are read from
    MINISG_LESSON_ARGS, then from the command line.
    """
    if file is None:
        file = sys._getframe(1).f_globals.get("__file__")
    folder = lesson_folder(file)
    parser = argparse.ArgumentParser(description=f"Lesson {number}: {title}")
    parser.add_argument("--quick", action="store_true", help=quick)
    counts = {}
    for name, keywords in (options or {}).items():
        if isinstance(keywords, Count):
            counts[name.lstrip("-").replace("-", "_")] = keywords
            keywords = dict(type=int, default=None, metavar="N",
                            help=f"{keywords.help} (default {keywords.full}; {keywords.quick} with --quick)")
        parser.add_argument(name, **keywords)
    parser.add_argument("--out", default=str(folder / "out"),
                        help="folder for the figures and any other file the lesson writes")
    arguments = shlex.split(os.environ.get("MINISG_LESSON_ARGS", "")) + sys.argv[1:]
    args, _unknown = parser.parse_known_args(arguments)  # known: Jupyter passes flags of its own
    for dest, count in counts.items():
        if getattr(args, dest) is None:
            setattr(args, dest, count.quick if args.quick else count.full)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return Lesson(number, args.quick, out, args, folder)

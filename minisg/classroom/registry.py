"""The graded exercises: what each one is called, what it checks, and what a check answers.

Every check_* function of the modules checks_*.py is registered here by its decorator
``@exercise("06.2", title, names, approach, section=...)``; ``all_exercises()`` imports those
modules and returns the registry, lesson by lesson in order: {"01": [Exercise 01.1, 01.2, 01.3], ...}.

What a failing exercise is told (``Result.line()``), from the least to the most revealing:

- an untouched stub (its ``raise NotImplementedError``): "not implemented yet" and where the
  lesson teaches it (``Exercise.reading()``: the lesson file, its section, the stub's docstring);
- a wrong answer that a check recognises as a typical mistake (the answer equals a known wrong
  variant: a left Riemann sum, the batch's range instead of each image's, ...): the hint written
  for that mistake (``expect.Mismatch(message, hint)``);
- any other wrong answer or error: what differs (the Mismatch's message, or the error) and where
  to read, with the remark that ``minisg check NN.k --hint`` shows the approach;
- the exercise's own hint, the approach (``Exercise.approach``, the recipe that nearly gives the
  answer away), only when the student asks for it: ``minisg check --hint`` adds it to every FAIL.
"""
from dataclasses import dataclass
from typing import Callable

EXERCISES = {}                   # lesson "01" -> [Exercise, ...] in order

# The lesson that teaches each lesson's exercises (in lessons/ of a source checkout, and in the book).
LESSON_FILES = {"01": "01_autodiff.py", "02": "02_cnn_layers.py", "04": "04_sensitivity_maps.py",
                "06": "06_smoothgrad.py", "07": "07_comparing_methods.py", "10": "10_gradcam_pp.py",
                "11": "11_smooth_gradcam_pp.py", "12": "12_measuring_maps.py"}
INTRODUCTION = "introduction"    # a section= for what a lesson teaches before its section 1


@dataclass(frozen=True)
class Exercise:
    number: str                  # "01.2"
    title: str
    names: tuple                 # what the student's file must define
    approach: str                # the exercise's own hint: shown only on request (`minisg check --hint`)
    check: Callable
    section: str                 # the lesson's heading that teaches it, or INTRODUCTION

    def reading(self):
        """Where to read: what an untouched stub, and a wrong answer with no hint of its own, is told."""
        where = "its introduction" if self.section == INTRODUCTION else f'section "{self.section}"'
        return (f"read lessons/{LESSON_FILES[self.number[:2]]}, {where}, and the docstring of "
                f"Exercise {self.number} in your file")


NOT_IMPLEMENTED = "not implemented yet"    # the message of an untouched stub


@dataclass
class Result:
    """One exercise's outcome. A failure says what went wrong (`message`) and what to do next:
    `hint` when the failure was recognised (a typical mistake, a time-out, an exit call, ...),
    else `reading`, where the lesson teaches the exercise."""
    number: str
    title: str
    passed: bool
    message: str = ""
    hint: str = ""
    reading: str = ""

    def line(self, approach=None):
        """'PASS 06.1 title', or 'FAIL 06.1 title: message — advice'. `approach` (the exercise's own
        hint, asked for with `minisg check --hint`) goes on a second line of a FAIL; without it, a
        wrong answer that no check recognised says how to ask for it."""
        if self.passed:
            return f"PASS {self.number} {self.title}"
        text = f"FAIL {self.number} {self.title}: {self.message}"
        if self.hint:
            text += f" — hint: {self.hint}"
        elif self.reading:
            text += f" — {self.reading}"
            if approach is None and not self.message.startswith(NOT_IMPLEMENTED):
                text += f"; `minisg check {self.number} --hint` shows the approach"
        if approach:
            text += f"\n    approach: {approach}"
        return text


def exercise(number, title, names, approach, section):
    """Register the decorated function as the check of exercise `number`; `approach` is the
    exercise's own hint, `section` the heading of the lesson section that teaches it
    (INTRODUCTION: the lesson's introduction)."""
    def register(check):
        EXERCISES.setdefault(number[:2], []).append(Exercise(number, title, tuple(names), approach, check, section))
        return check
    return register


def all_exercises():
    """EXERCISES with every check registered (importing a checks module registers its checks)."""
    # lesson by lesson: 01, 02, then 04, 06, 07, then 10, 11, then 12
    from . import checks_autodiff, checks_cnn, checks_maps, checks_cam, checks_metrics  # noqa: F401, I001
    return EXERCISES


def exercise_by_number(number):
    """The Exercise "NN.k" (KeyError for an unknown number)."""
    return {e.number: e for lesson in all_exercises().values() for e in lesson}[number]

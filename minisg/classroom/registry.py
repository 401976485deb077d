"""The graded exercises: what each one is called, what it checks, and what a check answers.

Every check_* function of the modules checks_*.py is registered here by its decorator
``@exercise("06.2", title, names, hint)``; ``all_exercises()`` imports those modules and returns
the registry, lesson by lesson in order: {"01": [Exercise 01.1, 01.2, 01.3], "02": [...], ...}.
"""
from dataclasses import dataclass
from typing import Callable

EXERCISES = {}                   # lesson "01" -> [Exercise, ...] in order


@dataclass(frozen=True)
class Exercise:
    number: str                  # "01.2"
    title: str
    names: tuple                 # what the student's file must define
    hint: str
    check: Callable


@dataclass
class Result:
    number: str
    title: str
    passed: bool
    message: str = ""
    hint: str = ""

    def line(self):
        if self.passed:
            return f"PASS {self.number} {self.title}"
        return f"FAIL {self.number} {self.title}: {self.message} — hint: {self.hint}"


def exercise(number, title, names, hint):
    """Register the decorated function as the check of exercise `number`."""
    def register(check):
        EXERCISES.setdefault(number[:2], []).append(Exercise(number, title, tuple(names), hint, check))
        return check
    return register


def all_exercises():
    """EXERCISES with every check registered (importing a checks module registers its checks)."""
    # lesson by lesson: 01, 02, then 04, 06, 07, then 10, 11, then 12
    from . import checks_autodiff, checks_cnn, checks_maps, checks_cam, checks_metrics  # noqa: F401, I001
    return EXERCISES

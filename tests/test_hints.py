"""What `minisg check` tells a failing exercise grows with the attempt, and the exercise's own hint
(its approach, which nearly gives the answer away) is printed only when asked for (--hint):

- an untouched stub: "not implemented yet" and the lesson section to read;
- a recognised typical mistake: the hint written for that mistake;
- any other wrong answer or error: what differs, the section to read, and that --hint shows the approach.

The planted answers are the reference solutions with one line changed (test_exercises.plant), or
with the graded function's answer scaled by 0.7 (a wrong answer that no check recognises)."""
import re
from pathlib import Path

import pytest

from minisg.classroom import grading as check
from minisg.classroom.registry import INTRODUCTION, LESSON_FILES, Result
from minisg.tools import cli
from test_exercises import plant, solution, stub

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
ALL = [e for lesson in sorted(check.EXERCISES) for e in check.EXERCISES[lesson]]
EVERY_APPROACH = [e.approach for e in ALL]


def one(number, path):
    (result,) = check.run(number, file=path)
    return result


def asks_for_the_approach(number):
    return f"`minisg check {number} --hint` shows the approach"


def assert_no_approach(text):
    assert not [approach for approach in EVERY_APPROACH if approach in text], text


# Scaled by 0.7: not 1.5, as alpha * 1.5 leaves (0, 1/2], which 10.1's check names; not 0.75, which is
# what the left Riemann sum of 4 steps gives on 07.1's bias-free ReLU net.
SCALED = """

def _scaled(function):
    def scaled(*args, **kwargs):
        answer = function(*args, **kwargs)
        if isinstance(answer, tuple):
            return tuple(0.7 * part for part in answer)
        return 0.7 * answer
    return scaled


{name} = _scaled({name})
"""


def scaled_answer(tmp_path, item):
    """The solution file with `item`'s function answering 0.7 times the right answer."""
    (name,) = item.names
    path = tmp_path / f"ex{item.number[:2]}_scaled.py"
    path.write_text(solution(item.number[:2]).read_text() + SCALED.format(name=name))
    return path


@pytest.mark.parametrize("item", ALL, ids=[e.number for e in ALL])
def test_every_exercise_points_to_a_heading_of_its_lesson(item):
    lesson = LESSONS_DIR / LESSON_FILES[item.number[:2]]
    assert lesson.is_file(), f"{item.number}: no lesson file {lesson}"
    if item.section != INTRODUCTION:
        headings = re.findall(r"^# #{2,3} (.+)$", lesson.read_text(encoding="utf-8"), flags=re.M)
        assert item.section in headings, f"{item.number}: {lesson.name} has no heading {item.section!r}"
    assert lesson.name in item.reading() and f"Exercise {item.number}" in item.reading()


@pytest.mark.parametrize("lesson", sorted(check.EXERCISES))
def test_an_untouched_stub_is_told_where_to_read_and_no_hint(lesson):
    results = check.run(lesson, file=stub(lesson))
    for item, result in zip(check.EXERCISES[lesson], results):
        assert (result.message, result.hint, result.reading) == ("not implemented yet", "", item.reading())
        line = result.line()
        assert line == f"FAIL {item.number} {item.title}: not implemented yet — {item.reading()}"
        assert LESSON_FILES[lesson] in line
        assert (item.section == INTRODUCTION and "its introduction" in line) or f'section "{item.section}"' in line
        assert_no_approach(line)


def test_the_command_prints_the_pointer_for_the_untouched_stub(capsys):
    assert cli.main(["check", "06", "--file", str(stub("06"))]) == 1
    out = capsys.readouterr().out
    assert ("FAIL 06.1 noise stdev per image: not implemented yet — read lessons/06_smoothgrad.py, "
            "its introduction, and the docstring of Exercise 06.1 in your file\n") in out
    assert "max(axis=1) - min(axis=1)" not in out and "noise_level * " not in out
    assert out.rstrip().endswith("0 of 2 exercises pass")


@pytest.mark.parametrize("item", ALL, ids=[e.number for e in ALL])
def test_a_wrong_answer_no_check_recognises_gets_what_differs_and_where_to_read(tmp_path, item):
    result = one(item.number, scaled_answer(tmp_path, item))
    assert not result.passed
    assert result.message and not result.message.startswith("not implemented"), result.line()
    assert result.hint == "" and result.reading == item.reading(), result.line()
    line = result.line()
    assert line == (f"FAIL {item.number} {item.title}: {result.message} — {item.reading()}; "
                    f"{asks_for_the_approach(item.number)}")
    assert_no_approach(line)
    assert line.count("\n") == 0


def test_the_unrecognised_mistake_says_what_differs(tmp_path):
    wrong = plant(tmp_path, "06", [("return noise_level * (flat.max(axis=1) - flat.min(axis=1))",
                                    "return noise_level * flat.std(axis=1)")])
    result = one("06.1", wrong)
    assert re.fullmatch(r"noise_stdevs\(x, 0\.2\): at \(\d,\) got [-\d.e]+, expected [-\d.e]+ "
                        r"\(\d of 4 elements differ\)", result.message), result.message
    assert result.hint == "" and result.reading == check.EXERCISES["06"][0].reading()


def test_hint_adds_the_approach_under_each_failed_exercise_only(tmp_path, capsys):
    item = check.EXERCISES["06"][1]                               # 06.2 fails, 06.1 passes
    path = str(scaled_answer(tmp_path, item))
    assert cli.main(["check", "06", "--file", path]) == 1
    plain = capsys.readouterr().out
    assert asks_for_the_approach("06.2") in plain
    assert_no_approach(plain)

    assert cli.main(["check", "06", "--file", path, "--hint"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "PASS 06.1 noise stdev per image"
    assert lines[2].startswith("FAIL 06.2 SmoothGrad average: ") and lines[2].endswith(item.reading())
    assert lines[3] == f"    approach: {item.approach}"
    assert lines[4:] == ["1 of 2 exercises pass"]


def test_hint_shows_the_approach_of_an_untouched_stub_and_of_a_recognised_mistake(tmp_path, capsys):
    assert check.main("01", file=str(stub("01")), hint=True) == 1
    out = capsys.readouterr().out
    for item in check.EXERCISES["01"]:
        assert f"FAIL {item.number} {item.title}: not implemented yet — {item.reading()}\n" \
               f"    approach: {item.approach}\n" in out
    wrong = plant(tmp_path, "07", [("alphas = np.arange(1, steps + 1) / steps", "alphas = np.arange(0, steps) / steps")])
    assert check.main("07.1", file=str(wrong), hint=True) == 1
    out = capsys.readouterr().out
    assert "— hint: that is the LEFT Riemann sum" in out
    assert f"\n    approach: {check.EXERCISES['07'][0].approach}\n" in out


# (exercise, the planted mistake, the hint written for it)
RECOGNISED = [
    ("01.3", [("gradient[i] = (plus - minus) / (2 * eps)", "gradient[i] = (plus - f(x)) / eps")],
     "that is a one-sided difference: use x + h and x - h, divided by 2h"),
    ("01.3", [("/ (2 * eps)", "/ eps")], "twice the gradient: x + h and x - h are 2h apart, so divide by 2h"),
    ("02.2", [("d_cols = w.reshape(o, -1).T", "d_cols = w[:, :, ::-1, ::-1].reshape(o, -1).T")],
     "that is the input gradient of the flipped kernel: with im2col and col2im no flip is needed"),
    ("04.1", [("score = logits[np.arange(len(x)), np.asarray(target)].sum()", "score = logits.sum()")],
     "you differentiated the sum of ALL logits: pick each image's target logit"),
    ("06.1", [("return noise_level * (flat.max(axis=1) - flat.min(axis=1))",
               "return noise_level * np.full(len(x), flat.max() - flat.min())")],
     "max and min of each image, not of the whole batch"),
    ("06.2", [(".mean(axis=1).astype(x.dtype)", ".sum(axis=1).astype(x.dtype)")],
     "the result is n times too big: average the n maps, sum / n"),
    ("07.1", [("alphas = np.arange(1, steps + 1) / steps", "alphas = np.arange(0, steps) / steps")],
     "that is the LEFT Riemann sum (alpha = 0 .. (m-1)/m): use alpha = 1/m .. 1"),
    ("07.1", [("return ((x - baseline) * average).astype(x.dtype)", "return average.astype(x.dtype)")],
     "that is the average gradient alone: multiply it by (x - baseline)"),
    ("07.1", [("average = gradients.reshape((len(x), steps) + x.shape[1:]).mean(axis=1)",
               "average = gradients.reshape((len(x), steps) + x.shape[1:]).sum(axis=1)")],
     "m times too big: average the m gradients (sum / m)"),
    ("10.1", [("2 * g ** 2 + layer_sums * g ** 3", "2 * g ** 2 + (A * g ** 3).sum(axis=(2, 3), keepdims=True)")],
     "that is the mixed-index bug sum_ab A_ab g_ab^3: use S_k g_ij^3 with S_k = sum_ab A_ab"),
    ("10.1", [("layer_sums = A.sum(axis=(2, 3), keepdims=True)", "layer_sums = A.mean(axis=(2, 3), keepdims=True)")],
     "S_k is the SUM of A^k over the map, not its mean"),
    ("10.2", [("return (gradcampp_alpha(A, g) * np.maximum(g, 0)).sum(axis=(2, 3)).astype(A.dtype)",
               "return gradcampp_alpha(A, g).sum(axis=(2, 3)).astype(A.dtype)")],
     "you summed alpha alone: weigh each alpha by relu(g) first"),
    ("12.1", [("relevance = np.maximum(pooled, 0)", "relevance = np.abs(pooled)")],
     "that counts absolute values: relevance is the positive part, np.maximum(channel sum, 0)"),
    ("12.2", [('np.argsort(-pooled.reshape(n, -1), axis=1, kind="stable")',
               'np.argsort(pooled.reshape(n, -1), axis=1, kind="stable")')],
     "you removed the LEAST relevant pixels first"),
    ("12.2", [("        logits -= logits.max(axis=1, keepdims=True)\n", ""),
              ("scores[:, s] = probabilities[np.arange(n), target]", "scores[:, s] = logits[np.arange(n), target]")],
     "those are the target's logits: the score is its softmax probability"),
]


@pytest.mark.parametrize("number, mistake, hint", RECOGNISED, ids=[f"{r[0]}-{i}" for i, r in enumerate(RECOGNISED)])
def test_a_recognised_mistake_gets_the_hint_written_for_it(tmp_path, number, mistake, hint):
    result = one(number, plant(tmp_path, number[:2], mistake))
    assert not result.passed and not result.message.startswith("not implemented")
    assert result.hint == hint, result.line()
    line = result.line()
    assert line == f"FAIL {result.number} {result.title}: {result.message} — hint: {hint}"
    assert_no_approach(line)


def test_an_error_in_the_students_code_gets_where_to_read(tmp_path):
    path = plant(tmp_path, "06", [("flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)",
                                   "raise ValueError('boom')")])
    result = one("06.1", path)
    assert result.message.startswith("your code raised ValueError: boom (line ")
    assert result.hint == "" and result.reading == check.EXERCISES["06"][0].reading()
    assert result.line().endswith(asks_for_the_approach("06.1"))


def test_a_missing_dependency_points_to_the_exercise_it_needs(tmp_path):
    from minisg.classroom import stubs

    path = tmp_path / "ex02_partial.py"
    path.write_text(stubs.stub_text(solution("02").read_text(), str(solution("02")), only={"02.1"}))
    result = one("02.2", path)
    assert result.message == "not implemented yet (needs Exercise 02.1)"
    assert result.hint == "" and result.reading == check.EXERCISES["02"][0].reading()
    assert "--hint" not in result.line()


def test_a_not_implemented_error_of_another_kind_is_an_error_not_a_stub(tmp_path):
    path = plant(tmp_path, "06", [("flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)",
                                   "raise NotImplementedError('float16 images')")])
    result = one("06.1", path)
    assert result.message.startswith("your code raised NotImplementedError: float16 images (line ")
    assert result.hint == "" and result.reading == check.EXERCISES["06"][0].reading()
    assert result.line().endswith(asks_for_the_approach("06.1"))


@pytest.mark.parametrize("lesson", ["06", "07", "12"])
def test_a_correct_solution_passes_with_no_hint(lesson):
    for result in check.run(lesson, file=solution(lesson)):
        assert result.passed and (result.hint, result.reading) == ("", ""), result.line()
        assert result.line() == result.line("the approach") == f"PASS {result.number} {result.title}"


def test_result_line_for_each_kind_of_failure():
    stub_result = Result("06.1", "t", False, "not implemented yet", reading="read X")
    assert stub_result.line() == "FAIL 06.1 t: not implemented yet — read X"
    assert stub_result.line("do Y") == "FAIL 06.1 t: not implemented yet — read X\n    approach: do Y"
    wrong = Result("06.1", "t", False, "a differs", reading="read X")
    assert wrong.line() == f"FAIL 06.1 t: a differs — read X; {asks_for_the_approach('06.1')}"
    assert wrong.line("do Y") == "FAIL 06.1 t: a differs — read X\n    approach: do Y"
    recognised = Result("06.1", "t", False, "a differs", "the batch's range", "read X")
    assert recognised.line() == "FAIL 06.1 t: a differs — hint: the batch's range"
    timed_out = Result("06.1", "t", False, "took longer than 1 s", "look for a loop")
    assert timed_out.line("do Y") == "FAIL 06.1 t: took longer than 1 s — hint: look for a loop\n    approach: do Y"

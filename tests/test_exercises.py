"""The exercise checker has teeth: every check fails on the untouched stub and on a planted
wrong answer, and passes on a correct solution (tests/exercise_solutions/).

A planted wrong answer is the solution file with one or two lines replaced, written to
tmp_path and graded with ``minisg.classroom.grading.run("NN.k", file=...)``. Every stub is
what ``python -m minisg.classroom.stubs`` makes of its solution, so the two cannot drift apart.
"""
import re
import shutil
from pathlib import Path

import pytest

from minisg.classroom import grading as check
from minisg.classroom import stubs

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "lessons" / "exercises"
SOLUTIONS = Path(__file__).resolve().parent / "exercise_solutions"
LESSONS = sorted(check.EXERCISES)
ALL_NUMBERS = [e.number for lesson in LESSONS for e in check.EXERCISES[lesson]]


def stub(lesson):
    (path,) = STUBS.glob(f"ex{lesson}_*.py")
    return path


def solution(lesson):
    return SOLUTIONS / stub(lesson).name


def results_by_number(number, path):
    return {r.number: r for r in check.run(number, file=path)}


# (exercise, [(old, new), ...] applied to the solution, a fragment the failure must show or None)
PLANTS = [
    ("01.1", [("return g * F.exp(self.inputs[0])", "return -g * F.exp(self.inputs[0])")], "finite differences"),
    ("01.1", [("return g * F.exp(self.inputs[0])", "return g * np.exp(self.inputs[0].data)")], "carries no graph"),
    ("01.2", [("return g - p * g.sum(axis=self.axis, keepdims=True)", "return g - p * g")], None),
    ("01.2", [("p = F.softmax(self.inputs[0], axis=self.axis)",
               "p = F.softmax(self.inputs[0], axis=self.axis).numpy()")], "carries no graph"),
    ("01.2", [("return g - p * g.sum(axis=self.axis, keepdims=True)", "return g - p * g.sum(axis=-1, keepdims=True)")],
     "axis 0"),
    ("01.3", [("gradient[i] = (plus - minus) / (2 * eps)", "gradient[i] = (plus - f(x)) / eps")], "one-sided"),
    ("01.3", [("/ (2 * eps)", "/ eps")], "2h apart"),
    ("01.3", [("xc = np.array(x, dtype=np.float64)", "xc = x"), ("        flat[i] = original\n", "")], "changed"),
    ("02.1", [("] += cols[:, :, a, b]", "] = cols[:, :, a, b]")], None),
    ("02.1", [("return x_pad[:, :, ph:ph + h, pw:pw + w]", "return x_pad[:, :, :h, :w]")], None),
    ("02.2", [("d_cols = w.reshape(o, -1).T", "d_cols = w[:, :, ::-1, ::-1].reshape(o, -1).T")], "flipped kernel"),
    ("02.3", [("window.argmax(axis=2)", "(window.shape[2] - 1 - window[:, :, ::-1].argmax(axis=2))")], "ties"),
    ("02.3", [("gx[rows, chans, i * sh + a, j * sw + b] += gy", "gx[rows, chans, i * sh + a, j * sw + b] = gy")],
     "overlapping"),
    ("04.1", [("score = logits[", "score = F.softmax(logits, axis=1)[")], "softmax probability"),
    ("04.1", [("score = logits[np.arange(len(x)), np.asarray(target)].sum()", "score = logits.sum()")], "ALL logits"),
    ("04.2", [("np.abs(np.asarray(maps, dtype=np.float64))", "np.asarray(maps, dtype=np.float64)")], None),
    ("04.2", [("cap = v.min(), np.percentile(v, percentile)", "cap = v.min(), v.max()")], None),
    ("04.2", [("    if cap > lo:\n", "    if True:\n")], "NaN"),
    ("06.1", [("return noise_level * (flat.max(axis=1) - flat.min(axis=1))",
               "return noise_level * np.full(len(x), flat.max() - flat.min())")], "whole batch"),
    ("06.1", [("return noise_level * (flat.max(axis=1) - flat.min(axis=1))",
               "return noise_level * flat.std(axis=1)")], None),
    ("06.2", [("sigmas = noise_stdevs(x, noise_level).reshape(-1, 1, 1, 1, 1)",
               "sigmas = np.full((len(x), 1, 1, 1, 1), noise_level)")], "not noise_level itself"),
    ("06.2", [("sigmas = noise_stdevs(x, noise_level).reshape(-1, 1, 1, 1, 1)",
               "sigmas = noise_level * np.ptp(x) * np.ones((len(x), 1, 1, 1, 1))")], "whole batch"),
    ("06.2", [("sigmas = noise_stdevs(x, noise_level).reshape(-1, 1, 1, 1, 1)",
               "sigmas = noise_stdevs(x, noise_level).reshape(-1, 1, 1, 1, 1) ** 2")], "sigma^2"),
    ("06.2", [(".mean(axis=1).astype(x.dtype)", ".sum(axis=1).astype(x.dtype)")], "sum / n"),
    ("07.1", [("alphas = np.arange(1, steps + 1) / steps", "alphas = np.arange(0, steps) / steps")], "LEFT"),
    ("07.1", [("alphas = np.arange(1, steps + 1) / steps", "alphas = (np.arange(1, steps + 1) - 0.5) / steps")],
     "middle rule"),
    ("07.1", [("return ((x - baseline) * average).astype(x.dtype)", "return average.astype(x.dtype)")],
     "multiply it by (x - baseline)"),
    ("07.1", [("average = gradients.reshape((len(x), steps) + x.shape[1:]).mean(axis=1)",
               "average = gradients.reshape((len(x), steps) + x.shape[1:]).sum(axis=1)")], "m times too big"),
    ("07.2", [("return F.relu(R) * Tensor(self.mask.astype(R.dtype))", "return F.relu(R)")], "deconvnet"),
    ("07.2", [("return F.relu(R) * Tensor(self.mask.astype(R.dtype))",
               "return R * Tensor(self.mask.astype(R.dtype))")], "plain gradient"),
    ("10.1", [("2 * g ** 2 + layer_sums * g ** 3", "2 * g ** 2 + (A * g ** 3).sum(axis=(2, 3), keepdims=True)")],
     "mixed-index"),
    ("10.1", [("layer_sums = A.sum(axis=(2, 3), keepdims=True)", "layer_sums = A.mean(axis=(2, 3), keepdims=True)")],
     "SUM of A^k"),
    ("10.1", [("positive = g > 0", "positive = g != 0")], "g <= 0"),
    ("10.2", [("return (gradcampp_alpha(A, g) * np.maximum(g, 0)).sum(axis=(2, 3)).astype(A.dtype)",
               "return g.mean(axis=(2, 3)).astype(A.dtype)")], "Grad-CAM's weight"),
    ("10.2", [("return (gradcampp_alpha(A, g) * np.maximum(g, 0)).sum(axis=(2, 3)).astype(A.dtype)",
               "return gradcampp_alpha(A, g).sum(axis=(2, 3)).astype(A.dtype)")], "alpha alone"),
    ("11.1", [("alpha = np.where(valid, m2 / np.where", "alpha = np.where(valid, m1 / np.where")], "typo"),
    ("11.1", [("valid = (m2 > 0) & (denominator > 0)", "valid = m2 > 0")], "denominator"),
    ("11.1", [("m1, m2, m3 = (np.mean(g_samples ** p, axis=0) for p in (1, 2, 3))",
               "m1, m2, m3 = (g_samples[-1] ** p for p in (1, 2, 3))")], "one sample only"),
    ("12.1", [("relevance = np.maximum(pooled, 0)", "relevance = np.abs(pooled)")], "positive part"),
    ("12.1", [("return np.where(total > 0, inside / np.where(total > 0, total, 1), 0.0)",
               "return inside / total")], "NaN"),
    ("12.2", [('np.argsort(-pooled.reshape(n, -1), axis=1, kind="stable")',
               'np.argsort(pooled.reshape(n, -1), axis=1, kind="stable")')], "LEAST relevant"),
    ("12.2", [("scores[:, s] = probabilities[np.arange(n), target]", "scores[:, s] = logits[np.arange(n), target]")],
     None),
    ("12.2", [("counts = (np.arange(steps + 1) * pixels) // steps",
               "counts = -(-(np.arange(steps + 1) * pixels) // steps)")], "fractions"),
]


def plant(tmp_path, lesson, replacements, name="wrong"):
    text = solution(lesson).read_text()
    for old, new in replacements:
        assert text.count(old) == 1, f"the planted line {old!r} must occur once in {solution(lesson).name}"
        text = text.replace(old, new)
    path = tmp_path / f"ex{lesson}_{name}.py"
    path.write_text(text)
    return path


def test_the_committed_stubs_are_made_from_the_solutions():
    """Each stub is its solution with every marked answer replaced by a raise, written by
    `python -m minisg.classroom.stubs`: run it after editing a solution."""
    assert sorted(stubs.expected_stubs(SOLUTIONS)) == sorted(path.name for path in STUBS.glob("ex*.py"))
    assert stubs.differing_stubs(SOLUTIONS, STUBS) == [], "run `python -m minisg.classroom.stubs`"


def test_the_stub_generator_writes_the_stubs_and_refuses_broken_markers(tmp_path):
    written = stubs.write_stubs(SOLUTIONS, tmp_path)
    assert sorted(path.name for path in written) == sorted(path.name for path in STUBS.glob("ex*.py"))
    for path in written:
        assert path.read_bytes() == (STUBS / path.name).read_bytes()
    assert stubs.write_stubs(SOLUTIONS, tmp_path) == []                 # nothing differs any more
    (tmp_path / "ex99_orphan.py").write_text("")
    with pytest.raises(stubs.StubError, match="ex99_orphan.py"):
        stubs.write_stubs(SOLUTIONS, tmp_path)

    text = solution("06").read_text()
    broken = [
        (text.replace("    # --- end solution\n", "", 1), "starts inside the solution of line"),
        (text.replace("    # --- end solution\n", "        # --- end solution\n", 1), "not indented like its start"),
        (text[:text.rindex("    # --- end solution")], "06.2 has no '# --- end solution'"),
        (text.replace("# --- solution 06.2", "# --- solution 07.2"), "exercise 07.2 in a file of lesson 06"),
        (text.replace("# --- solution 06.2", "# --- solution 06.1"), "a second solution of exercise 06.1"),
        (text.replace('"""A reference solution', '"""A solution'), "must open with a paragraph"),
        (text.replace("# --- solution", "# solution").replace("# --- end solution", "# end"), "no '# --- solution"),
    ]
    for wrong, message in broken:
        with pytest.raises(stubs.StubError, match=re.escape(message)):
            stubs.stub_text(wrong, solution("06").name)


def test_there_are_enough_exercises_and_every_one_has_a_stub_and_a_solution():
    assert len(ALL_NUMBERS) >= 8
    for lesson in LESSONS:
        stub_text = stub(lesson).read_text()
        assert solution(lesson).exists()
        for item in check.EXERCISES[lesson]:
            assert f'raise NotImplementedError("Exercise {item.number}")' in stub_text
            assert "NotImplementedError" not in solution(lesson).read_text()


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_check_fails_on_the_untouched_stub(lesson):
    results = check.run(lesson, file=stub(lesson))
    assert [r.number for r in results] == [e.number for e in check.EXERCISES[lesson]]
    for result in results:
        assert not result.passed
        assert result.message.startswith("not implemented yet"), result.line()


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_check_passes_on_a_correct_solution(lesson):
    for result in check.run(lesson, file=solution(lesson)):
        assert result.passed, result.line()


def test_every_exercise_has_a_planted_wrong_answer():
    assert set(ALL_NUMBERS) <= {number for number, _, _ in PLANTS}


@pytest.mark.parametrize("number,replacements,shown", PLANTS,
                         ids=[f"{p[0]}-{i}" for i, p in enumerate(PLANTS)])
def test_every_check_fails_on_a_planted_wrong_answer(tmp_path, number, replacements, shown):
    path = plant(tmp_path, number[:2], replacements)
    (result,) = check.run(number, file=path)
    assert not result.passed, f"the check of {number} accepted a wrong answer: {replacements}"
    assert "not implemented" not in result.message
    if shown:
        assert shown in result.message + result.hint, result.line()


def test_smooth_gradcampp_data_really_exercises_the_denominator_guard():
    """Planting `valid = m2 > 0` must matter: some m1 > 0 positions have a negative denominator."""
    import numpy as np

    from minisg.classroom.checks_cam import activations, gradient_samples

    rng = np.random.default_rng(111)                    # the draws of check_smooth_gradcampp_weights
    A = 3 * activations(rng, (2, 3, 4, 4))
    rng.standard_normal((1, 2, 3, 4, 4))
    samples = gradient_samples(rng, (2, 3, 4, 4))
    m1, m2, m3 = (np.mean(samples ** p, axis=0) for p in (1, 2, 3))
    denominator = 2 * m2 + A.sum(axis=(2, 3), keepdims=True) * m3
    assert np.any((m1 > 0) & (denominator < 0))


def test_main_prints_one_line_per_exercise_and_a_summary(capsys):
    assert check.main("01", file=str(solution("01"))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["PASS 01.1 Exp backward", "PASS 01.2 LogSoftmax backward",
                         "PASS 01.3 numerical_gradient (central differences)", "3 of 3 exercises pass"]
    assert check.main(1, file=str(stub("01"))) == 1
    out = capsys.readouterr().out
    assert "FAIL 01.2 LogSoftmax backward: not implemented yet — read lessons/01_autodiff.py, " in out
    assert out.rstrip().endswith("0 of 3 exercises pass")


def test_one_exercise_by_number_and_the_default_file(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)                 # no exercise files here: the stubs that come with minisg
    assert check.main("6.2") == 1
    out = capsys.readouterr().out
    assert str(stub("06")) in out and "FAIL 06.2" in out and "06.1" not in out


def test_the_default_file_is_the_current_folders_then_lessons_exercises_under_it(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    nested = Path.cwd() / "lessons" / "exercises"
    nested.mkdir(parents=True)
    shutil.copy(solution("06"), nested / "ex06_mine.py")
    assert check.main("06") == 0
    assert capsys.readouterr().out.startswith(f"checking {nested / 'ex06_mine.py'}\n")
    shutil.copy(stub("06"), Path.cwd() / "ex06_here.py")
    assert check.main("06") == 1
    assert capsys.readouterr().out.startswith(f"checking {Path.cwd() / 'ex06_here.py'}\n")


def test_no_default_file_names_every_place_looked_and_how_to_get_the_stubs(capsys, monkeypatch, tmp_path):
    no_stubs = tmp_path / "no_stubs"
    no_stubs.mkdir()
    monkeypatch.setattr(check.files, "exercise_stubs", lambda: no_stubs)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert check.main("06") == 2
    err = capsys.readouterr().err
    for place in (Path.cwd(), Path.cwd() / "lessons" / "exercises", no_stubs):
        assert str(place) in err
    assert "`minisg exercises 06` copies the stubs into the current directory" in err
    assert err.count("\n") == 1


def test_copy_stubs_copies_every_stub_of_the_lesson(tmp_path, monkeypatch):
    dest = tmp_path / "new" / "folder"
    copied = check.copy_stubs("06", dest)
    sources = sorted(STUBS.glob("ex06_*.py"))
    assert copied == [dest / source.name for source in sources]
    assert [path.read_bytes() for path in copied] == [source.read_bytes() for source in sources]
    assert sorted(dest.iterdir()) == copied                        # no temporary file left behind
    monkeypatch.chdir(tmp_path)
    assert check.copy_stubs(1) == [Path.cwd() / stub("01").name]   # default: the current folder
    assert (tmp_path / stub("01").name).read_bytes() == stub("01").read_bytes()


def test_copy_stubs_never_overwrites_and_then_copies_nothing(tmp_path, monkeypatch):
    mine = tmp_path / stub("06").name
    mine.write_bytes(b"my answers\n")
    with pytest.raises(check.UsageError) as caught:
        check.copy_stubs("06", tmp_path)
    message = str(caught.value)
    assert str(mine) in message and "another folder" in message and "\n" not in message
    assert sorted(tmp_path.iterdir()) == [mine] and mine.read_bytes() == b"my answers\n"
    with monkeypatch.context() as patched:          # a file made after the check: the copy itself refuses
        patched.setattr(check.os.path, "lexists", lambda path: False)
        with pytest.raises(check.UsageError, match="already exists"):
            check.copy_stubs("06", tmp_path)
    assert sorted(tmp_path.iterdir()) == [mine] and mine.read_bytes() == b"my answers\n"


def test_copy_stubs_of_a_lesson_without_exercises_lists_those_with(tmp_path):
    for lesson in ("05", "abc"):
        with pytest.raises(check.UsageError, match=re.escape(f"number: expected a lesson with exercises "
                                                              f"({', '.join(LESSONS)}), got {lesson!r}")):
            check.copy_stubs(lesson, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_usage_exits_2_with_a_clear_message(capsys, tmp_path):
    assert check.main("05") == 2
    assert f"number: expected a lesson with exercises ({', '.join(LESSONS)}), got '05'" in capsys.readouterr().err
    assert check.main("01.9") == 2
    assert "01.1, 01.2, 01.3" in capsys.readouterr().err
    assert check.main("01", file=str(tmp_path / "missing.py")) == 2
    assert f"--file: expected a readable file, got '{tmp_path / 'missing.py'}', which does not exist" \
        in capsys.readouterr().err
    assert check.main("abc") == 2


def test_errors_in_student_code_are_reported_briefly(tmp_path):
    path = plant(tmp_path, "06", [("flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)",
                                   "raise ValueError('boom')")])
    results = results_by_number("06", path)
    line_number = path.read_text().splitlines().index("    raise ValueError('boom')") + 1
    assert results["06.1"].message == f"your code raised ValueError: boom (line {line_number}, in noise_stdevs)"
    assert not results["06.2"].passed                      # 06.2 calls 06.1

    path = tmp_path / "ex06_syntax.py"
    path.write_text("def noise_stdevs(x, noise_level):\n    return (\n")
    results = check.run("06", file=path)
    assert all(not r.passed and "could not be loaded: SyntaxError" in r.message for r in results)

    path = tmp_path / "ex06_renamed.py"
    path.write_text(solution("06").read_text().replace("def smoothgrad(", "def smooth_grad("))
    results = results_by_number("06", path)
    assert results["06.1"].passed and "smoothgrad is not defined" in results["06.2"].message


def test_a_missing_dependency_is_named(tmp_path):
    """02.2 calls the student's col2im: with 02.1 unsolved the failure says so."""
    path = tmp_path / "ex02_partial.py"
    path.write_text(stubs.stub_text(solution("02").read_text(), str(solution("02")), only={"02.1"}))
    assert path.read_text().count("NotImplementedError") == 1
    results = results_by_number("02", path)
    assert results["02.2"].message == "not implemented yet (needs Exercise 02.1)"
    assert results["02.3"].passed

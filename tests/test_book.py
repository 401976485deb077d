"""`minisg book`: lessons executed as notebooks, written as an offline HTML site, read in a browser.

The fast tests build a book of three tiny lessons made here (one that works, one that stops
itself as a photo lesson does without the ImageNet files, one that fails). The browser test
builds lessons 01 and 04 with --quick and opens the pages in headless Chromium (Debian's
`chromium`): every image decoded, no console error, a screenshot that is not blank.
"""
import html
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minisg.tools import cli

ROOT = Path(__file__).resolve().parent.parent
EXTRA = ("jupytext", "nbclient", "nbformat", "ipykernel", "markdown_it", "mdit_py_plugins", "latex2mathml", "pygments")
MISSING = [name for name in EXTRA if importlib.util.find_spec(name) is None]
needs_extra = pytest.mark.skipif(bool(MISSING), reason=f'needs pip install "minisg[book]" (missing: {MISSING})')
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)

FIRST = '''\
# %% [markdown]
# # Lesson 01 — A first page
#
# The gradient of the score, $M_c(x) = \\partial S_c / \\partial x$, and SmoothGrad's mean
#
# $$\\hat M_c(x) = \\frac{1}{n} \\sum_{m=1}^{n} M_c(x + \\varepsilon_m).$$
#
# A formula latex2mathml cannot read stays as its source: $\\notacommand{x}$.
# Graded exercises in `lessons/exercises/ex01_first.py`.

# %%
import os
import sys
print("options:", sys.argv[1:], "environment:", os.environ.get("MINISG_LESSON_ARGS"))

# %%
import io

from IPython.display import Image, display
from PIL import Image as PILImage

buffer = io.BytesIO()
PILImage.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="PNG")
display(Image(data=buffer.getvalue()))
'''
STOPS = '''\
# %% [markdown]
# # Lesson 02 — Needs photos

# %%
print("lesson 02 skipped, no figures: the photo lessons need the ImageNet networks, labels and photos/")
raise SystemExit(0)

# %%
print("after the stop")
'''
FAILS = '''\
# %% [markdown]
# # Lesson 03 — Breaks

# %%
raise ValueError("a planted failure")
'''
README = '''\
# Lessons

| lesson | idea |
|---|---|
| [01_first](01_first.py) | a page |
| [02_stops](02_stops.py) | a stop |
| [03_fails](03_fails.py) | a failure |
'''


@pytest.fixture
def lessons(tmp_path):
    folder = tmp_path / "lessons"
    (folder / "exercises").mkdir(parents=True)
    for name, text in [("01_first.py", FIRST), ("02_stops.py", STOPS), ("03_fails.py", FAILS), ("README.md", README)]:
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "exercises" / "ex01_first.py").write_text('def one():\n    raise NotImplementedError("Exercise 01.1")\n')
    return folder


def build(out, lessons, *options):
    return cli.main(["book", "--out", str(out), "--lessons-dir", str(lessons), *options])


def test_without_the_extra_the_command_says_how_to_install_it(tmp_path):
    hide_nbclient = ("import sys; sys.modules['nbclient'] = None; from minisg.tools import cli; "
                     f"sys.exit(cli.main(['book', '--out', {str(tmp_path / 'b')!r}]))")
    result = subprocess.run([sys.executable, "-c", hide_nbclient], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and 'pip install "minisg[book]"' in result.stderr, result.stderr
    assert not (tmp_path / "b").exists()


@needs_extra
def test_a_book_of_a_working_a_stopping_and_a_failing_lesson(tmp_path, lessons, capsys, monkeypatch):
    monkeypatch.setenv("MINISG_LESSON_ARGS", "--not-for-the-book")  # a student's setting for notebooks
    out = tmp_path / "book"
    assert build(out, lessons, "--quick") == 1  # one lesson failed: exit status 1, the others built
    progress = capsys.readouterr().out
    assert re.search(r"01_first +ok", progress) and re.search(r"02_stops +stopped", progress), progress
    assert re.search(r"03_fails +failed .*ValueError: a planted failure", progress), progress

    first = (out / "01_first.html").read_text(encoding="utf-8")
    assert "options: [&#x27;--quick&#x27;" in first  # the lesson saw --quick in sys.argv
    assert "environment: None" in first
    assert first.count("<math") == 2 and '<code class="tex">$\\notacommand{x}$</code>' in first
    image = re.search(r'<img src="([^"]+)"', first)[1]
    assert (out / image).read_bytes().startswith(b"\x89PNG")
    assert 'href="02_stops.html"' in first and 'href="index.html"' in first
    assert '<a href="exercises/ex01_first.html"><code>lessons/exercises/ex01_first.py</code></a>' in first
    assert (out / "exercises" / "ex01_first.html").is_file() and (out / "exercises" / "ex01_first.py").is_file()

    stopped = (out / "02_stops.html").read_text(encoding="utf-8")
    assert 'class="banner stopped"' in stopped and "need the ImageNet networks" in stopped
    assert "An exception has occurred" not in stopped and "To exit" not in stopped  # the stop is no error
    assert "after the stop" in stopped and "after the stop\n</pre>" not in stopped  # its code, no output
    failed = (out / "03_fails.html").read_text(encoding="utf-8")
    assert 'class="banner failed"' in failed and "FAILED" in failed and "a planted failure" in failed

    import nbformat
    notebook = nbformat.read(out / "01_first.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown"  # the options cell is not kept
    assert any("image/png" in o.get("data", {}) for cell in notebook.cells for o in cell.get("outputs", []))

    index = (out / "index.html").read_text(encoding="utf-8")
    for page in ("01_first.html", "02_stops.html", "03_fails.html", "exercises/index.html", "credits.html"):
        assert f'href="{page}"' in index
    assert "failed: 03" in index
    for page in out.rglob("*.html"):  # offline: nothing to fetch from elsewhere, no script at all
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text, page
        assert not re.search(r'<(?:link|img)[^>]+(?:href|src)="(?:https?:)?//', text), page


def _fake_execute(notebook, folder, argv):
    from minisg.tools import book
    return book.Outcome("ok", "", 0.0)


@needs_extra
def test_the_book_never_touches_files_it_did_not_write(tmp_path, lessons, monkeypatch, capsys):
    from minisg.tools import book
    monkeypatch.setattr(book, "execute", _fake_execute)  # this test is about the folder, not the kernel
    someone_elses = tmp_path / "photos"
    someone_elses.mkdir()
    (someone_elses / "holiday.txt").write_text("mine")
    assert build(someone_elses, lessons) == 2
    error = capsys.readouterr().err
    assert f"--out {someone_elses}" in error and "never deletes files it did not write" in error
    assert [p.name for p in someone_elses.iterdir()] == ["holiday.txt"]

    out = tmp_path / "book"
    assert build(out, lessons, "--lessons", "02") == 0
    (out / "notes.txt").write_text("mine")
    assert build(out, lessons, "--lessons", "1") == 0  # rebuilt with another lesson
    assert (out / "01_first.html").is_file() and not (out / "02_stops.html").exists()
    assert not (out / "02_stops.ipynb").exists() and (out / "notes.txt").read_text() == "mine"
    listed = json.loads((out / ".minisg-book.json").read_text())["files"]
    assert "notes.txt" not in listed and "01_first.html" in listed and "02_stops.html" not in listed
    assert not list(out.rglob("*.minisg-tmp"))

    assert build(out, lessons, "--lessons", "07") == 2
    assert "--lessons: expected lesson numbers among 01, 02, 03, got 07" in capsys.readouterr().err


# ---------------------------------------------------------------------------- in a real browser

PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (event) {
    var target = event.target || {};
    errors.push(event.message || ("could not load " + (target.src || target.href)));
  }, true);
  var consoleError = console.error;
  console.error = function () { errors.push([].join.call(arguments, " ")); consoleError.apply(console, arguments); };
  window.addEventListener("load", function () {
    var images = [].map.call(document.images, function (img) {
      return {src: img.getAttribute("src"), width: img.naturalWidth, height: img.naturalHeight};
    });
    var result = document.createElement("pre");
    result.id = "minisg-probe";
    var maths = document.querySelectorAll("math").length;
    result.textContent = JSON.stringify({images: images, errors: errors, maths: maths});
    document.body.appendChild(result);
  });
})();
</script>"""


def chromium(*arguments, profile):
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def probe(page, profile):
    """What Chromium saw on `page`: its images' decoded sizes, errors, console messages."""
    copy = page.with_name(f"probe_{page.name}")  # the test's copy; the book itself has no script
    copy.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = chromium("--virtual-time-budget=5000", "--dump-dom", copy.as_uri(), profile=profile)
    found = re.search(r'<pre id="minisg-probe">(.*?)</pre>', result.stdout, flags=re.S)
    assert found, f"the probe did not report on {page.name}\n{result.stderr[-3000:]}"
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(html.unescape(found[1])), console


def assert_not_blank(screenshot):
    from PIL import Image
    with Image.open(screenshot) as image:
        gray = image.convert("L")
        dark = sum(gray.histogram()[:100]) / (gray.width * gray.height)
        darkest, lightest = gray.getextrema()
    assert darkest < 80 and lightest > 200 and dark > 0.002, f"{screenshot.name} looks blank: gray levels " \
                                                               f"{darkest}..{lightest}, {dark:.2%} dark pixels"


@needs_extra
@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (Debian: apt-get install chromium)")
def test_quick_book_of_two_lessons_in_headless_chromium(tmp_path):
    out = tmp_path / "book"
    assert cli.main(["book", "--out", str(out), "--quick", "--lessons", "01", "04"]) == 0
    profile = tmp_path / "chromium-profile"
    lesson_pages = [out / "01_autodiff.html", out / "04_sensitivity_maps.html"]
    other_pages = [out / "index.html", out / "credits.html", out / "exercises" / "ex04_sensitivity_maps.html"]
    for page in lesson_pages + other_pages:
        seen, console = probe(page, profile)
        assert seen["errors"] == [] and console == [], f"{page.name}: {seen['errors']} {console}"
        assert all(image["width"] > 0 and image["height"] > 0 for image in seen["images"]), (page.name, seen["images"])
        if page in lesson_pages:
            assert len(seen["images"]) >= 1 and seen["maths"] >= 1, (page.name, seen)
    for page in lesson_pages:
        screenshot = tmp_path / f"{page.stem}.png"
        result = chromium(f"--screenshot={screenshot}", "--window-size=1100,1400", page.as_uri(), profile=profile)
        assert screenshot.is_file(), result.stderr[-3000:]
        assert_not_blank(screenshot)

"""minisg as a user installs it: the wheel carries its data, runs from any folder, writes nothing
inside the installed package. (.ci/run also runs README's main command from a fresh venv.)"""
import os
import re
import shutil
import subprocess
import sys

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_of_minisg_is_in_the_wheel_list():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "minisg").rglob("__init__.py")}
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages"


def _copy_sources(dest):
    """What pip builds from, copied, so that the build writes nothing into the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("minisg", "data", "lessons"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)


def _tree(folder):
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """minisg installed from a wheel into a folder of its own (its dependencies: this venv's)."""
    root = tmp_path_factory.mktemp("install")
    source, target = root / "source", root / "site"
    source.mkdir()
    _copy_sources(source)
    built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                            str(target), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(target), "MINISG_CACHE_DIR": str(root / "cache")}
    env.pop("MINISG_DATA", None)
    work = root / "work"
    work.mkdir()
    return target, env, work


def _minisg(installed, *args, timeout=600):
    target, env, work = installed
    return subprocess.run([sys.executable, "-m", "minisg", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_wheel_holds_checkpoints_mnist_and_exercise_stubs(installed):
    package = installed[0] / "minisg"
    for name in ("mnist_cnn", "mnist_cnn_noise", "mnist_cnn_gradpen", "mnist_cnn_smoothpen", "scene_cnn"):
        assert (package / "_shipped" / "models" / f"{name}.npz").stat().st_size > 50_000
    assert len(list((package / "_shipped" / "mnist").glob("*-ubyte.gz"))) == 4
    stubs = sorted(path.name for path in (package / "_exercises").glob("ex*.py"))
    assert stubs == sorted(path.name for path in (REPO / "lessons" / "exercises").glob("ex*.py"))
    assert (package / "methods" / "METHODS.md").is_file()


def test_installed_minisg_runs_the_demo_from_another_folder_and_writes_nothing_inside(installed):
    package = installed[0] / "minisg"
    before = _tree(package)
    result = _minisg(installed, "demo", "--out", "demo.png", "--count", "1")
    assert result.returncode == 0, result.stderr
    assert (installed[2] / "demo.png").stat().st_size > 10_000
    assert str(installed[0]) in subprocess.run(
        [sys.executable, "-c", "import minisg; print(minisg.__file__)"], cwd=installed[2], env=installed[1],
        capture_output=True, text=True).stdout  # the installed copy ran, not the checkout
    assert _tree(package) == before


def test_installed_minisg_copies_and_grades_exercises_here(installed):
    work = installed[2]
    copied = _minisg(installed, "exercises", "06")
    assert copied.returncode == 0, copied.stderr
    stub = next(work.glob("ex06_*.py"))
    original = stub.read_bytes()
    again = _minisg(installed, "exercises", "06")
    assert again.returncode == 2 and stub.name in again.stderr and again.stderr.count("\n") == 1
    assert stub.read_bytes() == original
    graded = _minisg(installed, "check", "06")
    assert graded.returncode == 1                         # the untouched stub is graded, and fails
    assert re.search(r"06\.1", graded.stdout) and "FAIL" in graded.stdout


def test_version_and_python_dash_m(installed):
    from minisg import __version__
    result = _minisg(installed, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"minisg {__version__}"

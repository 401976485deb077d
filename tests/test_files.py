"""minisg.files: atomic writes leave no temporary file behind, locks refuse a second writer,
output paths are refused before any work."""
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from minisg import files


def test_atomic_write_replaces_in_one_step_and_cleans_up_on_error(tmp_path):
    path = tmp_path / "result.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_write(path, "w") as handle:
            handle.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]
    with files.atomic_write(path, "w") as handle:
        handle.write("new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_a_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "model.npz"
    script = textwrap.dedent(f"""
        import os, signal
        from minisg import files
        with files.atomic_write({str(path)!r}) as handle:
            handle.write(b"x" * 1000)
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.run([sys.executable, "-c", script])
    assert killed.returncode == -signal.SIGKILL
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(files.TEMP_SUFFIX)]
    assert len(leftovers) == 1 and not path.exists()
    busy = tmp_path / f".model.npz.{os.getpid()}-0000{files.TEMP_SUFFIX}"   # a live writer's: kept
    busy.write_bytes(b"busy")
    other = tmp_path / f".other.npz.1-0000{files.TEMP_SUFFIX}"             # another path's: kept
    other.write_bytes(b"")
    writer = files._hold(busy)                   # what a running writer holds while it writes
    try:
        with files.atomic_write(path) as handle:
            handle.write(b"complete")
    finally:
        os.close(writer)
    assert path.read_bytes() == b"complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, busy.name, other.name])
    with files.atomic_write(path) as handle:     # once nobody holds it, even our own PID's is stale
        handle.write(b"again")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, other.name])


def test_a_staging_folder_is_removed_whatever_happens(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with files.staging_folder(tmp_path) as staging:
            (staging / "a.csv").write_text("1")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def _hold_lock(path, ready, release):
    with files.exclusive(path):
        ready.set()
        release.wait(30)


def test_exclusive_refuses_a_second_writer_and_frees_the_path_afterwards(tmp_path):
    path = tmp_path / "out.npz"
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(files.FileBusyError, match="--out .*out.npz.*another minisg process"):
            with files.exclusive(path):
                pass
    finally:
        release.set()
        holder.join(30)
    with files.exclusive(path):
        assert (tmp_path / "out.npz.lock").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_new_file_is_written_only_where_none_is(tmp_path):
    path = tmp_path / "ex06.py"
    assert files.write_new_file(path, b"stub")
    assert not files.write_new_file(path, b"other")
    assert path.read_bytes() == b"stub"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ex06.py"]


def test_a_lock_beside_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with files.exclusive("."):
        assert (tmp_path.parent / f"{tmp_path.name}.lock").exists()


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    path = tmp_path / "out.npz"
    script = f"import os, signal\nfrom minisg import files\nwith files.exclusive({str(path)!r}):\n" \
             f"    os.kill(os.getpid(), signal.SIGKILL)\n"
    assert subprocess.run([sys.executable, "-c", script]).returncode == -signal.SIGKILL
    assert (tmp_path / "out.npz.lock").exists()
    with files.exclusive(path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_output_paths_are_checked_with_the_argument_named(tmp_path):
    (tmp_path / "a_file").write_text("")
    cases = {
        tmp_path: "is a folder",
        tmp_path / "a_file" / "x.png": ".*a_file is a file, not a folder",
        tmp_path / "x.gif": r"cannot write a \.gif file; expected one of .*\.png",
    }
    for path, message in cases.items():
        with pytest.raises(files.OutputPathError, match=f"--figure {path}: {message}"):
            files.check_output_path(path, "--figure", suffixes={".png", ".pdf"})
    assert files.check_output_path(tmp_path / "new" / "deeper" / "x.png", "--figure", {".png"})


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(files.OutputPathError, match="no permission"):
            files.check_output_path(folder / "x.png")
    finally:
        folder.chmod(0o755)


def test_shipped_files_and_the_cache_are_found(monkeypatch, tmp_path):
    assert files.shipped("models", "mnist_cnn.npz").is_file()
    assert sorted(p.name for p in files.exercise_stubs().glob("ex06_*.py"))
    monkeypatch.setenv("MINISG_CACHE_DIR", str(tmp_path / "c"))
    assert files.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MINISG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert files.cache_dir() == tmp_path / "xdg" / "minisg"


def test_compiled_kernels_are_cached_outside_the_package(monkeypatch, tmp_path):
    from minisg.kernels import compile_cache, cpu_pool
    monkeypatch.setenv("MINISG_CACHE_DIR", str(tmp_path))
    kernel = cpu_pool.max_pool_2x2
    locator = compile_cache._UserCacheLocator.from_function(kernel.py_func, cpu_pool.__file__)
    assert str(locator.get_cache_path()).startswith(str(tmp_path / "numba"))
    assert compile_cache._UserCacheLocator.from_function(test_compiled_kernels_are_cached_outside_the_package,
                                                         __file__) is None   # not minisg's: Numba decides
    assert not kernel._cache._cache_path.startswith(str(files.PACKAGE_DIR))   # the one in use


def test_a_staging_folder_of_a_killed_run_is_removed_by_the_next_run(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True)
    dead_pid = int(finished.stdout)
    left = tmp_path / f".staging.{dead_pid}-abcd1234{files.TEMP_SUFFIX}"
    left.mkdir()
    (left / "results.md").write_text("half")
    with files.staging_folder(tmp_path) as staging:
        assert not left.exists() and staging.exists()
    assert list(tmp_path.iterdir()) == []

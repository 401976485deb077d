"""Where minisg's files are, and how it writes them without ever losing one.

- ``shipped(*parts)``    — a file that comes with minisg (checkpoints, MNIST): inside the installed
                           package, or in the repository's ``data/`` folder in a source checkout;
- ``exercise_stubs()``   — the folder of classroom exercise stubs, found the same way;
- ``cache_dir()``        — the user's cache folder (compiled kernels); never inside the package;
- ``atomic_write(path)`` — write a file through a temporary file and a rename: readers see the old
                           file or the new one, never half of one; temporary files of a killed run
                           are removed by the next write to the same path;
- ``staging_folder(dir)``— the same for several files that belong together;
- ``exclusive(path)``    — a lock so that two minisg processes never write one path at once;
- ``check_output_path``  — refuse an output path that cannot be written, before any work starts;
- ``as_path``, ``unreadable_reason`` — an input path's type, and why it cannot be read (if so).
"""
import contextlib
import errno
import glob
import os
import re
import secrets
import shutil
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The wheel puts the repository's data/ at minisg/_shipped and lessons/exercises at
# minisg/_exercises (see pyproject.toml); a source checkout reads them where they are.
_SHIPPED_PLACES = (PACKAGE_DIR / "_shipped", PACKAGE_DIR.parent / "data")
_EXERCISE_PLACES = (PACKAGE_DIR / "_exercises", PACKAGE_DIR.parent / "lessons" / "exercises")

TEMP_SUFFIX = ".minisg-tmp"
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+" + re.escape(TEMP_SUFFIX) + "$")


class OutputPathError(ValueError):
    """An output path that cannot be written (a folder, under a file, read-only, wrong suffix)."""


class FileBusyError(RuntimeError):
    """Another process is writing the same path."""


def _first_existing(places):
    for place in places:
        if place.is_dir():
            return place
    return places[0]


def shipped(*parts):
    """Path of a shipped file, e.g. shipped("models", "mnist_cnn.npz")."""
    return _first_existing(_SHIPPED_PLACES).joinpath(*parts)


def exercise_stubs():
    """The folder holding the exercise stubs exNN_*.py."""
    return _first_existing(_EXERCISE_PLACES)


def cache_dir():
    """$MINISG_CACHE_DIR, else $XDG_CACHE_HOME/minisg, else ~/.cache/minisg."""
    explicit = os.environ.get("MINISG_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "minisg"


# ---------------------------------------------------------------------------- temporary files

def _lock(fd, wait=True):
    """flock `fd` exclusively; False when another process holds it (and wait is False).

    The system drops the lock when its holder dies, even by SIGKILL: a temporary file or lock
    file that nobody holds belongs to a finished or killed run."""
    import fcntl  # POSIX; imported here so that reading shipped files works everywhere
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _temp_path(path):
    # the PID is for people reading the folder; whether a writer still runs is told by its lock
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _hold(entry):
    """An open descriptor of a new temp file or folder, locked for as long as it stays open."""
    fd = os.open(entry, os.O_RDONLY)
    _lock(fd)
    return fd


def remove_stale_temps(path):
    """Remove the temporary files and folders of `path` that no running minisg process holds."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for entry in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        match = _TEMP_NAME.match(entry.name)
        if not match or match["name"] != path.name:
            continue
        try:
            fd = os.open(entry, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if _lock(fd, wait=False):  # nobody writes it any more
                _remove(entry)
        finally:
            os.close(fd)


def _remove(entry):
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside `path`; on success it replaces `path` in one rename.

    On any error or interruption the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    temp = _temp_path(path)
    try:
        with open(temp, mode.replace("w", "x")) as handle:
            _lock(handle.fileno())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(temp, path)  # while still locked: never mistaken for a stale temp
    except BaseException:
        _remove(temp)
        raise


def write_new_file(path, data):
    """Write `data` to `path` only if no file is there: False (and nothing written) if one is.

    The bytes go to a locked temporary file first, which is then hard-linked to `path` (a link
    never replaces a file), so `path` is never seen half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    temp = _temp_path(path)
    try:
        with open(temp, "xb") as handle:
            _lock(handle.fileno())
            handle.write(data)
            handle.flush()
            try:
                os.link(temp, path)
            except FileExistsError:
                return False
            except OSError:  # a file system without hard links: create the name exclusively
                try:
                    with open(path, "xb") as target:
                        target.write(data)
                except FileExistsError:
                    return False
        return True
    finally:
        _remove(temp)


@contextlib.contextmanager
def staging_folder(out_dir):
    """A temporary folder inside `out_dir` for files that are moved into it once all are written.

    Removed on exit whatever happens; one left by a killed run is removed by the next call.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir / "staging"
    remove_stale_temps(marker)
    folder = _temp_path(marker)
    folder.mkdir()
    fd = _hold(folder)
    try:
        yield folder
    finally:
        _remove(folder)
        os.close(fd)


# ---------------------------------------------------------------------------- one writer per path

@contextlib.contextmanager
def exclusive(path, argument="--out"):
    """Hold `path`.lock while writing `path`; a second process gets FileBusyError at once.

    The lock is an flock, which the system drops when a process dies (even by SIGKILL), so a
    lock file left behind by a killed run never blocks the next one.
    """
    path = Path(path).resolve()  # "." has no name to put a lock beside
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        if not _lock(fd, wait=False):
            os.close(fd)
            raise FileBusyError(f"{argument} {path}: another minisg process is writing it (it holds "
                                f"{lock_path}); wait for it to finish or choose another path") from None
        # The holder before us may have removed the lock file after we opened it: lock anew.
        try:
            same_file = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(fd)


# ---------------------------------------------------------------------------- output paths

def check_output_path(path, argument="--out", suffixes=None):
    """Raise OutputPathError naming `argument` unless a file can be written at `path`.

    suffixes: the file suffixes this output can be written as (lower case, with the dot).
    Checked before any work starts, so a long run never fails at its end for a bad path.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{argument} {path}: is a folder; expected a file path")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{argument} {path}: cannot write a {path.suffix or 'suffix-less'} file; "
                              f"expected one of {', '.join(sorted(suffixes))}")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputPathError(f"{argument} {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputPathError(f"{argument} {path}: no permission to write in {folder}")
    return path


# ---------------------------------------------------------------------------- input paths

def as_path(value, argument="path"):
    """`value` (a str or os.PathLike) as a Path; TypeError naming `argument` for anything else."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        return Path(value)
    raise TypeError(f"{argument}: expected a file path (str or pathlib.Path), got {value!r}")


def unreadable_reason(path):
    """Why the file at `path` cannot be read, in words; None when it can. Callers raise their own
    error class (DataError, CheckpointError, ...) with this reason and the path."""
    path = Path(path)
    if not path.exists():
        return "does not exist"
    if path.is_dir():
        return "is a folder, not a file"
    if not os.access(path, os.R_OK):
        return "cannot be read (no read permission)"
    return None

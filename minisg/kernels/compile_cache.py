"""Where Numba keeps minisg's compiled kernels, and a one-time note while it compiles them.

Numba's ``cache=True`` normally writes machine code into ``__pycache__`` beside the source file,
which for an installed minisg is inside site-packages: files pip does not know about, which
survive an uninstall and can shadow a later editable install. minisg's kernels are cached in
the user's cache folder instead (``minisg.files.cache_dir() / "numba"``; $MINISG_CACHE_DIR moves
it), and never inside the package.

Compiling every kernel takes about 20 s on a 2-core machine, once per machine and minisg
version. ``enable()`` also prints one line on stderr when the first compilation starts, so
that a first run does not look hung.

``jit`` is the decorator of every CPU kernel (``jit_inline`` of their small helpers). It calls
``enable()`` first, so that no kernel can be cached in Numba's default place by mistake.
"""
import os
import sys
import tempfile

from numba import njit
from numba.core import caching, event
from numba.core import config as numba_config

from .. import files

_PACKAGE_DIR = os.path.realpath(files.PACKAGE_DIR)


def kernel_cache_dir():
    return files.cache_dir() / "numba"


class _UserCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """Numba cache locator for minisg's own source files: the user's cache folder."""

    def __init__(self, py_func, py_file, root=None):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        root = kernel_cache_dir() if root is None else root
        self._cache_path = os.path.join(root, self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self):
        return self._cache_path

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.realpath(py_file).startswith(_PACKAGE_DIR + os.sep):
            return None  # not minisg's: leave it to Numba's own locators
        # The user's cache folder, else a private temporary one: never the package's __pycache__.
        for root in (kernel_cache_dir(), _private_temp_folder()):
            locator = cls(py_func, py_file, root)
            try:
                locator.ensure_cache_path()
                return locator
            except OSError:
                continue
        return None


def _private_temp_folder():
    """A temporary cache folder only this user can write (another user's could plant code)."""
    folder = os.path.join(tempfile.gettempdir(), f"minisg-numba-{os.getuid()}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return tempfile.mkdtemp(prefix="minisg-numba-")
    info = os.lstat(folder)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(folder):
        return tempfile.mkdtemp(prefix="minisg-numba-")  # not ours alone: a fresh one for this run
    return folder


class _FirstCompileNotice(event.Listener):
    """Prints one line when Numba first compiles one of minisg's kernels in this process."""

    said = False

    def on_start(self, ev):
        dispatcher = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if not self.said and module.startswith("minisg."):
            type(self).said = True
            print(f"minisg: compiling the CPU kernels for this machine (first run only, about 20 s; "
                  f"cached in {kernel_cache_dir()})", file=sys.stderr, flush=True)

    def on_end(self, ev):
        pass


_enabled = False


def enable():
    """Install the locator and the notice (once per process); call before any kernel is jitted."""
    global _enabled
    if _enabled:
        return
    _enabled = True
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)  # renamed in 0.62
    locators = getattr(impl, "_locator_classes", None)
    if isinstance(locators, list):
        if _UserCacheLocator not in locators:
            locators.insert(0, _UserCacheLocator)
    else:  # a Numba whose internals moved: its public setting still keeps the cache out of the package
        numba_config.CACHE_DIR = str(kernel_cache_dir())
    event.register("numba:compile", _FirstCompileNotice())


def jit(py_func):
    """Compile a CPU kernel: parallel (prange), cached, IEEE arithmetic, releasing the GIL.

    The kernels are written as plain Python loops (``NUMBA_DISABLE_JIT=1`` runs them as is) and
    always called with C-contiguous arrays and int64 scalars, so each compiles once per dtype.
    """
    enable()  # before njit: Numba picks the cache place when the decorator runs
    return njit(parallel=True, cache=True, fastmath=False, nogil=True)(py_func)


def jit_inline(py_func):
    """Compile a helper of the kernels: Numba copies it into every kernel that calls it (no call
    cost, and the caller's parallel loop stays one loop)."""
    return njit(inline="always")(py_func)

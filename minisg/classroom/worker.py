"""The worker: ``minisg check`` runs the student's file in a second process.

    grade(path, exercises, limit) -> [Result]   grade the file, each exercise within `limit` seconds
    serve(job_fd, answer_fd)                     the worker process's loop

grade() hands the file to a worker process: `python -u -c _WORKER_CODE` imports this module with
the caller's sys.path and serve()s jobs. A job is one JSON line on a pipe, {"path", "cwd",
"numbers"}; the answers are JSON lines on another pipe: {"ready": true} once started, then per
job {"loaded": true} or {"loaded": false, "message", "hint"}, then one Result per exercise.
Only strings and booleans cross, never the student's objects. The caller waits at most the time
limit for each answer; on a timeout, or when the worker dies (os._exit, a crash, a kill), it
kills the worker, writes that exercise's FAIL and grades the remaining ones in a new worker.
The worker is kept for the next grade() of the same process (starting one costs about as much as
importing minisg, and lesson 04's checks load Numba's kernels once); after each job it puts back
the functions, classes and modules of minisg's and NumPy's module namespaces that the student's
file may have rebound (`F.exp = exp`), and drops the file's module.
"""
import atexit
import dataclasses
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import types

import numpy as np

from .registry import Result, exercise_by_number
from .student_code import EXIT_HINT, describe, exit_call, load_exercise_file, run_one

# Seconds each exercise (and the import of the student's file) may take. The slowest honest
# solution measured (exercise 04.1, the reference solution, on a loaded 2-core machine) takes
# 0.9 s with Numba's kernel cache warm and 4.3 s when the kernels are compiled first: 60 s is
# 14x that. Override: run(..., time_limit=S), main(..., time_limit=S), MINISG_CHECK_TIME_LIMIT=S.
TIME_LIMIT = 60.0
TIME_LIMIT_VARIABLE = "MINISG_CHECK_TIME_LIMIT"

TIMEOUT_HINT = (f"look for a loop whose condition never changes; on a slow machine {TIME_LIMIT_VARIABLE}=SECONDS "
                f"gives each exercise more time")
CRASH_HINT = "call your function yourself on a small input to see where the process dies"

_WORKER_CODE = ("import sys; fds = [int(fd) for fd in sys.argv[1:3]]; sys.path[:] = sys.argv[3:]; "
                "sys.argv[:] = ['minisg-check-worker']; from minisg.classroom.worker import serve; serve(*fds)")


class GraderError(RuntimeError):
    """The worker process could not be started (not the student's fault)."""


def serve(job_fd, answer_fd):
    """The worker's loop: grade each job that arrives on job_fd, answer on answer_fd."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the caller, which then kills us
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    answers = os.fdopen(answer_fd, "wb")

    def send(message):
        for stream in (sys.stdout, sys.stderr):  # the student's prints come before the results
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 -- the student may have replaced sys.stdout
                pass
        answers.write(json.dumps(message).encode() + b"\n")
        answers.flush()

    send({"ready": True})
    with os.fdopen(job_fd, "rb") as jobs:
        for line in jobs:
            _grade_job(json.loads(line), send)


def _exit_when_orphaned(parent):
    """End the worker when its caller is gone (killed while the student's code loops)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _grade_job(job, send):
    path = job["path"]
    try:
        os.chdir(job["cwd"])  # the caller's folder: relative paths mean the same to the file
    except OSError:
        pass
    sys.argv[:] = [path]
    items = [exercise_by_number(number) for number in job["numbers"]]
    saved = _library_state()
    module = None
    try:
        try:
            module = load_exercise_file(path)
        except SystemExit as error:
            send({"loaded": False, "message": f"the file called {exit_call(error)} while being imported",
                  "hint": EXIT_HINT})
            return
        except BaseException as error:  # noqa: BLE001
            send({"loaded": False, "message": f"{path} could not be loaded: {_describe_safely(error, path)}",
                  "hint": "fix that error, then check again"})
            return
        send({"loaded": True})
        for item in items:
            try:
                result = run_one(item, module, path)
            except BaseException as error:  # noqa: BLE001 -- e.g. an exception whose str() raises
                result = Result(item.number, item.title, False, f"your code raised {type(error).__name__}",
                                reading=item.reading())
            send(dataclasses.asdict(result))
    finally:
        if module is not None:
            sys.modules.pop(module.__name__, None)
        _restore_library_state(saved)


def _describe_safely(error, path):
    try:
        return describe(error, path)
    except BaseException:  # noqa: BLE001
        return type(error).__name__


_RESTORED = (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType, np.ufunc)


def _library_state():
    return [(vars(module), dict(vars(module))) for name, module in list(sys.modules.items())
            if module is not None and (name in ("minisg", "numpy") or name.startswith("minisg."))]


def _restore_library_state(state):
    for namespace, saved in state:
        for key, value in saved.items():
            if isinstance(value, _RESTORED) and namespace.get(key) is not value:
                namespace[key] = value


class _Timeout(Exception):
    pass


class _Died(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status  # the exit status (negative: the signal), None: no sensible answer


class _Worker:
    """The caller's end of one worker process."""

    def __init__(self):
        if not sys.executable:
            raise GraderError("cannot start a worker process: sys.executable is not set")
        job_read, self._jobs = os.pipe()
        self._answers, answer_write = os.pipe()
        paths = [entry for entry in sys.path if isinstance(entry, str)]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-u", "-c", _WORKER_CODE, str(job_read), str(answer_write), *paths],
                stdin=subprocess.DEVNULL, pass_fds=(job_read, answer_write),
                start_new_session=True)  # Ctrl-C reaches the grader, which then stops the worker
        except OSError as error:
            for fd in (self._jobs, self._answers):
                os.close(fd)
            raise GraderError(f"cannot start a worker process ({sys.executable}): {error}") from None
        finally:
            os.close(job_read)
            os.close(answer_write)
        self.owner = os.getpid()
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._answers, selectors.EVENT_READ)
        self._closed = False

    def send(self, message):
        data = json.dumps(message).encode() + b"\n"
        try:
            while data:
                data = data[os.write(self._jobs, data):]
        except BrokenPipeError:
            raise _Died(self._exit_status()) from None

    def receive(self, timeout):
        """The next answer; _Timeout after `timeout` seconds, _Died when the worker is gone."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout()
            if not self._selector.select(remaining):
                continue
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                raise _Died(self._exit_status())
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise _Died(None)
        return answer

    def _exit_status(self):
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it closed its end of the pipe but runs on
            return None

    def alive(self):
        return self.owner == os.getpid() and self.process.poll() is None

    def close(self, wait=0.0):
        """Stop the worker: let it finish for up to `wait` seconds (it ends when its job pipe
        closes), then kill it. In a forked copy of the caller, only forget it."""
        if self._closed:
            return
        self._closed = True
        mine = self.owner == os.getpid()
        os.close(self._jobs)
        if mine and wait > 0:
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        if mine and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._selector.close()
        os.close(self._answers)


_worker = None
_worker_lock = threading.Lock()
_atexit_registered = False


def _started_worker(limit):
    """The worker of this process, started (and waited for) if there is none."""
    global _worker, _atexit_registered
    if _worker is not None and not _worker.alive():
        _discard_worker()
    if _worker is None:
        worker = _Worker()
        try:
            worker.receive(max(TIME_LIMIT, limit))
        except (_Timeout, _Died) as error:
            worker.close()
            status = getattr(error, "status", None)
            raise GraderError("the worker process did not start"
                              + (f" (exit status {status}; its error is above)" if status is not None else "")) from None
        _worker = worker
        if not _atexit_registered:
            atexit.register(_discard_worker, 1.0)
            _atexit_registered = True
    return _worker


def _discard_worker(wait=0.0):
    global _worker
    worker, _worker = _worker, None
    if worker is not None:
        worker.close(wait)


def _stopped(error, limit, during, what):
    """The message of an exercise (or the import, `what`) that timed out or ended the worker."""
    if isinstance(error, _Timeout):
        return f"{what} took longer than {limit:g} s (time limit); an endless loop?", TIMEOUT_HINT
    status = error.status
    if status is None:
        return f"the grading process stopped answering {during}", CRASH_HINT
    if status >= 0:
        return (f"the file ended the grading process {during}: exit status {status} (os._exit({status})?)",
                EXIT_HINT)
    try:
        name, meaning = signal.Signals(-status).name, signal.strsignal(-status)
    except ValueError:
        name, meaning = f"signal {-status}", None
    if name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT"):
        return f"the grading process crashed {during}: {name} ({meaning})", CRASH_HINT
    extra = "; out of memory?" if name == "SIGKILL" else ""
    return f"the grading process was killed {during}: {name} ({meaning}{extra})", CRASH_HINT


def _grade(path, items, limit):
    results, pending = [], list(items)
    while pending:  # one pass per worker: a timeout or a crash ends it, the rest go to a new one
        worker = _started_worker(limit)
        try:
            worker.send({"path": str(path), "cwd": os.getcwd(), "numbers": [e.number for e in pending]})
            loaded = worker.receive(limit)
        except (_Timeout, _Died) as error:
            _discard_worker()
            message, hint = _stopped(error, limit, "while being imported", "importing the file")
            return results + [Result(e.number, e.title, False, message, hint) for e in pending]
        if not loaded.get("loaded"):
            return results + [Result(e.number, e.title, False, str(loaded.get("message")), str(loaded.get("hint")))
                              for e in pending]
        while pending:
            item = pending.pop(0)
            try:
                answer = worker.receive(limit)
            except (_Timeout, _Died) as error:
                _discard_worker()
                message, hint = _stopped(error, limit, f"while running exercise {item.number}",
                                         f"exercise {item.number}")
                results.append(Result(item.number, item.title, False, message, hint))
                break
            results.append(Result(item.number, item.title, answer.get("passed") is True,
                                  *(str(answer.get(field, "")) for field in ("message", "hint", "reading"))))
    return results


def grade(path, items, limit):
    """Grade the file `path` on the Exercises `items` in the worker (started when there is none),
    each exercise (and the import) within `limit` seconds: one Result per exercise."""
    with _worker_lock:
        try:
            return _grade(path, items, limit)
        except BaseException:  # Ctrl-C or an error here: never leave a worker running a job
            _discard_worker()
            raise

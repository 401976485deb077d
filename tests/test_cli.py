"""The `minisg` command: one line on stderr and exit code 2 for every failure, 130 for Ctrl-C,
143 for SIGTERM; output paths and images checked before any work."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minisg import data
from minisg.tools import cli


def _one_line_error(capsys, code, argv):
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize("argv, message", [
    (["demo", "--count", "0"], "--count: expected an integer from 1 to 10, got 0"),
    (["demo", "--out", "{tmp}"], "--out {tmp}: is a folder"),
    (["demo", "--out", "{tmp}/plot.gif"], "cannot write a .gif file"),
    (["demo", "--out", "{tmp}/a_file/plot.png"], "a_file is a file, not a folder"),
    (["explain", "{tmp}/a_file", "--out", "{tmp}/m.bmp"], "--out {tmp}/m.bmp: cannot write a .bmp file"),
    (["explain", "{tmp}"], "image: expected a readable file, got '{tmp}', which is a folder"),
    (["evaluate", "--out", "{tmp}/a_file"], "--out {tmp}/a_file: is a file; expected a folder"),
    (["demo", "--count", "x"], "--count: expected an integer from 1 to 10, got 'x'"),
    (["explain", "{tmp}/a_file", "--method", "nope"], "--method: expected one of 'deconvnet', "),
])
def test_every_failure_is_one_line_naming_the_argument(tmp_path, capsys, argv, message):
    (tmp_path / "a_file").write_text("not an image")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    try:
        error = _one_line_error(capsys, 2, argv)
    except SystemExit as exc:  # argparse's own errors exit from inside parse_args
        assert exc.code == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1
    assert message.replace("{tmp}", str(tmp_path)) in error


def _digit_png(path, size=None):
    digit = data.load_mnist("test")[0][0, 0]
    image = Image.fromarray((digit * 255).astype(np.uint8))
    (image.resize(size) if size else image).save(path)


def test_images_that_cannot_be_used_get_one_line(tmp_path, capsys):
    _digit_png(tmp_path / "digit.png")
    whole = (tmp_path / "digit.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(whole[: len(whole) // 2])
    error = _one_line_error(capsys, 2, ["explain", str(tmp_path / "truncated.png")])
    assert "truncated.png: cannot be read" in error
    big = tmp_path / "big.png"
    Image.new("L", (8000, 7000)).save(big)      # 56 megapixels, a few kB as PNG
    error = _one_line_error(capsys, 2, ["explain", str(big)])
    assert "8000x7000 is 56,000,000 pixels; expected at most 50,000,000" in error


def test_out_picks_the_format_from_its_suffix(tmp_path, capsys):
    _digit_png(tmp_path / "digit.png")
    for suffix, magic in ((".jpg", b"\xff\xd8\xff"), (".pdf", b"%PDF"), (".png", b"\x89PNG")):
        out = tmp_path / f"map{suffix}"
        assert cli.main(["explain", str(tmp_path / "digit.png"), "--method", "vanilla", "--out", str(out)]) == 0
        assert out.read_bytes().startswith(magic)


def test_version_and_python_dash_m(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    from minisg import __version__
    assert capsys.readouterr().out.strip() == f"minisg {__version__}"
    result = subprocess.run([sys.executable, "-m", "minisg", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"minisg {__version__}"


# Each command is stopped while it works: the function it spends its time in is replaced by one
# that says it started, then waits to be interrupted.
_STALL = textwrap.dedent("""
    import sys, time, pathlib
    import {module} as target
    from minisg.tools import cli
    def stalled(*args, **kwargs):
        pathlib.Path(sys.argv[1]).write_text("started")
        time.sleep(120)
    target.{function} = stalled
    sys.exit(cli.main(sys.argv[2:]))
""")
_COMMANDS = {
    "demo": ("minisg.models", "load", ["demo", "--out", "d.png"]),
    "explain": ("minisg.models", "load", ["explain", "digit.png"]),
    "bench": ("minisg.models", "load", ["bench"]),
    "evaluate-model": ("minisg.models", "load", ["evaluate-model", "mnist_cnn"]),
    "evaluate": ("minisg.evaluation.report", "_compute", ["evaluate", "--quick", "--out", "ev"]),
    "check": ("minisg.classroom.grading", "main", ["check", "06"]),
    "train": ("minisg.models.training", "train", ["train", "--out", "t.npz"]),
}


@pytest.mark.parametrize("command, signum, code", [(name, signal.SIGINT, 130) for name in sorted(_COMMANDS)]
                         + [(name, signal.SIGTERM, 143) for name in ("evaluate", "train")])
def test_ctrl_c_and_sigterm_give_one_line_and_their_exit_code(tmp_path, command, signum, code):
    module, function, argv = _COMMANDS[command]
    _digit_png(tmp_path / "digit.png")
    started = tmp_path / "started"
    script = _STALL.format(module=module, function=function)
    process = subprocess.Popen([sys.executable, "-c", script, str(started), *argv], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert err.strip().count("\n") == 0 and ("interrupted" in err or "terminated" in err), err
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name not in ("digit.png", "started")]
    assert leftovers in ([], ["ev"]), leftovers


def _children(pid):
    """PIDs whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(stat.parent.name)
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_ctrl_c_in_a_terminal_stops_the_grader_and_its_worker(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: one line, exit 130, no worker left."""
    student = tmp_path / "ex06_loop.py"
    student.write_text("while True:\n    pass\n")
    process = subprocess.Popen([sys.executable, "-m", "minisg", "check", "06", "--file", str(student)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    time.sleep(4)                       # the worker is importing the endless loop by now
    children = _children(process.pid)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().count("\n") == 0 and "interrupted" in err and "Traceback" not in err, err
    assert children, "the grader had started no worker"
    for pid in children:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        status = Path(f"/proc/{pid}/stat")
        assert not status.exists() or status.read_text().split()[2] == "Z", f"worker {pid} still runs"

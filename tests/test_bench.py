"""The benchmark's plumbing (speed itself is never asserted: `minisg bench` measures it)."""
import numpy as np
import pytest

from minisg.tools import bench
from minisg.tools import bench_torch


def test_torch_side_answers_requests_until_quit():
    calls, replies = [], []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    bench_torch.serve(steps, lambda: None, ["a 3 1\n", "b 1 0\n", "quit\n", "a 5 0\n"], replies.append)
    assert calls == ["a"] * 4 + ["b"]
    assert [list(reply) for reply in replies] == [["a"], ["b"]]
    assert all(reply[name] >= 0 for reply in replies for name in reply)


def test_summary_pairs_each_round_with_its_own_torch_time():
    row = bench._summary([0.020, 0.030, 0.022], [0.010, 0.030, 0.020])
    assert row["minisg_ms"] == pytest.approx(22.0) and row["torch_ms"] == pytest.approx(20.0)
    assert row["time_ratio"] == pytest.approx(1.1)          # the median of 2.0, 1.0, 1.1
    assert row["ratio_range"] == pytest.approx((1.0, 2.0))
    assert "time_ratio" not in bench._summary([0.02], [])


def test_bench_runs_every_workload_without_torch():
    lines = []
    results = bench.run(repeats=1, warmup=0, rounds=1, log=lines.append)["minisg"]
    assert set(results) == set(bench.LABELS)
    assert all(np.isfinite(row["minisg_ms"]) and row["minisg_ms"] > 0 for row in results.values())
    assert len(lines) == 1 + len(bench.LABELS)


def test_breakdown_names_the_kernels_and_adds_up():
    """The profile's exclusive times: the rows of a training step name conv2d_forward and the tie
    step, and no row is larger than the step's wall-clock time."""
    lines = []
    bench.run(repeats=2, warmup=0, rounds=1, breakdown=True, log=lines.append)
    text = "\n".join(lines)
    for name in ("kernel conv2d_forward", "kernel equalise", "kernel adam_update", "op ReLU"):
        assert name in text
    from minisg.tools.profile import Profile
    profile = Profile(lambda: None)
    inner = profile.timed(lambda args: "inner", lambda: sum(range(10000)))
    outer = profile.timed(lambda args: "outer", lambda: [inner() for _ in range(3)])
    outer()
    assert profile.calls == {"inner": 3, "outer": 1}
    assert 0 <= profile.seconds["outer"] and 0 < profile.seconds["inner"]


def test_both_modes_with_torch():
    pytest.importorskip("torch")
    lines = []
    results = bench.run(repeats=1, warmup=0, rounds=1, vs_torch=True, log=lines.append)
    assert set(results) == {"separate processes", "one process"}
    for rows in results.values():
        assert all(row["time_ratio"] > 0 for name, row in rows.items() if name in ("train", "saliency"))


@pytest.mark.parametrize("bad, message", [(dict(rounds=0), "rounds: expected an int >= 1, got 0"),
                                          (dict(repeats=2.5), "repeats: expected an int >= 1, got 2.5"),
                                          (dict(warmup=-1), "warmup: expected an int >= 0, got -1")])
def test_bench_checks_its_counts(bad, message):
    with pytest.raises(ValueError, match=message):
        bench.run(**bad)

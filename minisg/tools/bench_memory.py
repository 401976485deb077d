"""Peak memory of the sampling methods (issue 16: memory bounded by batch_size, not by N*n).

    minisg bench --memory                  every workload below, with its default size
    python -m minisg.tools.bench_memory smoothgrad --n 500      one workload, another size

Each workload runs in a child process of its own, which reports the peak resident set size
(RSS) of its whole life (getrusage's ru_maxrss: imports, model, data and Numba's compiling
included), the RSS just before the method ran (after a warm-up on a tiny input, so the
method's own share shows), and the method's seconds.

  smoothgrad  SmoothGrad (vanilla gradient, kind mean) of the first 100 MNIST test digits with
              the shipped mnist_cnn, n = 2000 noisy copies each, batch_size 32. Holding all
              200,000 noisy copies (float64 draws) and maps at once, it peaked at 3.9 GB; the
              goal is at most 0.6 GB.
  occlusion   Occlusion with the shipped scene_cnn of one 168x168 scene, patch 8, batch_size
              32, at stride 8 and at stride 4 (441 and 1,681 patches): the peak should not grow
              with the number of patches.

Nothing here is a test: memory and time are measured, never asserted. Unix only (resource).
"""
import argparse
import json
import subprocess
import sys
import time

RUNS = [  # (workload, options): what `minisg bench --memory` measures
    ("smoothgrad", dict(images=100, n=2000, batch_size=32)),
    ("occlusion", dict(side=168, patch=8, stride=8, batch_size=32)),
    ("occlusion", dict(side=168, patch=8, stride=4, batch_size=32)),
]


def _smoothgrad(images=100, n=2000, batch_size=32):
    from .. import data, methods, models
    model, x = models.load("mnist_cnn"), data.load_mnist("test")[0][:images]
    label = f"smoothgrad: {len(x)} test digits, n={n}, batch_size={batch_size}"

    def work(count=len(x), samples=n):
        methods.smoothgrad(model, x[:count], None, n=samples, batch_size=batch_size, seed=0)
    return label, work, lambda: work(1, 2)


def _occlusion(side=168, patch=8, stride=8, batch_size=32):
    from .. import data, methods, models
    from ..methods.occlusion import patch_starts
    model, x = models.load("scene_cnn"), data.make_scenes(1, canvas=side, seed=0).images
    patches = len(patch_starts(side, patch, stride)) ** 2
    label = (f"occlusion: one {side}x{side} scene, patch {patch}, stride {stride} ({patches} patches), "
             f"batch_size={batch_size}")

    def work(size=patch, step=stride):
        methods.occlusion(model, x, None, patch=size, stride=step, batch_size=batch_size)
    return label, work, lambda: work(side, side)          # warm-up: one patch, the whole scene


WORKLOADS = {"smoothgrad": _smoothgrad, "occlusion": _occlusion}
OPTIONS = {"smoothgrad": ("images", "n", "batch_size"), "occlusion": ("side", "patch", "stride", "batch_size")}


def _rss_now_mb():
    """This process's resident set now (Linux /proc), or None where there is no /proc."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _peak_rss_mb():
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024    # bytes on macOS, KiB on Linux


def _child(name, options):
    """In the child: build the workload, warm it up on a tiny input (Numba compiles its kernels
    on first use: that time is not the method's), run it once, print one JSON line."""
    label, work, warm_up = WORKLOADS[name](**options)
    warm_up()
    before = _rss_now_mb()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    print(json.dumps(dict(label=label, seconds=seconds, rss_before_mb=before, peak_rss_mb=_peak_rss_mb())))


def measure(name, **options):
    """Run workload `name` in a child process; its report: label, seconds, rss_before_mb, peak_rss_mb."""
    if name not in WORKLOADS:
        raise ValueError(f"workload: expected one of {list(WORKLOADS)}, got {name!r}")
    command = [sys.executable, "-m", "minisg.tools.bench_memory", "--child", name, json.dumps(options)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench --memory: the {name} workload failed (exit {done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe(report):
    before = "" if report["rss_before_mb"] is None else f" ({report['rss_before_mb']:.0f} MB before the method ran)"
    return f"{report['label']}: peak RSS {report['peak_rss_mb']:.0f} MB{before}, {report['seconds']:.1f} s"


def run(runs=RUNS, out=print):
    """Measure each (workload, options) in its own child process and print one line each."""
    reports = []
    for name, options in runs:
        reports.append(measure(name, **options))
        out(describe(reports[-1]))
    return reports


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minisg.tools.bench_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "OPTIONS_JSON"), help=argparse.SUPPRESS)
    parser.add_argument("workload", nargs="?", choices=sorted(WORKLOADS), help="one workload (default: all of RUNS)")
    parser.add_argument("--images", type=int, help="smoothgrad: how many test digits")
    parser.add_argument("--n", type=int, help="smoothgrad: noisy copies per digit")
    parser.add_argument("--side", type=int, help="occlusion: the scene's side in pixels")
    parser.add_argument("--patch", type=int, help="occlusion: the patch's side")
    parser.add_argument("--stride", type=int, help="occlusion: the patches' stride")
    parser.add_argument("--batch-size", type=int, help="images per forward pass")
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child[0], json.loads(args.child[1]))
    if args.workload is None:
        return run()
    every_option = {option for options in OPTIONS.values() for option in options}
    given = {key: value for key, value in vars(args).items() if key in every_option and value is not None}
    wrong = sorted(set(given) - set(OPTIONS[args.workload]))
    if wrong:
        parser.error(f"--{wrong[0].replace('_', '-')}: not an option of the {args.workload} workload "
                     f"(its options: {', '.join(OPTIONS[args.workload])})")
    defaults = next(options for name, options in RUNS if name == args.workload)
    run([(args.workload, {**defaults, **given})])


if __name__ == "__main__":
    main()

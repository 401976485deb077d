"""Tools around the library: the ``minisg`` command line (cli), the demo and ``minisg explain``
(demo), and the benchmarks against PyTorch (bench, bench_torch, bench_kernels)."""

"""What every CPU convolution path shares: zero padding, the NCHW <-> NHWC layout change, and
cutting a batch into chunks whose working arrays stay in cache.

channels-last (NHWC) puts the C values of one pixel next to each other, so that a kernel row of
KW pixels is KW*C consecutive values: the im2col, Winograd and sparse paths copy and add such
long runs. The results go back to NCHW, the layout of the kernel contract.

Numba notes for all the cpu_* modules: an array index built by arithmetic (``a[base + j]``)
gets a negative-index check that stops vectorisation, so the loops index views or use plain
loop counters innermost. A parallel loop over (image, channel) pairs splits its counter as
``t // C, t % C``: Numba types ``divmod`` of a prange counter as floats.
"""
from numba import prange

from .compile_cache import jit

# Target size of one chunk's column matrix: big enough for efficient GEMMs, small enough to
# stay in the last-level cache.
CHUNK_BYTES = 4 << 20


def chunks(N, per_image_bytes, budget=None, at_least=1):
    """Split N images into equal chunks of about `budget` (default CHUNK_BYTES) bytes each, and
    into at least `at_least` chunks (as N allows): returns the chunk size and the (first image,
    image count) of every chunk."""
    budget = CHUNK_BYTES if budget is None else budget
    size = max(1, min(N, budget // max(1, per_image_bytes), -(-N // at_least)))
    count = -(-N // size)
    size = -(-N // count)  # the same number of chunks, more even
    return size, [(n0, min(size, N - n0)) for n0 in range(0, N, size)]


# A kernel hands work to other cores only when each gets about this much (in nanoseconds, as
# estimated by the caller): a hand-off to minisg's worker threads and back costs 0.1-0.15 ms
# (measured on the 2-core machine, idle workers).
MIN_WORK_PER_THREAD_NS = 300_000

# Rough single-core costs (ns) that the kernels' estimates use, measured on the MNIST shapes:
NS_PER_ELEMENT = 1.0   # a pass that reads and writes an array element (Adam, padding, pooling)
NS_PER_MAC = 1 / 40    # a multiply-add in a BLAS product (16 a cycle, vectorised)


def map_images(work, count, ns_per_item, uses_blas=False, images=None):
    """work(start, stop) over slices of range(count) (a batch's images, a GEMM's columns, ...),
    side by side on the cores when each slice gets MIN_WORK_PER_THREAD_NS of work (ns_per_item:
    the caller's estimate): minisg.parallel's worker threads, each running Numba and BLAS on
    itself alone. For the kernels whose items are independent: work writes only its own.

    Why not Numba's or BLAS's own threads? Their idle threads spin after each call (OpenMP's
    team, see cpu_threads; OpenBLAS's for about 0.2 s) and take the core that the next kernel
    wants; minisg's workers sleep. So every matrix product of a kernel (uses_blas) runs with
    one BLAS thread. Inside a batch slice of minisg.parallel, or with MINISG_THREADS=1,
    work(0, count) runs in the calling thread.

    A call on fewer images than threads (`images`, default count: one photo through an
    ImageNet network) runs as it always did instead, in the calling thread with BLAS's own
    threads: its many small products gain more from BLAS's quick (spinning) hand-offs than from
    minisg's (measured on SqueezeNet 1.1, one image: 36 vs 49 ms a forward pass).
    """
    from .. import parallel  # on first use: minisg.parallel sits above the kernels
    if (count if images is None else images) < parallel.get_threads():
        work(0, count)
        return
    per_thread = max(1, int(MIN_WORK_PER_THREAD_NS // max(ns_per_item, 1e-3)))
    parallel.map_kernel_slices(work, count, per_thread, uses_blas)


@jit
def pad_nchw(x, ph, pw, xp):
    """xp (N, C, H+2ph, W+2pw) = x with a zero border."""
    N, C, H, W = x.shape
    for t in prange(N * C):
        n, c = t // C, t % C
        plane = xp[n, c]
        plane[:ph] = 0
        plane[ph + H:] = 0
        plane[:, :pw] = 0
        plane[:, pw + W:] = 0
        plane[ph:ph + H, pw:pw + W] = x[n, c]


@jit
def pad_nhwc(x, ph, pw, xp):
    """xp (N, H+2ph, W+2pw, C) = x moved to channels-last, with a zero border (xp may be larger:
    the Winograd path pads up to whole tiles)."""
    N, C, H, W = x.shape
    for n in prange(N):
        xp[n, :ph] = 0
        xp[n, ph + H:] = 0
        xp[n, :, :pw] = 0
        xp[n, :, pw + W:] = 0
        inner = xp[n, ph:ph + H, pw:pw + W]
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    inner[h, w, c] = x[n, c, h, w]


@jit
def crop_nhwc(xp, ph, pw, x):
    """x (N, C, H, W) = the interior of the channels-last padded xp, back in NCHW."""
    N, C, H, W = x.shape
    for t in prange(N * C):
        n, c = t // C, t % C
        inner = xp[n, ph:ph + H, pw:pw + W]
        out = x[n, c]
        for h in range(H):
            for w in range(W):
                out[h, w] = inner[h, w, c]

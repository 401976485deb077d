"""The checks of lesson 02's exercises (ex02_cnn_layers.py): the backward passes of
convolution and max-pooling, against loops written from the definitions and minisg's reference kernels."""
import numpy as np

from ..kernels import reference
from .expect import as_array, expect_close, expect_float32_kept, matches
from .registry import exercise

def im2col_loops(x, kernel_hw, stride, padding):
    """im2col by its definition, one window at a time (the oracle for 02.1)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    n, c, h, w = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            cols[:, :, i * ow + j] = x_pad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, -1)
    return cols


def adjoint_of_im2col(cols, input_shape, kernel_hw, stride, padding):
    """col2im as the transpose of im2col's matrix, built by applying im2col to unit images."""
    n, c, h, w = input_shape
    units = np.eye(c * h * w).reshape(-1, c, h, w)
    matrix = im2col_loops(units, kernel_hw, stride, padding).reshape(c * h * w, -1)   # (CHW, CKK*P)
    return (cols.reshape(n, -1) @ matrix.T).reshape(input_shape)


IM2COL_CASES = [  # (input shape, kernel, stride, padding)
    ((2, 2, 5, 5), (3, 3), (1, 1), (1, 1)),    # overlapping windows and padding
    ((1, 3, 6, 5), (2, 3), (2, 1), (0, 1)),    # non-square kernel, per-axis stride and padding
    ((1, 1, 7, 7), (3, 3), (2, 2), (0, 0)),    # stride 2: windows overlap by one row/column
]


@exercise("02.1", "col2im", ["col2im"],
          approach="undo im2col's reshape to (N, C, KH, KW, OH, OW), loop over (a, b) with += into the "
                   "padded image's strided slices, then crop the padding",
          section="2. im2col: a convolution is a matrix product")
def check_col2im(ex):
    rng = np.random.default_rng(21)
    for case in IM2COL_CASES:
        cols = rng.standard_normal(im2col_loops(np.zeros(case[0]), *case[1:]).shape)
        what = "col2im for input {}, kernel {}, stride {}, padding {}".format(*case)
        expect_close(ex.col2im(cols, *case), adjoint_of_im2col(cols, *case), what)
    expect_float32_kept(ex.col2im, [cols], *case, what="col2im of float32 columns")


CONV_CASES = [  # (input shape, weight shape, stride, padding)
    ((1, 1, 5, 5), (1, 1, 3, 3), (1, 1), (0, 0)),
    ((2, 3, 5, 6), (2, 3, 3, 3), (1, 1), (1, 1)),
    ((1, 2, 6, 5), (3, 2, 3, 2), (2, 2), (1, 1)),
    ((1, 2, 7, 7), (2, 2, 5, 5), (2, 1), (2, 0)),
]


FLIP_HINT = "that is the input gradient of the flipped kernel: with im2col and col2im no flip is needed"


@exercise("02.2", "conv2d input gradient via col2im", ["conv2d_backward_input"],
          approach="d_cols = w.reshape(O, -1).T @ gy.reshape(N, O, OH*OW), then col2im(d_cols, ...); "
                   "no kernel flip (02.2 uses your 02.1)",
          section="2. im2col: a convolution is a matrix product")
def check_conv2d_backward_input(ex):
    rng = np.random.default_rng(22)
    for x_shape, w_shape, stride, padding in CONV_CASES:
        w = rng.standard_normal(w_shape)
        oh = (x_shape[2] + 2 * padding[0] - w_shape[2]) // stride[0] + 1
        ow = (x_shape[3] + 2 * padding[1] - w_shape[3]) // stride[1] + 1
        gy = rng.standard_normal((x_shape[0], w_shape[0], oh, ow))
        got = as_array(ex.conv2d_backward_input(gy, w, x_shape[2:], stride, padding), "the input gradient")
        flipped = reference.conv2d_backward_input(gy, w[:, :, ::-1, ::-1], x_shape[2:], stride, padding)
        hint = FLIP_HINT if matches(got, flipped) else None
        expect_close(got, reference.conv2d_backward_input(gy, w, x_shape[2:], stride, padding),
                     f"the input gradient for input {x_shape}, weight {w_shape}, stride {stride}, padding {padding}",
                     hint=hint)
    expect_float32_kept(ex.conv2d_backward_input, [gy, w], x_shape[2:], stride, padding,
                        what="the input gradient of float32 arrays")


def pool_cases(rng):
    """(label, x, kernel, stride): plain, tie-heavy, overlapping windows, all ties."""
    return [
        ("distinct values, 2x2 windows", rng.standard_normal((2, 2, 4, 4)), (2, 2), (2, 2)),
        ("ties (x in {0, 1, 2}), 2x2 windows", rng.integers(0, 3, (2, 2, 6, 6)).astype(float), (2, 2), (2, 2)),
        ("overlapping 3x3 windows, stride 2, ties", rng.integers(0, 2, (1, 2, 7, 7)).astype(float), (3, 3), (2, 2)),
        ("an all-zero image, 2x3 windows, stride 1", np.zeros((1, 1, 4, 5)), (2, 3), (1, 1)),
    ]


@exercise("02.3", "max-pool backward", ["max_pool2d_backward"],
          approach="per output (i, j): np.argmax over the window reshaped to (N, C, kh*kw) is the FIRST max; "
                   "add gy there (+=, windows can share a winner)",
          section="3. Max-pooling and its argmax")
def check_max_pool2d_backward(ex):
    rng = np.random.default_rng(23)
    for label, x, kernel, stride in pool_cases(rng):
        y, argmax = reference.max_pool2d_forward(x, kernel, stride)
        gy = rng.standard_normal(y.shape)
        expect_close(ex.max_pool2d_backward(x, gy, kernel, stride),
                     reference.max_pool2d_scatter(gy, argmax, x.shape[2:]), f"the input gradient ({label})")
    expect_float32_kept(ex.max_pool2d_backward, [x, gy], kernel, stride, what="the input gradient of float32 arrays")

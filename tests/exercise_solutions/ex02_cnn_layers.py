"""A reference solution, for the tests of `minisg check` (students: solve the stub yourself).
The stub lessons/exercises/ex02_cnn_layers.py is made from this file:
edit here, then run `python -m minisg.classroom.stubs`.

Lesson 02 exercises: the backward passes of convolution and max-pooling, on arrays.

A convolution is a matrix product once every input window is unrolled into a column
(``im2col``, given below): with ``cols = im2col(x)`` of shape (N, C*KH*KW, OH*OW) and the
weights as a matrix ``w.reshape(O, C*KH*KW)``,

    y = w_mat @ cols          (N, O, OH*OW), reshaped to (N, O, OH, OW).

Backward runs the same picture in reverse: ``d cols = w_mat.T @ gy`` and the column
gradients are added back into the windows they came from (``col2im``, the adjoint of
im2col). Max-pooling sends each window's gradient to the element that won the window.

Shapes are NCHW. ``kernel_hw``, ``stride`` and ``padding`` are (rows, cols) pairs of ints;
padding is zero padding. Output sizes: OH = (H + 2*ph - KH) // sh + 1 (likewise OW).

    02.1  col2im                  add columns back into their windows (the adjoint of im2col)
    02.2  conv2d_backward_input   the input gradient of a convolution, via col2im
    02.3  max_pool2d_backward     route each gradient to its window's first maximum

Grade your answers with ``minisg check 02``. The reference loops that define every kernel
are in minisg/kernels/reference.py: read them, but write the vectorised version yourself.
"""
import numpy as np


def output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel_hw, stride, padding):
    """(N, C, H, W) -> cols (N, C*KH*KW, OH*OW).

    cols[n, (c*KH + a)*KW + b, i*OW + j] = x_pad[n, c, i*sh + a, j*sw + b]: column i*OW + j
    is the window under output position (i, j), rows ordered by (channel, row, col).
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    n, c, h, w = x.shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            # every output position's (a, b) element of its window, as one strided slice
            cols[:, :, a, b] = x_pad[:, :, a:a + sh * oh:sh, b:b + sw * ow:sw]
    return cols.reshape(n, c * kh * kw, oh * ow)


def conv2d_forward(x, w, stride=(1, 1), padding=(0, 0)):
    """y (N, O, OH, OW) = cross-correlation of x (N, C, H, W) with w (O, C, KH, KW), no bias."""
    n, _, h, width = x.shape
    o, _, kh, kw = w.shape
    cols = im2col(x, (kh, kw), stride, padding)
    y = w.reshape(o, -1) @ cols                                   # (N, O, OH*OW)
    oh, ow = output_size(h, kh, stride[0], padding[0]), output_size(width, kw, stride[1], padding[1])
    return y.reshape(n, o, oh, ow)


def col2im(cols, input_shape, kernel_hw, stride, padding):
    """Exercise 02.1: the adjoint of im2col.

    cols:        (N, C*KH*KW, OH*OW) array, laid out as im2col's output.
    input_shape: (N, C, H, W), the shape of the image im2col was applied to.
    Return x of shape (N, C, H, W), dtype of cols, where every entry of cols is ADDED to
    the input element it was read from: positions covered by several windows (stride <
    kernel) receive the sum of all their entries; entries that fall on the zero padding are
    dropped. In formulas: <im2col(x), cols> == <x, col2im(cols)> for all x and cols.
    Hint: allocate the padded image with zeros, undo im2col's reshape, run its (a, b) loop
    with ``+=`` into the same strided slices, then crop the padding off.
    """
    # --- solution 02.1
    (kh, kw), (sh, sw), (ph, pw) = kernel_hw, stride, padding
    n, c, h, w = input_shape
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    x_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            x_pad[:, :, a:a + sh * oh:sh, b:b + sw * ow:sw] += cols[:, :, a, b]
    return x_pad[:, :, ph:ph + h, pw:pw + w]
    # --- end solution


def conv2d_backward_input(gy, w, input_hw, stride, padding):
    """Exercise 02.2: gx = d/dx sum(gy * conv2d_forward(x, w)).

    gy: (N, O, OH, OW) gradient of the output; w: (O, C, KH, KW); input_hw: (H, W).
    Return gx (N, C, H, W), dtype of gy.
    Hint: y = w_mat @ cols, so d cols = w_mat.T @ gy_mat with gy_mat = gy.reshape(N, O, OH*OW);
    then col2im (your 02.1) puts the column gradients back. No flipping of the kernel is
    needed: the transpose of the matrix does the job.
    """
    # --- solution 02.2
    n, o, oh, ow = gy.shape
    _, c, kh, kw = w.shape
    d_cols = w.reshape(o, -1).T @ gy.reshape(n, o, oh * ow)          # (N, C*KH*KW, OH*OW)
    return col2im(d_cols, (n, c) + tuple(input_hw), (kh, kw), stride, padding)
    # --- end solution


def max_pool2d_backward(x, gy, kernel, stride):
    """Exercise 02.3: the input gradient of max-pooling (no padding).

    x:  (N, C, H, W) input of the forward pass; gy: (N, C, OH, OW) gradient of its output.
    kernel, stride: (rows, cols) pairs. Return gx (N, C, H, W), dtype of gy: zeros, except
    that each window's gy goes to the element that won the window's max. On ties the FIRST
    maximum in row-major order of the window wins (MNIST's black background is all ties).
    Where windows overlap (stride < kernel) an element can win several windows: add up.
    Hint: for each output position (i, j), ``np.argmax`` of the window reshaped to
    (N, C, kh*kw) gives the first maximum; ``np.divmod(index, kw)`` its (row, col).
    """
    # --- solution 02.3
    (kh, kw), (sh, sw) = kernel, stride
    n, c, oh, ow = gy.shape
    gx = np.zeros(x.shape, dtype=gy.dtype)
    rows, chans = np.indices((n, c))
    for i in range(oh):
        for j in range(ow):
            window = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, c, -1)
            a, b = np.divmod(window.argmax(axis=2), kw)                 # first maximum
            gx[rows, chans, i * sh + a, j * sw + b] += gy[:, :, i, j]
    return gx
    # --- end solution

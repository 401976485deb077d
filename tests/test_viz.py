"""Visualisation choices (minisg/methods/METHODS.md §10): capping, guards, ranges, figures written."""
import numpy as np
import pytest
from matplotlib.image import imread

from minisg import viz


def test_grayscale_caps_at_the_99th_percentile():
    values = np.linspace(0, 1, 1000).reshape(1, 10, 100)
    values[0, 0, 0] = 1e6                                     # one outlier must not darken the rest
    gray = viz.to_grayscale(values)
    low, cap = values.min(), np.percentile(values, 99)
    np.testing.assert_allclose(gray, np.clip((values[0] - low) / (cap - low), 0, 1))
    assert gray.min() == 0 and gray.max() == 1 and (gray == 1).sum() == 10
    assert np.median(gray) == pytest.approx(0.5 / 0.99, rel=1e-2)          # not 0.5 / 1e6


def test_grayscale_modes_sum_over_channels():
    saliency = np.array([[[1.0, -2.0]], [[-3.0, 0.5]]])        # (C=2, H=1, W=2)
    np.testing.assert_allclose(viz.reduce_channels(saliency, "absolute"), [[4.0, 2.5]])
    np.testing.assert_allclose(viz.reduce_channels(saliency, "positive"), [[1.0, 0.5]])
    np.testing.assert_allclose(viz.reduce_channels(saliency, "signed"), [[-2.0, -1.5]])
    with pytest.raises(ValueError, match=r"mode: expected one of \['absolute', 'positive', 'signed'\], got 'abs'"):
        viz.to_grayscale(saliency, mode="abs")


def test_flat_maps_give_zeros_not_nan():
    for flat in (np.zeros((1, 5, 5)), np.full((5, 5), 3.0)):
        assert np.array_equal(viz.to_grayscale(flat), np.zeros((5, 5)))
        assert np.array_equal(viz.scale01(flat), np.zeros_like(flat))
    assert np.array_equal(viz.diverging(np.zeros((5, 5))), np.zeros((5, 5)))
    spiky = np.zeros((20, 20))
    spiky[0, 0] = 1.0                                        # p99 == min: zeros, not a division by 0
    assert np.array_equal(viz.to_grayscale(spiky), np.zeros((20, 20)))


def test_batches_go_image_by_image():
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((3, 2, 4, 4))
    gray = viz.to_grayscale(batch)
    assert gray.shape == (3, 4, 4)
    np.testing.assert_array_equal(gray[1], viz.to_grayscale(batch[1]))
    np.testing.assert_array_equal(viz.to_grayscale(batch, mode="signed")[2], viz.diverging(batch[2]))


def test_diverging_range_is_minus_one_to_one_with_zero_at_zero():
    values = np.random.default_rng(1).standard_normal((20, 20)) * 5
    values[3, 3] = 0.0
    signed = viz.diverging(values)
    assert signed.min() == -1 and signed.max() == 1 and signed[3, 3] == 0
    np.testing.assert_array_equal(np.sign(signed), np.sign(values))
    np.testing.assert_allclose(viz.diverging(values * 7.5), signed)       # invariant to positive scaling
    colours = viz.colorize(np.array([[-1.0, 0.0, 1.0]]))
    np.testing.assert_allclose(colours[0], [[0, 0, 1], [0.5, 0.5, 0.5], [1, 0, 0]], atol=0.01)   # blue, gray, red


def test_discriminativity_is_a_difference_of_scaled_maps():
    rng = np.random.default_rng(2)
    m1, m2 = rng.standard_normal((1, 6, 6)), rng.standard_normal((1, 6, 6)) * 100
    difference = viz.discriminativity(m1, m2)
    np.testing.assert_allclose(difference, viz.scale01(np.abs(m1[0])) - viz.scale01(np.abs(m2[0])))
    assert -1 <= difference.min() < 0 < difference.max() <= 1
    assert np.array_equal(viz.discriminativity(m1, m1), np.zeros((6, 6)))
    assert viz.discriminativity(np.stack([m1, m2]), np.stack([m2, m1])).shape == (2, 6, 6)


def test_multiply_by_input_has_the_black_pixel_blind_spot():
    image = np.zeros((1, 4, 4))
    image[0, 1:3, 1:3] = 1.0
    product = viz.multiply_by_input(np.ones((1, 4, 4)) * 3, image)
    assert np.all(product[image == 0] == 0) and np.all(product[image == 1] == 3)


def test_overlay_cam_is_rgb_and_scale_free():
    image = np.random.default_rng(3).random((1, 8, 8))
    cam = np.zeros((8, 8))
    cam[2:4, 2:4] = 5.0
    rgb = viz.overlay_cam(image, cam)
    assert rgb.shape == (8, 8, 3) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(viz.overlay_cam(image, cam * 100), rgb)
    np.testing.assert_allclose(viz.overlay_cam(image, np.zeros((8, 8)), alpha=0.0), np.repeat(image[0][..., None], 3, axis=-1))
    assert viz.overlay_cam(np.stack([image, image]), np.stack([cam, cam])).shape == (2, 8, 8, 3)


def test_noise_label_is_the_papers():
    assert viz.noise_label(0.15) == r"$\sigma/(x_{max} - x_{min})$ = 15%"


def test_figure_grid_writes_a_png_atomically(tmp_path):
    rng = np.random.default_rng(4)
    images = rng.random((2, 1, 8, 8))
    columns = {"gradient": viz.to_grayscale(rng.standard_normal((2, 1, 8, 8))),
               "signed": viz.diverging(rng.standard_normal((2, 1, 8, 8))),
               "cam": viz.overlay_cam(images, rng.random((2, 8, 8))),
               "raw": rng.standard_normal((2, 1, 8, 8))}
    path = viz.figure_grid(images, columns, tmp_path / "sub" / "grid.png", titles=["|M|", "M", "Grad-CAM", "raw"],
                           row_labels=[viz.noise_label(0.1), viz.noise_label(0.2)], title="test")
    assert path == tmp_path / "sub" / "grid.png" and path.stat().st_size > 0
    assert imread(path).ndim == 3
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]          # no temp file left behind
    with pytest.raises(ValueError, match="columns: expected 2 maps in every column"):
        viz.figure_grid(images, {"short": columns["gradient"][:1]}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="titles: expected 4 titles"):
        viz.figure_grid(images, columns, tmp_path / "bad.png", titles=["one"])
    assert not (tmp_path / "bad.png").exists()


def test_signed_columns_keep_the_diverging_colours_when_nonnegative(tmp_path):
    """A difference of two maps that is >= 0 everywhere is still a signed quantity: 0 is gray."""
    images = np.zeros((1, 1, 8, 8))
    difference = np.zeros((1, 8, 8))
    difference[0, :, 4:] = 1.0                                # left half 0, right half +1
    auto = imread(viz.figure_grid(images, {"D": difference}, tmp_path / "auto.png", cell_size=2))
    forced = imread(viz.figure_grid(images, {"D": difference}, tmp_path / "forced.png", cell_size=2,
                                    signed=["D"]))
    # gray levels have R == G == B; blue-gray-red's +1 is red (R well above B)
    assert np.allclose(auto[..., 0], auto[..., 2], atol=0.02)
    assert (forced[..., 0] - forced[..., 2] > 0.5).any()
    by_name = imread(viz.figure_grid(images, {"D": difference}, tmp_path / "name.png", cell_size=2, signed="D"))
    np.testing.assert_array_equal(by_name, forced)
    off = imread(viz.figure_grid(images, {"D": difference}, tmp_path / "off.png", cell_size=2, signed=False))
    np.testing.assert_array_equal(off, auto)
    with pytest.raises(ValueError, match=r"signed: expected True, False or names of columns \['D'\], got unknown \['E'\]"):
        viz.figure_grid(images, {"D": difference}, tmp_path / "bad.png", signed=["E"])


def test_figure_grid_draws_labelled_colour_bars_below_the_maps(tmp_path):
    images = np.zeros((2, 1, 8, 8))
    columns = {"gray": np.tile(np.linspace(0, 1, 8), (2, 8, 1)), "signed": np.tile(np.linspace(-1, 1, 8), (2, 8, 1))}
    plain = imread(viz.figure_grid(images, columns, tmp_path / "plain.png"))
    barred = imread(viz.figure_grid(images, columns, tmp_path / "barred.png",
                                    colorbars={"gray": viz.P99_LABEL, "signed": viz.SIGNED_LABEL}))
    assert barred.shape[1] == plain.shape[1] and barred.shape[0] > plain.shape[0] + 30   # room for the bars
    below = barred[plain.shape[0]:, :, :3]                       # under the cells, which end where plain's do
    right, left = below[:, below.shape[1] * 2 // 3:], below[:, below.shape[1] // 3:below.shape[1] * 2 // 3]
    assert ((right[..., 0] > 0.9) & (right[..., 2] < 0.1)).any(), "no red end of a bar under the signed column"
    assert ((right[..., 2] > 0.9) & (right[..., 0] < 0.1)).any(), "no blue end of a bar under the signed column"
    gray_levels = [len(np.unique(np.round(row[np.ptp(row, axis=-1) < 0.01, 0], 2))) for row in left]
    assert max(gray_levels) > 50, "no black-to-white bar under the gray column"
    assert imread(viz.figure_grid(images, columns, tmp_path / "all.png", colorbars="values")).shape == barred.shape


def test_neighbouring_columns_with_one_scale_share_one_bar():
    p99, signed = viz.Scale(viz.P99_LABEL), viz.Scale(viz.SIGNED_LABEL, viz.BLUE_GRAY_RED, -1, 1)
    assert viz._bar_runs([None, p99, p99, signed, p99, None, viz.CAM_SCALE]) == [
        (1, 2, p99), (3, 3, signed), (4, 4, p99), (6, 6, viz.CAM_SCALE)]
    assert viz._bar_runs([None, None]) == []


def test_colour_bar_requests_are_checked(tmp_path):
    images = np.zeros((1, 1, 8, 8))
    columns = {"gradient": np.zeros((1, 8, 8)), "cam": viz.overlay_cam(images, np.ones((1, 8, 8)))}
    with pytest.raises(ValueError, match=r"colorbars: expected names of columns \['gradient', 'cam'\], "
                                         r"got unknown \['grad'\]"):
        viz.figure_grid(images, columns, tmp_path / "bad.png", colorbars={"grad": "x"})
    with pytest.raises(ValueError, match="colorbars: column 'cam' is RGB; expected a Scale"):
        viz.figure_grid(images, columns, tmp_path / "bad.png", colorbars="share")
    with pytest.raises(ValueError, match=r"colorbars: expected a label, a Scale or \{column name: label\}, got 3"):
        viz.figure_grid(images, columns, tmp_path / "bad.png", colorbars=3)
    assert not (tmp_path / "bad.png").exists()
    path = viz.figure_grid(images, columns, tmp_path / "good.png", colorbars={"gradient": "x", "cam": viz.CAM_SCALE})
    assert imread(path).ndim == 3


def test_cells_keep_the_aspect_ratio_of_wide_maps(tmp_path):
    """Two digits side by side (28x56) get wide cells: no empty band above and below them."""
    square = imread(viz.figure_grid(None, {"map": np.zeros((2, 28, 28))}, tmp_path / "square.png"))
    wide = imread(viz.figure_grid(None, {"map": np.zeros((2, 28, 56))}, tmp_path / "wide.png"))
    assert wide.shape[1] == square.shape[1]
    cells_square, cells_wide = square.shape[0] - 40, wide.shape[0] - 40        # less the margins and the title row
    assert cells_wide == pytest.approx(cells_square / 2, rel=0.15)


def test_a_column_is_signed_as_a_whole(tmp_path):
    """One negative value anywhere in a column puts every cell of it on blue-gray-red: the zeros of
    a row without negative values are gray there, not black."""
    column = np.zeros((2, 8, 8))
    column[0, 0, 0] = -1.0
    picture = imread(viz.figure_grid(None, {"D": column}, tmp_path / "column.png", cell_size=2))
    middle_of_second_cell = picture[int(picture.shape[0] * 0.75), picture.shape[1] // 2, :3]
    np.testing.assert_allclose(middle_of_second_cell, [0.5, 0.5, 0.5], atol=0.02)


def test_method_titles_name_the_method_and_its_settings():
    assert viz.method_title("smoothgrad", dict(n=50, noise_level=0.15, seed=0)) == "SmoothGrad\nn = 50, 15% noise"
    assert viz.method_title("integrated_gradients", dict(steps=50)) == "Integrated Gradients\n50 steps"
    assert viz.method_title("occlusion", dict(patch=4, stride=2), separator=", ") == "Occlusion, 4x4 patch, stride 2"
    assert viz.method_title("gradcam_pp") == "Grad-CAM++"
    assert viz.method_title("SmoothGrad(IG)", dict(n=5, noise_level=0.3, steps=25)) == \
        "SmoothGrad(IG)\nn = 5, 30% noise, 25 steps"
    from minisg import methods
    assert set(methods.METHODS) <= set(viz.METHOD_NAMES)                 # every method has a name for figures


# ---- bad input: one error naming the argument and its value (issue 16) ----------------------

MAP = np.random.default_rng(0).standard_normal((1, 6, 6))
GRAY = np.random.default_rng(1).random((6, 6))


@pytest.mark.parametrize("call, error, message", [
    (lambda: viz.to_grayscale("abc"), ValueError, r"saliency: expected an array of numbers, got dtype <U3"),
    (lambda: viz.to_grayscale(np.full((1, 6, 6), np.nan)), ValueError, r"saliency: expected finite values, got 36 NaN"),
    (lambda: viz.diverging([[1.0, 2.0], [3.0]]), ValueError, r"saliency: expected an array of numbers, got a list that "
                                                             r"is no regular array"),
    (lambda: viz.scale01(np.zeros((0, 3))), ValueError, r"values: expected at least one value, got shape \(0, 3\)"),
    (lambda: viz.to_grayscale(MAP, percentile=101), ValueError, r"percentile: expected a number in \(0, 100\], got 101"),
    (lambda: viz.diverging(MAP, percentile=0), ValueError, r"percentile: expected a number in \(0, 100\], got 0"),
    (lambda: viz.to_grayscale(MAP, percentile="99"), TypeError, r"percentile: expected a number in \(0, 100\], got '99'"),
    (lambda: viz.diverging(MAP, percentile=None), TypeError, r"percentile: expected a number in \(0, 100\], got None"),
    (lambda: viz.discriminativity(MAP, np.zeros((1, 3, 3))), ValueError, r"map2: expected a map of map1's size \(6, 6\)"),
    (lambda: viz.multiply_by_input(MAP, np.zeros((3, 5, 5))), ValueError, r"image: expected a shape that fits the map's "
                                                                         r"\(1, 6, 6\), got \(3, 5, 5\)"),
    (lambda: viz.multiply_by_input(MAP, None), ValueError, r"image: expected an array of numbers, got dtype object"),
    (lambda: viz.overlay_cam(None, GRAY), ValueError, r"image: expected an array of numbers, got dtype object"),
    (lambda: viz.overlay_cam(GRAY, np.zeros((5, 5))), ValueError, r"image: expected the cam's size \(5, 5\)"),
    (lambda: viz.overlay_cam(GRAY, np.full((6, 6), np.nan)), ValueError, r"cam: expected finite values"),
    (lambda: viz.overlay_cam(GRAY, GRAY, alpha=2), ValueError, r"alpha: expected a number in \[0, 1\] .*got 2"),
    (lambda: viz.overlay_cam(GRAY, GRAY, alpha=float("nan")), ValueError, r"alpha: expected a finite number, got nan"),
    (lambda: viz.overlay_cam(GRAY, GRAY, cmap="bogus"), ValueError, r"cmap: expected a matplotlib colormap name .*'bogus'"),
    (lambda: viz.overlay_cam(GRAY, GRAY, cmap=3), TypeError, r"cmap: expected a colormap or its name, got 3"),
    (lambda: viz.colorize(GRAY, vmin=1, vmax=-1), ValueError, r"vmax: expected a number above vmin=1, got -1"),
    (lambda: viz.colorize(GRAY, vmin="a"), TypeError, r"vmin: expected a finite number, got 'a'"),
    (lambda: viz.noise_label(None), TypeError, r"noise_level: expected a finite number >= 0, got None"),
    (lambda: viz.noise_label(float("nan")), ValueError, r"noise_level: expected a finite number >= 0, got nan"),
    (lambda: viz.method_title(None), TypeError, r"method: expected a method's name \(str\), got None"),
    (lambda: viz.method_title("smoothgrad", settings=[1]), TypeError, r"settings: expected None or a dict .*got \[1\]"),
    (lambda: viz.check_figure_path(None), TypeError, r"out: expected a file path .*got None"),
])
def test_a_bad_argument_is_named_with_its_value(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("arguments, error, message", [
    (dict(columns=[GRAY]), TypeError, r"columns: expected a non-empty dict \{name: N maps\}, got \["),
    (dict(columns={}), TypeError, r"columns: expected a non-empty dict"),
    (dict(columns={"a": []}), TypeError, r"columns\['a'\]: expected a non-empty sequence of maps"),
    (dict(columns={"a": [GRAY, None]}), ValueError, r"columns\['a'\]\[1\]: expected an array of numbers, got dtype object"),
    (dict(columns={"a": [np.full((6, 6), np.nan)]}), ValueError, r"columns\['a'\]\[0\]: expected finite values"),
    (dict(columns={"a": [np.zeros((2, 2, 6, 6))]}), ValueError, r"columns\['a'\]\[0\]: expected an \(H, W\), \(H, W, 3\) "
                                                               r"or \(C, H, W\) map, got shape \(2, 2, 6, 6\)"),
    (dict(path=None), TypeError, r"path: expected a file path .*got None"),
    (dict(row_labels=["a", "b"]), ValueError, r"row_labels: expected 1 labels \(one per row\), got 2"),
    (dict(titles="ab"), TypeError, r"titles: expected a list of strings, got 'ab'"),
    (dict(cell_size=0), ValueError, r"cell_size: expected a finite number > 0, got 0"),
    (dict(cell_size=10 ** 6), ValueError, r"cell_size: expected a number of inches in \(0, 20\], got 1000000"),
    (dict(dpi=10 ** 6), ValueError, r"dpi: expected an int from 1 to 1,200, got 1000000"),
    (dict(dpi=1.5), TypeError, r"dpi: expected an int from 1 to 1,200, got 1.5"),
])
def test_figure_grid_names_a_bad_argument_before_drawing(tmp_path, arguments, error, message):
    arguments = {"images": None, "columns": {"a": [GRAY]}, "path": tmp_path / "grid.png", **arguments}
    with pytest.raises(error, match=message):
        viz.figure_grid(**arguments)
    assert not (tmp_path / "grid.png").exists()

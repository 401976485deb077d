"""The trained digit network on wider images: its head applied to every 7x7 cell.

The MNIST network reads one 28x28 digit. Its convolutions and pools do not care about the
image's size, though: on a 28x56 image they give a 7x14 feature map, two 7x7 *cells* side by
side. `cell_model` keeps the trained body and applies the trained head (flatten, fc1, ReLU,
fc2) to each cell, averaging the logit vectors:

    S_c(x) = mean over cells k of f_c(cell_k(body(x)))

On a 28x28 image (one cell) it is exactly the trained network. It shares the trained weights
and keeps the layer names, so every method in minisg.methods (Grad-CAM on relu2 included)
works on it unchanged. Lessons 08 (two digits of different classes) and 11 (several digits
of one class) explain images of several digits with it.
"""
from .. import nn

BODY = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2")
HEAD = ("flatten", "fc1", "relu3", "dropout", "fc2")


class CellHead(nn.Module):
    """`head` on every size x size cell of a feature map (row by row); the mean of the logits."""

    def __init__(self, head, size=7):
        super().__init__()
        self.head, self.size = head, size

    def forward(self, features):
        _, _, height, width = features.shape
        if height < self.size or width < self.size:
            raise ValueError(f"CellHead: the feature map ({height}x{width}) is smaller than one "
                             f"{self.size}x{self.size} cell; the image must be at least 28x28")
        cells = [features[:, :, r:r + self.size, c:c + self.size]
                 for r in range(0, height - self.size + 1, self.size)
                 for c in range(0, width - self.size + 1, self.size)]
        total = self.head(cells[0])
        for cell in cells[1:]:
            total = total + self.head(cell)
        return total * (1.0 / len(cells))


def cell_model(trained):
    """`trained` (an mnist_cnn) with its head applied per 7x7 cell after pool2, in eval mode."""
    missing = [name for name in BODY + HEAD if name not in trained.layer_names]
    if missing:
        raise ValueError(f"cell_model: expected an mnist_cnn with layers {list(BODY + HEAD)}; "
                         f"missing {missing}")
    layers = trained.layers
    head = nn.Sequential(*[(name, layers[name]) for name in HEAD])
    model = nn.Sequential(*[(name, layers[name]) for name in BODY], ("cells", CellHead(head))).eval()
    model.default_cam_layer = "relu2"   # as the trained network's (METHODS.md §1)
    # any height and width of at least 28 (one cell): CellHead names a smaller image
    model.input_shape, model.input_range = (1, None, None), trained.input_range
    return model

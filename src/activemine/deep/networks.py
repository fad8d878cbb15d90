"""Networks that come with activemine: a small CNN for small images."""

from __future__ import annotations

from torch import nn

__all__ = ["small_cnn"]


def small_cnn(input_shape: tuple[int, int, int], n_classes: int, *, width: int = 16, hidden: int = 128) -> nn.Module:
    """Two convolution blocks, a hidden layer and a linear head, for images of about 28 to 64 pixels.

    ``input_shape`` is ``(C, H, W)`` (the network takes ``(n, C, H, W)`` tensors); the output is ``(n, n_classes)`` logits. The hidden layer's
    ``hidden`` activations (the input of the last linear layer) are the network's embedding. ``width``
    channels in the first block, twice that in the second: 16 by default, because on two CPU cores width 32
    trained for 5 epochs cost about what width 16 did for 8 and scored lower (docs/deep-models.md).
    """
    channels = int(input_shape[0])
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        # larger images are pooled to 7 x 7, so the hidden layer's size does not grow with them
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(2 * width * 49, hidden),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(hidden, n_classes),
    )

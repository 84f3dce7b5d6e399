"""Model zoo: the seed project's light models, the paper's Table 1 models and the Arm blog's CIFAR-10
network, as plain ``nn.Module``s.

Layer names follow the seed (``conv1``, ``conv2``, ..., ``fc``) so ``--prune-layers conv3 conv4``
means the same thing here. The first linear layer's width is derived from the input shape, so
every model also builds for the offline 1x28x28 digits (CIFAR models included).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.compress.errors import UnknownModelError

Shape = tuple[int, int, int]


def _flat_features(features: Callable[[torch.Tensor], torch.Tensor], input_shape: Shape) -> int:
    """Size of the flattened feature map for one sample (why: linear widths follow the input)."""
    with torch.no_grad():
        return int(features(torch.zeros(1, *input_shape)).numel())


class LeNetLight(nn.Module):
    """Seed LeNet-Light: 5,960 bias-free weights on 1x28x28."""

    def __init__(self, input_shape: Shape = (1, 28, 28), num_classes: int = 10):
        super().__init__()
        c = input_shape[0]
        self.conv1 = nn.Conv2d(c, 8, 5, padding=2, bias=False)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 5, padding=2, bias=False)
        self.pool2 = nn.MaxPool2d(3, stride=3)
        self.fc = nn.Linear(_flat_features(self._features, input_shape), num_classes, bias=False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(torch.relu(self.conv1(x)))
        return self.pool2(torch.relu(self.conv2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self._features(x), 1))


class LeNet(nn.Module):
    """Paper Table 1 LeNet: conv 1->32 3x3, conv 32->64 3x3, maxpool 2, linear 9216->128->10."""

    def __init__(self, input_shape: Shape = (1, 28, 28), num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(_flat_features(self._features, input_shape), 128)
        self.fc2 = nn.Linear(128, num_classes)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        return self.pool(torch.relu(self.conv2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(torch.flatten(self._features(x), 1)))
        return self.fc2(x)


class AlexNetLight(nn.Module):
    """Seed AlexNet-Light (CIFAR-10, 35,248 bias-free weights on 3x32x32)."""

    def __init__(self, input_shape: Shape = (3, 32, 32), num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, stride=2, padding=1, bias=False)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.conv4 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.pool3 = nn.AvgPool2d(2)
        self.fc = nn.Linear(_flat_features(self._features, input_shape), num_classes, bias=False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = torch.relu(self.conv3(x))
        return self.pool3(torch.relu(self.conv4(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self._features(x), 1))


VGG_LIGHT_CFG: list[int | str] = [8, "M", 16, "M", 32, 32, "M", 40, 40]


class VGGLight(nn.Module):
    """Seed VGG-Light: 3x3 pad-1 convs [8, M, 16, M, 32, 32, M, 40, 40], avgpool 2, linear (42,712 weights)."""

    def __init__(self, input_shape: Shape = (3, 32, 32), num_classes: int = 10):
        super().__init__()
        c = input_shape[0]
        self.convs = nn.ModuleDict()
        self.plan: list[str] = []
        for v in VGG_LIGHT_CFG:
            if v == "M":
                self.plan.append("M")
                continue
            name = f"conv{len(self.convs) + 1}"
            self.convs[name] = nn.Conv2d(c, int(v), 3, padding=1, bias=False)
            self.plan.append(name)
            c = int(v)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(_flat_features(self._features, input_shape), num_classes, bias=False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.plan:
            x = self.pool(x) if step == "M" else torch.relu(self.convs[step](x))
        return self.avg(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self._features(x), 1))


class Cifar10Cmsis(nn.Module):
    """The Arm CMSIS-NN blog network: conv5x5 32, maxpool 3/2, conv5x5 32, avgpool 3/2, conv5x5 64,
    avgpool 3/2, linear 1024->10 (pool padding 1 reproduces Caffe's ceil-mode 32->16->8->4)."""

    def __init__(self, input_shape: Shape = (3, 32, 32), num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], 32, 5, padding=2)
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool3 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.fc = nn.Linear(_flat_features(self._features, input_shape), num_classes)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.pool1(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        return self.pool3(torch.relu(self.conv3(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self._features(x), 1))


class AlexNet(nn.Module):
    """Paper Table 1 AlexNet (44.7 M params on 3x32x32): 4 convs with batch norm, maxpool 2,
    linear 6400->4096->4096->10."""

    def __init__(self, input_shape: Shape = (3, 32, 32), num_classes: int = 10):
        super().__init__()
        specs = [(input_shape[0], 64, 2, 2), (64, 192, 3, 1), (192, 384, 3, 1), (384, 256, 3, 1)]
        for i, (cin, cout, k, s) in enumerate(specs, 1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, k, stride=s))
            setattr(self, f"bn{i}", nn.BatchNorm2d(cout))
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(_flat_features(self._features, input_shape), 4096)
        self.fc2 = nn.Linear(4096, 4096)
        self.fc3 = nn.Linear(4096, num_classes)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, 5):
            x = torch.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        return self.pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(torch.flatten(self._features(x), 1)))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn plus a (1x1 conv + bn when the shape changes) shortcut, then relu."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet (paper's block structure, narrower): stem 16, blocks 16/32/64 with stride 2
    between stages, global average pool, linear. Batch norm everywhere (exercises folding)."""

    def __init__(self, input_shape: Shape = (3, 32, 32), num_classes: int = 10, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.layers = nn.Sequential(*blocks)
        with torch.no_grad():
            h = self.layers(self.conv1(torch.zeros(1, *input_shape)))
        self.pool = nn.AvgPool2d(tuple(h.shape[-2:]))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x))
        return self.fc(torch.flatten(x, 1))


MODELS: dict[str, Callable[[Shape, int], nn.Module]] = {
    "lenet-light": LeNetLight,
    "lenet": LeNet,
    "alexnet-light": AlexNetLight,
    "vgg-light": VGGLight,
    "cifar10-cmsis": Cifar10Cmsis,
    "alexnet": AlexNet,
    "resnet": ResNet,
}


def check_known(arch: str) -> str:
    """``arch`` if the zoo has it, else UnknownModelError naming the known models."""
    if arch not in MODELS:
        raise UnknownModelError(
            f"unknown model {arch!r}; known models: {', '.join(MODELS)} (or give a path to an .onnx file)"
        )
    return arch


def build_model(arch: str, input_shape: Shape, num_classes: int) -> nn.Module:
    """Instantiate a zoo model for the given per-sample input shape (C, H, W)."""
    c, h, w = input_shape  # callers may pass a list (a shape read back from JSON)
    return MODELS[check_known(arch)]((c, h, w), num_classes)

"""The networks, their initialisation, and which weights pruning may touch.

Each model is registered with a ``ModelSpec`` that names its output layer, because the paper
prunes the output layer at its own, lower rate. Biases are never pruned; "weights" below means
the weight tensors of the linear and convolutional layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .errors import LTHError


class LeNet300100(nn.Module):
    """The paper's LeNet: fully connected 784-300-100-10 with ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x.flatten(1)))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)

    def linear_layers(self) -> list[nn.Linear]:
        """The layers in order: the training loop's fast path for MLPs uses them directly."""
        return [self.fc1, self.fc2, self.fc3]


class LeNet5(nn.Module):
    """The small CNN that many reproductions call LeNet (LeCun et al. 1998, ReLU, max pooling)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, 28, 28)
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


@dataclass(frozen=True)
class ModelSpec:
    factory: Callable[[], nn.Module]
    output_layer: str  # name of the output layer's weight, pruned at output_prune_rate

    def build(self) -> nn.Module:
        return self.factory()

    def prunable(self, model: nn.Module) -> list[str]:
        """Names of the weights pruning applies to, in layer order."""
        return [
            f"{name}.weight"
            for name, module in model.named_modules()
            if isinstance(module, (nn.Linear, nn.Conv2d))
        ]


MODELS: dict[str, ModelSpec] = {
    "lenet_300_100": ModelSpec(LeNet300100, output_layer="fc3.weight"),
    "lenet5": ModelSpec(LeNet5, output_layer="fc3.weight"),
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise LTHError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def init_model(name: str, seed: int) -> nn.Module:
    """A fresh network: Glorot/Xavier normal weights (as the paper's code), zero biases.

    The seed fully determines the weights: one generator, layers initialised in order.
    """
    model = get_spec(name).build()
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_normal_(module.weight, generator=generator)
            nn.init.zeros_(module.bias)
    return model


def count_weights(masks: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(remaining, total) prunable weights."""
    remaining = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return remaining, total

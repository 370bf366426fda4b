"""Masks and pruning strategies.

A mask is a dict ``{weight name: bool tensor}`` over the prunable weights (biases are never
pruned); ``True`` keeps a weight.

Rounding rule: after round ``r`` a group of ``n`` weights pruned at rate ``p`` keeps exactly
``round_half_up(n * (1 - p) ** r)`` weights. The target is computed from the original size, not
compounded round by round, so rounding errors never accumulate, and a one-shot mask for round r
has exactly the sparsity of iterative round r. (With 784-300-100-10 at 20/20/10 % this gives
51.3 % of the weights after 3 rounds, 21.1 % after 7, 1.9 % after 18, as in the paper.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from .errors import LTHError

Masks = dict[str, torch.Tensor]


def target_remaining(total: int, rate: float, round_: int) -> int:
    """Weights a group of ``total`` keeps after ``round_`` rounds of pruning at ``rate``."""
    return int(math.floor(total * (1.0 - rate) ** round_ + 0.5))


def dense_masks(weights: dict[str, torch.Tensor]) -> Masks:
    return {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}


def percent_remaining(masks: Masks) -> float:
    remaining = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return 100.0 * remaining / total


@dataclass(frozen=True)
class PruneConfig:
    rate: float = 0.2  # fraction of the remaining weights removed per round, hidden layers
    output_rate: float = 0.1  # the same for the output layer (the paper halves it)
    scope: str = "layerwise"  # "layerwise" (the paper's) or "global" (one threshold, hidden layers)

    def __post_init__(self) -> None:
        for key, value in (("prune_rate", self.rate), ("output_prune_rate", self.output_rate)):
            if not 0.0 < value < 1.0:
                raise LTHError(f"{key}={value} must be strictly between 0 and 1")
        if self.scope not in ("layerwise", "global"):
            raise LTHError(f"prune_scope={self.scope!r} must be 'layerwise' or 'global'")


class PruningStrategy(Protocol):
    def prune(self, weights: dict[str, torch.Tensor], masks: Masks, round_: int) -> Masks:
        """Masks for ``round_`` from the trained ``weights`` and the current ``masks``."""


def _groups(names: list[str], output_layer: str, cfg: PruneConfig) -> list[tuple[list[str], float]]:
    """Which weights share one magnitude threshold, and at which rate they are pruned."""
    hidden = [n for n in names if n != output_layer]
    groups = [([n], cfg.rate) for n in hidden] if cfg.scope == "layerwise" else [(hidden, cfg.rate)]
    if output_layer in names:
        groups.append(([output_layer], cfg.output_rate))
    return [g for g in groups if g[0]]


@dataclass(frozen=True)
class MagnitudePruning:
    """Keep the largest-magnitude surviving weights, to the round's target count per group."""

    cfg: PruneConfig
    output_layer: str

    def prune(self, weights: dict[str, torch.Tensor], masks: Masks, round_: int) -> Masks:
        if set(weights) != set(masks):
            raise LTHError(f"mask layers {sorted(masks)} do not match weight layers {sorted(weights)}")
        new = {}
        for names, rate in _groups(list(weights), self.output_layer, self.cfg):
            scores = torch.cat([weights[n].detach().abs().flatten().float() for n in names])
            alive = torch.cat([masks[n].flatten() for n in names])
            keep = target_remaining(scores.numel(), rate, round_)
            if keep > int(alive.sum()):
                raise LTHError(
                    f"round {round_} keeps {keep} weights of {names} but only {int(alive.sum())} "
                    "survive the previous mask: masks and round numbers do not match"
                )
            # Pruned weights can never come back: give them a score below every survivor.
            scores = torch.where(alive, scores, torch.full_like(scores, -1.0))
            # A stable sort makes ties (equal magnitudes) break by position: deterministic.
            order = torch.argsort(scores, descending=True, stable=True)
            flat = torch.zeros_like(alive)
            flat[order[:keep]] = True
            offset = 0
            for n in names:
                size = weights[n].numel()
                new[n] = flat[offset : offset + size].view_as(masks[n]).clone()
                offset += size
        return {n: new[n] for n in weights}


def random_masks_like(masks: Masks, seed: int) -> Masks:
    """Random masks with exactly the per-layer number of survivors of ``masks`` (the control)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, mask in masks.items():
        keep = int(mask.sum())
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[torch.randperm(mask.numel(), generator=generator)[:keep]] = True
        out[name] = flat.view_as(mask)
    return out

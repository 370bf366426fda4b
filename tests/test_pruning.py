"""Masks and magnitude pruning: semantics, exact per-layer fractions, one-shot vs iterative, global scope."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
import torch

from lth import checkpoint
from lth.errors import LTHError
from lth.experiment import make_init, make_ticket_mask
from lth.models import get_spec, init_model
from lth.pruning import (
    MagnitudePruning,
    PruneConfig,
    dense_masks,
    percent_remaining,
    random_masks_like,
    target_remaining,
)

LENET = get_spec("lenet_300_100")
SIZES = {"fc1.weight": 784 * 300, "fc2.weight": 300 * 100, "fc3.weight": 100 * 10}
HIDDEN, OUTPUT = ["fc1.weight", "fc2.weight"], "fc3.weight"


def round_half_up(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def expected_count(n: int, rate: str, r: int) -> int:
    """The documented rule, computed in exact decimal arithmetic (independent of the float code)."""
    return round_half_up(Decimal(n) * (1 - Decimal(rate)) ** r)


def weights_of(seed: int = 0) -> dict[str, torch.Tensor]:
    model = init_model("lenet_300_100", seed)
    params = dict(model.named_parameters())
    return {n: params[n].detach().clone() for n in LENET.prunable(model)}


def iterate(weights, cfg: PruneConfig, rounds: int, train=None) -> list[dict[str, torch.Tensor]]:
    """Masks of rounds 1..rounds; ``train`` optionally changes the weights between rounds."""
    pruner = MagnitudePruning(cfg, LENET.output_layer)
    masks = dense_masks(weights)
    out = []
    for r in range(1, rounds + 1):
        if train is not None:
            weights = train(weights, r)
        masks = pruner.prune(weights, masks, r)
        out.append(masks)
    return out


def counts(masks) -> dict[str, int]:
    return {n: int(m.sum()) for n, m in masks.items()}


# --- mask semantics -------------------------------------------------------------------------


def test_masks_cover_exactly_the_weights_not_the_biases():
    model = init_model("lenet_300_100", 0)
    assert LENET.prunable(model) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    masks = iterate(weights_of(), PruneConfig(), 1)[0]
    assert set(masks) == set(SIZES)
    for name, mask in masks.items():
        assert mask.dtype == torch.bool
        assert mask.shape == dict(model.named_parameters())[name].shape


def test_lenet5_prunes_conv_and_linear_weights():
    spec = get_spec("lenet5")
    assert spec.prunable(spec.build()) == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]


def test_dense_mask_keeps_everything():
    masks = dense_masks(weights_of())
    assert all(bool(m.all()) for m in masks.values())
    assert percent_remaining(masks) == 100.0


def test_true_keeps_a_weight_false_removes_it():
    w = {"fc3.weight": torch.tensor([[0.5, -3.0, 0.1, 2.0]])}
    masks = MagnitudePruning(PruneConfig(output_rate=0.5), "fc3.weight").prune(w, dense_masks(w), 1)
    assert masks["fc3.weight"].tolist() == [[False, True, False, True]]  # the two largest magnitudes stay
    assert (w["fc3.weight"] * masks["fc3.weight"]).tolist() == [[0.0, -3.0, 0.0, 2.0]]


def test_pruning_keeps_the_largest_magnitudes_and_never_revives():
    weights = weights_of()
    rounds = iterate(weights, PruneConfig(), 3)
    previous = dense_masks(weights)
    for masks in rounds:
        for name, mask in masks.items():
            assert not bool((mask & ~previous[name]).any()), f"{name}: a pruned weight came back"
            kept = weights[name][mask].abs()
            removed = weights[name][previous[name] & ~mask].abs()
            assert kept.min() >= removed.max()
        previous = masks


def test_pruned_weights_never_come_back_even_if_they_grow():
    weights = weights_of()

    def train(w, r):  # after round 1, the weights pruned in round 1 become the largest
        if r == 1:
            return w
        return {n: torch.where(first[n], t, t * 1000 + 1000) for n, t in w.items()}

    pruner = MagnitudePruning(PruneConfig(), LENET.output_layer)
    first = pruner.prune(weights, dense_masks(weights), 1)
    second = pruner.prune(train(weights, 2), first, 2)
    for name in second:
        assert not bool((second[name] & ~first[name]).any())


@pytest.mark.bitwise
def test_ties_break_deterministically():
    w = {"fc3.weight": torch.ones(10, 100)}
    a = MagnitudePruning(PruneConfig(), "fc3.weight").prune(w, dense_masks(w), 2)
    b = MagnitudePruning(PruneConfig(), "fc3.weight").prune(w, dense_masks(w), 2)
    assert torch.equal(a["fc3.weight"], b["fc3.weight"])
    assert int(a["fc3.weight"].sum()) == expected_count(1000, "0.1", 2)


def test_ties_keep_the_earlier_positions_layerwise():
    """Equal magnitudes across the keep threshold: the stable sort keeps the earlier positions
    (flattened, row-major); the sign does not matter."""
    fc1 = torch.tensor([[2.0, 1.0, -1.0, 3.0, 1.0], [-1.0, 4.0, 1.0, -1.0, 5.0]])  # six 1s, keep 4 of them
    # All tied, keep 160 of 200 (over 100 elements: torch's unstable CPU sort does reorder ties).
    fc2 = torch.tensor([-1.0, 1.0]).repeat(100).view(10, 20)
    fc3 = torch.tensor([[-7.0, 7.0, 7.0, 7.0, -7.0, 7.0, 7.0, 7.0, 7.0, 7.0]])  # output layer: keep 9 of 10
    w = {"fc1.weight": fc1, "fc2.weight": fc2, "fc3.weight": fc3}
    masks = MagnitudePruning(PruneConfig(), "fc3.weight").prune(w, dense_masks(w), 1)
    assert masks["fc1.weight"].flatten().tolist() == [True] * 7 + [False, False, True]
    assert masks["fc2.weight"].flatten().tolist() == [True] * 160 + [False] * 40
    assert masks["fc3.weight"].flatten().tolist() == [True] * 9 + [False]


def test_ties_keep_the_earlier_positions_globally():
    """One threshold over the hidden layers, concatenated in the model's order: among tied
    magnitudes, fc1's come before fc2's, and within a layer the earlier position wins."""
    fc1 = torch.tensor([[5.0, 5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 1.0, 5.0, 5.0]])  # one 1 at position 7
    fc2 = torch.tensor([[-1.0, 5.0, 1.0, 5.0, 1.0], [5.0, -1.0, 5.0, 1.0, 5.0]])  # 1s at 0, 2, 4, 6, 8
    fc3 = torch.ones(1, 10)
    w = {"fc1.weight": fc1, "fc2.weight": fc2, "fc3.weight": fc3}
    masks = MagnitudePruning(PruneConfig(scope="global"), "fc3.weight").prune(w, dense_masks(w), 1)
    # 20 hidden weights keep 16: the 14 fives and the first two 1s (fc1[7], then fc2[0]).
    assert masks["fc1.weight"].flatten().tolist() == [True] * 10
    assert masks["fc2.weight"].flatten().tolist() == [True, True, False, True, False, True, False, True, False, True]
    assert masks["fc3.weight"].flatten().tolist() == [True] * 9 + [False]
    # All 200 hidden weights tied: keep 160, all of fc1's 100 and the first 60 of fc2's.
    w = {"fc1.weight": torch.ones(10, 10), "fc2.weight": -torch.ones(10, 10), "fc3.weight": fc3}
    masks = MagnitudePruning(PruneConfig(scope="global"), "fc3.weight").prune(w, dense_masks(w), 1)
    assert masks["fc1.weight"].all()
    assert masks["fc2.weight"].flatten().tolist() == [True] * 60 + [False] * 40


def test_ties_among_survivors_keep_the_earlier_positions_in_later_rounds():
    """Round 2 from round 1's mask: the pruned weights stay pruned whatever their size, and the
    tie among survivors breaks by position again."""
    fc1 = torch.tensor([[9.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    w = {"fc1.weight": fc1, "fc3.weight": torch.ones(1, 10)}
    previous = {"fc1.weight": torch.tensor([[False, True, True, True, True], [True, True, True, False, True]]),
                "fc3.weight": torch.ones(1, 10, dtype=torch.bool)}
    masks = MagnitudePruning(PruneConfig(), "fc3.weight").prune(w, previous, 2)  # keeps round(10 * 0.64) = 6
    assert masks["fc1.weight"].flatten().tolist() == [False] + [True] * 6 + [False] * 3


# --- fractions per layer per round -----------------------------------------------------------


def test_target_remaining_is_round_half_up_of_n_times_keep_rate_to_the_r():
    for n in (1, 2, 3, 10, 99, 1000, 30000, 235200):
        for rate in ("0.2", "0.1", "0.5"):
            for r in range(0, 8):
                assert target_remaining(n, float(rate), r) == expected_count(n, rate, r), (n, rate, r)
    assert target_remaining(5, 0.5, 1) == 3  # 2.5 rounds half up, not to even


@pytest.mark.parametrize("r", [1, 2, 3])
def test_layerwise_fractions_after_each_round(r):
    masks = iterate(weights_of(), PruneConfig(rate=0.2, output_rate=0.1), r)[-1]
    got = counts(masks)
    for name in HIDDEN:
        assert got[name] == expected_count(SIZES[name], "0.2", r)
    assert got[OUTPUT] == expected_count(SIZES[OUTPUT], "0.1", r)


def test_after_three_rounds_exactly_0_8_cubed_hidden_and_0_9_cubed_output_remain():
    got = counts(iterate(weights_of(), PruneConfig(), 3)[-1])
    # 235200 * 0.512 = 120422.4, 30000 * 0.512 = 15360, 1000 * 0.729 = 729
    assert got == {"fc1.weight": 120422, "fc2.weight": 15360, "fc3.weight": 729}
    assert round(100 * sum(got.values()) / sum(SIZES.values()), 1) == 51.3


def test_paper_percentages_remaining():
    def pct(r):
        kept = sum(target_remaining(SIZES[n], 0.2, r) for n in HIDDEN) + target_remaining(SIZES[OUTPUT], 0.1, r)
        return round(100 * kept / sum(SIZES.values()), 1)

    assert [pct(r) for r in (1, 2, 3)] == [80.0, 64.1, 51.3]
    assert pct(7) == 21.1
    assert pct(18) == 1.9


def test_fractions_hold_when_the_weights_change_between_rounds():
    gen = torch.Generator().manual_seed(1)

    def train(w, r):  # "training" moves the weights; counts must still follow the rule
        return {n: t + 0.1 * torch.randn(t.shape, generator=gen) for n, t in w.items()}

    for r, masks in enumerate(iterate(weights_of(), PruneConfig(), 4, train=train), start=1):
        got = counts(masks)
        assert got["fc1.weight"] == expected_count(SIZES["fc1.weight"], "0.2", r)
        assert got["fc3.weight"] == expected_count(SIZES["fc3.weight"], "0.1", r)


@pytest.mark.parametrize("r", [1, 2, 3, 5])
def test_oneshot_has_exactly_the_sparsity_of_iterative_round_r(r):
    weights = weights_of()
    gen = torch.Generator().manual_seed(2)
    trained = {n: t + 0.05 * torch.randn(t.shape, generator=gen) for n, t in weights.items()}
    iterative = iterate(trained, PruneConfig(), r)[-1]
    oneshot = MagnitudePruning(PruneConfig(), LENET.output_layer).prune(trained, dense_masks(trained), r)
    assert counts(oneshot) == counts(iterative)
    assert percent_remaining(oneshot) == percent_remaining(iterative)


def test_oneshot_through_the_job_function(tmp_path):
    """make_ticket_mask without a previous mask (what the oneshot rule calls) at round 3."""
    make_init("lenet_300_100", 0, tmp_path / "w.pt")
    meta = make_ticket_mask("lenet_300_100", tmp_path / "w.pt", None, 3, PruneConfig(), tmp_path / "m.pt")
    masks = checkpoint.load_masks(tmp_path / "m.pt", "lenet_300_100")
    assert counts(masks) == {"fc1.weight": 120422, "fc2.weight": 15360, "fc3.weight": 729}
    assert meta["percent_remaining"] == pytest.approx(100 * (120422 + 15360 + 729) / 266200)


def test_iterative_through_the_job_function(tmp_path):
    make_init("lenet_300_100", 0, tmp_path / "w.pt")
    previous = None
    for r in (1, 2, 3):
        make_ticket_mask("lenet_300_100", tmp_path / "w.pt", previous, r, PruneConfig(), tmp_path / f"m{r}.pt")
        previous = tmp_path / f"m{r}.pt"
    masks = checkpoint.load_masks(previous, "lenet_300_100")
    assert counts(masks) == {"fc1.weight": 120422, "fc2.weight": 15360, "fc3.weight": 729}


@pytest.mark.parametrize("r", [1, 3])
def test_global_scope_one_threshold_across_hidden_layers(r):
    weights = weights_of()
    weights["fc2.weight"] = weights["fc2.weight"] * 3  # the layers' magnitudes differ
    masks = iterate(weights, PruneConfig(scope="global"), r)[-1]
    got = counts(masks)
    n_hidden = SIZES["fc1.weight"] + SIZES["fc2.weight"]
    assert got["fc1.weight"] + got["fc2.weight"] == expected_count(n_hidden, "0.2", r)
    assert got[OUTPUT] == expected_count(SIZES[OUTPUT], "0.1", r)  # output layer: its own rate
    # One threshold: every kept hidden weight is at least as large as every removed one.
    kept = torch.cat([weights[n][masks[n]].abs() for n in HIDDEN])
    removed = torch.cat([weights[n][~masks[n]].abs() for n in HIDDEN])
    assert kept.min() >= removed.max()
    # ... which, with fc2 scaled up, prunes fc1 harder than the layer-wise rule would.
    assert got["fc1.weight"] < expected_count(SIZES["fc1.weight"], "0.2", r)
    assert got["fc2.weight"] > expected_count(SIZES["fc2.weight"], "0.2", r)


# --- bad inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [dict(rate=0.0), dict(rate=1.0), dict(output_rate=-0.1), dict(output_rate=1.5),
                                    dict(scope="per-neuron")])
def test_prune_config_refuses_bad_values(kwargs):
    with pytest.raises(LTHError, match="prune_rate|output_prune_rate|prune_scope"):
        PruneConfig(**kwargs)


def test_round_that_does_not_match_the_mask_is_refused():
    weights = weights_of()
    round3 = iterate(weights, PruneConfig(), 3)[-1]
    with pytest.raises(LTHError, match="masks and round numbers do not match"):
        MagnitudePruning(PruneConfig(), LENET.output_layer).prune(weights, round3, 1)


def test_mask_layers_must_match_weight_layers():
    weights = weights_of()
    masks = dense_masks(weights)
    del masks["fc2.weight"]
    with pytest.raises(LTHError, match="do not match"):
        MagnitudePruning(PruneConfig(), LENET.output_layer).prune(weights, masks, 1)


# --- random pruning control ------------------------------------------------------------------


@pytest.mark.bitwise
def test_random_masks_keep_each_layers_count_but_not_its_positions():
    ticket = iterate(weights_of(), PruneConfig(), 2)[-1]
    a, b, c = random_masks_like(ticket, 7), random_masks_like(ticket, 7), random_masks_like(ticket, 8)
    assert counts(a) == counts(ticket)
    assert all(torch.equal(a[n], b[n]) for n in a)  # seeded
    assert not torch.equal(a["fc1.weight"], c["fc1.weight"])
    assert not torch.equal(a["fc1.weight"], ticket["fc1.weight"])

"""Devices and the step loops: where attacks run, where results land, and what the loops wait for.

Every attack runs on the model's device and returns its result on the device of the inputs.
On a machine with only a CPU the cross-device cases reduce to CPU and CPU; the accelerator's
step-loop policy (masks kept on the device, the batch compacted every few steps to a few
sizes) is exercised on the CPU by switching the policy, and must give the same verdicts and
pass counts as the CPU's.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import trustlab.robustness._working as working
from trustlab.robustness import (
    APGDCE,
    APGDDLR,
    APGDT,
    FAB,
    FABT,
    FGSM,
    PGD,
    Attack,
    AttackResult,
    AutoAttack,
    CarliniWagnerL2,
    CountingModel,
    ExampleRandom,
    Square,
    SquareTargeted,
    TargetedPGD,
)
from trustlab.robustness._working import Compaction, WorkingSet, bucket

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
PLACEMENTS = list(itertools.product(DEVICES, DEVICES))
N = 24
EPS = 0.15


def attacks() -> list[Attack]:
    return [
        FGSM(eps=EPS, random_start=True),
        PGD(eps=EPS, steps=5),
        PGD(norm="L2", eps=1.0, steps=5, early_stop=True, restarts=2),
        TargetedPGD(eps=EPS, steps=5, early_stop=True),
        APGDCE(eps=EPS, steps=8),
        APGDDLR(norm="L2", eps=1.0, steps=8),
        APGDT(eps=EPS, steps=8, n_targets=2),
        FAB(eps=EPS, steps=8),
        FABT(norm="L2", eps=1.0, steps=8, n_targets=2, restarts=2),
        Square(eps=EPS, n_queries=60),
        SquareTargeted(norm="L2", eps=1.0, n_queries=60),
        CarliniWagnerL2(steps=10, binary_search_steps=2, initial_const=0.1, lr=0.05),
    ]


def _ids(attack: Attack) -> str:
    return f"{type(attack).__name__}-{attack.norm.value}"


def _placed(model: nn.Module, device: str) -> nn.Module:
    return model if device == "cpu" else copy.deepcopy(model).to(device)


def _tensors(result: Any) -> dict[str, torch.Tensor]:
    return {k: v for k, v in vars(result).items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize(("x_device", "model_device"), PLACEMENTS)
@pytest.mark.parametrize("attack", attacks(), ids=_ids)
def test_results_follow_the_inputs_device(
    attack: Attack,
    x_device: str,
    model_device: str,
    digits_cnn: nn.Module,
    attack_inputs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = attack_inputs
    x, y = x[:N].to(x_device), y[:N].to(x_device)
    targets = ((y + 1) % 10) if attack.targeted else None
    indices = torch.arange(100, 100 + N, device=x_device)
    model = _placed(digits_cnn, model_device)
    result = attack.generate(model=model, x=x, y=y, targets=targets, indices=indices, batch_size=9)
    tensors = _tensors(result)
    assert {"x_adv", "y", "clean_correct", "adv_correct", "success", "perturbation"} <= set(tensors)
    assert all(t.device == x.device for t in tensors.values()), {
        k: t.device for k, t in tensors.items()
    }


def test_numpy_inputs_give_cpu_results(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs
    result = APGDT(eps=EPS, steps=4, n_targets=2).generate(
        model=digits_cnn, x=x[:8].numpy(), y=y[:8].numpy()
    )
    assert all(t.device.type == "cpu" for t in _tensors(result).values())
    assert result.targets is not None and result.targets.device.type == "cpu"


@pytest.mark.parametrize(("x_device", "model_device"), PLACEMENTS)
def test_autoattack_state_and_result_follow_the_inputs_device(
    x_device: str,
    model_device: str,
    tmp_path: Path,
    digits_cnn: nn.Module,
    attack_inputs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = attack_inputs
    x, y = x[:N].to(x_device), y[:N].to(x_device)
    model = _placed(digits_cnn, model_device)
    evaluation = AutoAttack(
        eps=EPS,
        version="custom",
        attacks=[APGDCE(eps=EPS, steps=4), Square(eps=EPS, n_queries=30)],
        sanity=None,
    )
    state = tmp_path / "state.npz"
    first = evaluation.generate(model=model, x=x, y=y, batch_size=10, state_path=state)
    again = evaluation.generate(model=model, x=x, y=y, batch_size=10, state_path=state)
    for result in (first, again):
        assert all(t.device == x.device for t in _tensors(result).values())
    assert torch.equal(first.x_adv, again.x_adv)


# --------------------------------------------------------------------------------------------
# Counter-based draws on the device


def test_draws_are_made_on_the_indices_device_by_default() -> None:
    rng = ExampleRandom(seed=3)
    for device in DEVICES:
        keys = torch.arange(4, device=device)
        assert rng.uniform(indices=keys, step=0, shape=(2,)).device == keys.device
        assert rng.normal(indices=keys, step=0, shape=(2,)).device == keys.device
        assert rng.integers(indices=keys, step=0, high=5).device == keys.device


def test_draws_keep_their_values() -> None:
    """The hash and its scaling are pinned: seeded evaluations keep their numbers."""
    rng = ExampleRandom(seed=0)
    draws = rng.uniform(indices=torch.tensor([0, 7, 2**31 + 5]), step=3, shape=(2,))
    ticks = [[4070392, 3140470], [14594307, 8246887], [6318461, 196395]]
    assert torch.equal(draws, torch.tensor(ticks, dtype=torch.float32) / 2**24)
    normal = rng.normal(indices=torch.tensor([1, 9]), step=2, shape=(2,), dtype=torch.float64)
    expected = [[0.556366592933794, 0.7992880164956845], [0.8078523161849673, -0.05437449239129897]]
    assert torch.allclose(normal, torch.tensor(expected, dtype=torch.float64), rtol=1e-14)
    # Every uniform draw is a multiple of 2**-24, exact in float32: the dtype only rounds it.
    assert torch.equal(
        rng.uniform(indices=torch.arange(50), step=1, shape=(7,), dtype=torch.float64),
        rng.uniform(indices=torch.arange(50), step=1, shape=(7,)).double(),
    )


@pytest.mark.skipif(len(DEVICES) < 2, reason="needs a second device")
def test_draws_are_the_same_on_every_device() -> None:
    rng = ExampleRandom(seed=11)
    keys = torch.arange(40)
    cpu = rng.uniform(indices=keys, step=5, shape=(3, 4))
    for device in DEVICES[1:]:
        there = rng.uniform(indices=keys.to(device), step=5, shape=(3, 4))
        assert torch.equal(there.cpu(), cpu)
        ints = rng.integers(indices=keys.to(device), step=2, high=9, shape=(5,))
        assert torch.equal(ints.cpu(), rng.integers(indices=keys, step=2, high=9, shape=(5,)))


# --------------------------------------------------------------------------------------------
# The working set and pass counting


def test_bucket_sizes_are_few() -> None:
    """Twenty sizes up to 1,024, each at most half as large again as what it holds."""
    sizes = {bucket(m) for m in range(1, 1025)}
    assert len(sizes) == 20
    assert all(m <= bucket(m) <= 3 * m // 2 + 1 for m in range(1, 1025))


def test_bucketed_working_set_pads_then_keeps_active_rows_first() -> None:
    ws = WorkingSet(5, device=torch.device("cpu"), compaction=Compaction(every=2, bucketed=True))
    assert ws.size == 6 and ws.take is not None and ws.take.tolist() == [0, 1, 2, 3, 4, 0]
    assert ws.active.tolist() == [True] * 5 + [False]
    ws.retire(torch.tensor([True, False, True, True, False, False]))
    assert ws.check() is None  # not due yet
    buffer = torch.zeros(6)
    keep = ws.check((buffer, torch.arange(6.0)))
    assert keep is not None and keep.tolist() == [1, 4]
    assert ws.rows.tolist() == [1, 4] and ws.remaining == 2
    assert buffer.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_counting_only_active_rows_waits_for_nothing() -> None:
    counted = CountingModel(nn.Linear(3, 2))
    x = torch.zeros(4, 3, requires_grad=True)
    with counted.only(torch.tensor([True, False, True, False])):
        out = counted(x)
    out.sum().backward()
    assert counted._tallies[0].pending is not None  # kept on the device until read
    assert (counted.forwards, counted.backwards) == (2, 2)
    counted(torch.zeros(3, 3))
    assert counted.forwards == 5


@contextmanager
def accelerator_policy(monkeypatch: pytest.MonkeyPatch, every: int = 3) -> Iterator[None]:
    """Run the step loops with the accelerator's policy (with the cuDNN autotuner) on the CPU."""
    with monkeypatch.context() as patch:
        patch.setattr(
            working, "compaction_for", lambda device: Compaction(every=every, bucketed=True)
        )
        yield


LOOP_ATTACKS: list[Callable[[], Attack]] = [
    lambda: PGD(eps=EPS, steps=12, early_stop=True, restarts=2),
    lambda: TargetedPGD(norm="L2", eps=1.0, steps=12, early_stop=True),
    lambda: APGDCE(eps=EPS, steps=12),
    lambda: APGDT(norm="L2", eps=1.0, steps=12, n_targets=2),
    lambda: FABT(eps=EPS, steps=12, n_targets=2),
    lambda: FAB(norm="L1", eps=4.0, steps=12),
    lambda: Square(eps=EPS, n_queries=200),
    lambda: SquareTargeted(eps=0.3, n_queries=200),
]


@pytest.mark.parametrize("make", LOOP_ATTACKS, ids=lambda make: _ids(make()))
def test_accelerator_policy_gives_the_same_verdicts_and_counts(
    make: Callable[[], Attack],
    monkeypatch: pytest.MonkeyPatch,
    digits_cnn: nn.Module,
    attack_inputs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = attack_inputs
    targets = (y + 3) % 10 if make().targeted else None

    def run() -> AttackResult:
        return make().generate(model=digits_cnn, x=x, y=y, targets=targets, batch_size=23)

    cpu = run()
    with accelerator_policy(monkeypatch):
        accelerated = run()
    assert 0 < cpu.success.sum() < len(y)  # some examples leave the batch, some stay
    assert torch.equal(cpu.success, accelerated.success)
    assert (cpu.forwards, cpu.backwards) == (accelerated.forwards, accelerated.backwards)
    assert torch.allclose(cpu.x_adv, accelerated.x_adv, atol=1e-5, rtol=0)


class _SyncCounter:
    """Counts the reads of tensor values on the host (each one a wait for an accelerator)."""

    READS = ("item", "tolist", "__bool__", "__int__", "__float__", "nonzero")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in self.READS:
            monkeypatch.setattr(torch.Tensor, name, self._wrap(getattr(torch.Tensor, name)))
        original_getitem = torch.Tensor.__getitem__

        def getitem(tensor: torch.Tensor, index: Any) -> Any:
            if isinstance(index, torch.Tensor) and index.dtype == torch.bool:
                self.count += 1
            return original_getitem(tensor, index)

        monkeypatch.setattr(torch.Tensor, "__getitem__", getitem)

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return method(*args, **kwargs)

        return counted


SYNC_CASES: list[tuple[Callable[[int], Attack], int]] = [
    # (an attack given its number of steps, how many runs of its step loop it makes)
    (lambda steps: PGD(eps=0.05, steps=steps, early_stop=True), 1),
    (lambda steps: APGDCE(eps=0.05, steps=steps), 1),
    (lambda steps: APGDT(eps=0.05, steps=steps, n_targets=2), 2),
    (lambda steps: FABT(eps=0.05, steps=steps, n_targets=2), 2),
    (lambda steps: Square(eps=0.05, n_queries=steps), 1),
]


@pytest.mark.parametrize(("make", "runs"), SYNC_CASES, ids=[_ids(c(8)) for c, _ in SYNC_CASES])
def test_step_loops_wait_for_the_device_only_at_checks(
    make: Callable[[int], Attack],
    runs: int,
    monkeypatch: pytest.MonkeyPatch,
    digits_cnn: nn.Module,
    attack_inputs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """With the accelerator's policy, more steps add only one host read per check."""
    x, y = attack_inputs
    every, few, many = 4, 8, 48
    reads = []
    for steps in (few, many):
        with accelerator_policy(monkeypatch, every=every), monkeypatch.context() as patch:
            counter = _SyncCounter(patch)
            make(steps).generate(model=digits_cnn, x=x[:16], y=y[:16], batch_size=16)
            reads.append(counter.count)
    assert reads[1] - reads[0] <= runs * ((many - few) // every + 1)

"""The extraction library on scikit-learn's digits: attacks, defences, PRADA, and ART's anchor.

Part 1 runs every attack of :mod:`trustlab.extraction` against an MLP victim (flattened 8x8
digits, label answers) at several budgets, beside the random-query baseline (distillation on
uniform noise), and reports label agreement on held-out digits. Part 2 steals the victim
through each output defence (probability answers, Knockoff Nets with random sampling). Part 3
reports PRADA's Shapiro-Wilk W for natural and synthetic query streams. Part 4 compares
:class:`~trustlab.extraction.defences.ReverseSigmoid` with ART's ``ReverseSigmoid``
postprocessor on the victim's probabilities.

Run: ``.venv/bin/python benchmarks/extraction_library.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from trustlab.core.data import load_dataset
from trustlab.core.models import build_model
from trustlab.core.training import accuracy, fit_classifier, predict_logits, seed_everything
from trustlab.extraction import (
    ActiveThief,
    Distillation,
    ExtractionAttack,
    JacobianAugmentation,
    KnockoffNets,
    LocalOracle,
    kl_divergence,
    label_agreement,
)
from trustlab.extraction.defences import (
    PRADA,
    AdditiveNoise,
    OutputDefence,
    ReverseSigmoid,
    Rounding,
    TopK,
)


def mlp(hidden: int, seed: int) -> nn.Module:
    seed_everything(seed)
    return build_model("mlp", arguments={"in_features": 64, "num_classes": 10, "hidden": [hidden]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one budget, fewer epochs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset("digits")
    x = torch.from_numpy(ds.x).reshape(len(ds.x), -1)
    y = torch.from_numpy(ds.y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, pool, test = order[:800], order[800:1400], order[1400:]
    victim = mlp(64, 1)
    fit_classifier(victim, x[train], y[train], epochs=40, lr=3e-3)
    victim.eval()
    print(f"victim: MLP(64) test accuracy {accuracy(victim, x[test], y[test]):.3f}")
    budgets = [150] if args.quick else [100, 300, 600]
    training = {"epochs": 15 if args.quick else 30, "lr": 3e-3}
    x_pool, y_pool, x_test = x[pool], y[pool], x[test]

    def attacks(budget: int) -> dict[str, ExtractionAttack]:
        step = max(budget // 5, 1)
        noise = torch.rand(budget, 64, generator=torch.Generator().manual_seed(3))
        return {
            "random queries (noise)": Distillation(query_x=noise, **training),
            "distillation (pool)": Distillation(query_x=x_pool, **training),
            "knockoff random": KnockoffNets(pool=x_pool, **training),
            "knockoff adaptive": KnockoffNets(
                sampling="adaptive", pool=x_pool, pool_labels=y_pool, round_size=step, **training
            ),
            "jacobian (20 seeds)": JacobianAugmentation(
                seed_x=x_pool[:20], substitute_epochs=6, **training
            ),
            "activethief uncertainty": ActiveThief(
                pool=x_pool, initial=step, step=step, **training
            ),
            "activethief k-center": ActiveThief(
                strategy="k-center", pool=x_pool, initial=step, step=step, **training
            ),
        }

    victim_logits = predict_logits(victim, x_test)  # computed once for every metric
    print("\n## Part 1: label agreement with the victim (label answers)")
    print(f"| attack | {' | '.join(f'budget {b}' for b in budgets)} | seconds |")
    print(f"|---|{'---|' * len(budgets)}---|")
    names = list(attacks(budgets[0]))
    for name in names:
        cells, start = [], time.perf_counter()
        for budget in budgets:
            oracle = LocalOracle(model=victim, output="labels", budget=budget)
            result = attacks(budget)[name].extract(
                oracle=oracle, surrogate=mlp(32, 5), budget=budget
            )
            agreement = label_agreement(
                y_true=victim_logits, y_pred=predict_logits(result.model, x_test)
            )
            cells.append(f"{agreement:.3f} ({result.queries_used} q)")
        print(f"| {name} | {' | '.join(cells)} | {time.perf_counter() - start:.1f} |")

    print("\n## Part 2: Knockoff Nets (random, probability answers) through each defence")
    budget = budgets[-1]
    defences: dict[str, OutputDefence | None] = {
        "none": None,
        "Rounding(decimals=1)": Rounding(decimals=1),
        "TopK(k=1)": TopK(k=1),
        "AdditiveNoise(scale=0.1)": AdditiveNoise(scale=0.1),
        "ReverseSigmoid(beta=0.7, gamma=0.5)": ReverseSigmoid(beta=0.7, gamma=0.5),
    }
    print("| defence | label agreement | KL(victim || copy) | victim top-1 kept |")
    print("|---|---|---|---|")
    for name, defence in defences.items():
        oracle = LocalOracle(model=victim, defence=defence, budget=budget)
        result = KnockoffNets(pool=x_pool, **training).extract(
            oracle=oracle, surrogate=mlp(32, 5), budget=budget
        )
        clean = oracle.clean_outputs(x_test)
        answered = LocalOracle(model=victim, defence=defence).query(x_test)
        kept = float((answered.argmax(1) == clean.argmax(1)).float().mean())
        copy_logits = predict_logits(result.model, x_test)
        agreement = label_agreement(y_true=victim_logits, y_pred=copy_logits)
        kl = kl_divergence(
            reference=victim_logits.double().softmax(dim=1),
            candidate=copy_logits.double().softmax(dim=1),
        )
        print(f"| {name} | {agreement:.3f} | {kl:.3f} | {kept:.3f} |")

    print("\n## Part 3: PRADA (threshold 0.9) on query streams of 400")
    with torch.no_grad():
        streams = {"natural digits (pool)": x_pool[:400]}
        jacobian = JacobianAugmentation(seed_x=x_pool[:25], substitute_epochs=5, epochs=5)
    result = jacobian.extract(
        oracle=LocalOracle(model=victim, output="labels"), surrogate=mlp(32, 5), budget=400
    )
    streams["jacobian augmentation"] = result.transfer_x
    streams["uniform noise"] = torch.rand(400, 64, generator=torch.Generator().manual_seed(4))
    print("| stream | W | flagged |")
    print("|---|---|---|")
    for name, queries in streams.items():
        with torch.no_grad():
            labels = victim(queries).argmax(dim=1)
        verdict = PRADA().observe(inputs=queries, client_id=name, labels=labels)
        print(f"| {name} | {verdict.statistic:.3f} | {verdict.flagged} |")

    print("\n## Part 4: ReverseSigmoid against ART's ReverseSigmoid postprocessor")
    from art.defences.postprocessor import ReverseSigmoid as ArtReverseSigmoid

    with torch.no_grad():
        probs = torch.softmax(victim(x_test), dim=1).to(torch.float64)
    print("| beta, gamma | max abs difference | rows where ART changes the label |")
    print("|---|---|---|")
    for beta, gamma in [(0.5, 0.5), (1.0, 0.2), (3.0, 3.0)]:
        ours = ReverseSigmoid(beta=beta, gamma=gamma).apply(
            outputs=probs, inputs=x_test, client_id="bench"
        )
        theirs = ArtReverseSigmoid(beta=beta, gamma=gamma)(probs.numpy())
        flipped = theirs.argmax(1) != probs.numpy().argmax(1)
        same = ~flipped
        diff = f"{np.abs(ours.numpy()[same] - theirs[same]).max():.2e}" if same.any() else "n/a"
        print(f"| {beta}, {gamma} | {diff} | {int(flipped.sum())} of {len(flipped)} |")


if __name__ == "__main__":
    main()

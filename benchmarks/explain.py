"""Explanations on the digits-canvas task's model: trustlab.explain beside Captum, in one run.

1. **Parity and overhead.** Every method through ``trustlab.explain`` and through Captum called
   directly with the same arguments (same seeds for the random methods) on the same batch:
   the maximum absolute difference of the maps, and the wrapper's time over Captum's
   (median of ``--repeats`` runs; target: overhead under 10%). Batch of 256 canvases (LIME and
   KernelSHAP: 16, they fit one surrogate per input inside Captum).
2. **Batched deletion.** Deletion curves of 256 canvases computed by
   :func:`trustlab.explain.deletion_curve` (all perturbed copies in large batches) and by a
   per-example, per-step loop as in Petsiuk et al.'s reference code: same values, speed-up
   (target: at least 5x on the CPU).
3. **Quality.** Per method, on test canvases: pointing game, relevance mass and rank accuracy
   against the digit boxes, deletion and insertion AUC, infidelity and max-sensitivity; random
   maps for scale.
4. **Sanity checks** (Adebayo et al., 2018): rank correlation with the original maps after
   cascading randomisation of all layers and after training on permuted labels; a method is
   flagged above 0.5.

Run ``python benchmarks/explain.py`` (``--quick``: smaller batches and fewer examples;
``--device cuda`` runs everything on a GPU).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from trustlab.core.data.digits_canvas import make_digits_canvas
from trustlab.core.models import build_model
from trustlab.core.seeding import seed_everything
from trustlab.core.training import accuracy, fit_classifier
from trustlab.explain import (
    data_randomisation,
    deletion_curve,
    infidelity,
    insertion_curve,
    list_explainers,
    make_explainer,
    max_sensitivity,
    model_randomisation,
    permuted_label_model,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)

SEED = 0
#: Options of each method in every table (Captum is called with the same).
OPTIONS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 32},
    "smoothgrad": {"nt_samples": 16},
    "vargrad": {"nt_samples": 16},
    "lime": {"n_samples": 200},
    "kernel_shap": {"n_samples": 200},
}
#: Methods that fit a surrogate per input: fewer inputs.
SLOW = ("lime", "kernel_shap")


def captum_call(
    name: str, model: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> Callable[[], torch.Tensor]:
    """Captum's own call for ``name`` with the options trustlab passes."""
    import captum.attr as attr

    from trustlab.explain._layers import find_layer
    from trustlab.explain._patches import patch_mask

    o = {**make_explainer(name, options=OPTIONS.get(name, {})).get_params()}
    if name == "saliency":
        return lambda: attr.Saliency(model).attribute(x, target=target, abs=o["abs"])
    if name == "input_x_gradient":
        return lambda: attr.InputXGradient(model).attribute(x, target=target)
    if name == "integrated_gradients":
        return lambda: attr.IntegratedGradients(model).attribute(
            x, baselines=o["baseline"], target=target, n_steps=o["n_steps"], method=o["method"]
        )
    if name in ("smoothgrad", "vargrad"):
        return lambda: attr.NoiseTunnel(attr.Saliency(model)).attribute(
            x,
            nt_type=name,
            nt_samples=o["nt_samples"],
            stdevs=o["noise_level"] * o["value_range"],
            target=target,
            abs=o["abs"],
        )
    if name == "deeplift":
        return lambda: attr.DeepLift(model).attribute(x, baselines=o["baseline"], target=target)
    if name == "gradient_shap":
        return lambda: attr.GradientShap(model).attribute(
            x, baselines=torch.zeros_like(x[:1]), n_samples=o["n_samples"], target=target
        )
    if name == "grad_cam":
        layer = find_layer(model, None)[1]

        def grad_cam() -> torch.Tensor:
            cam = attr.LayerGradCam(model, layer).attribute(
                x, target=target, relu_attributions=True
            )
            return attr.LayerAttribution.interpolate(cam, x.shape[2:], interpolate_mode="bilinear")

        return grad_cam
    if name == "occlusion":
        c = x.shape[1]
        return lambda: attr.Occlusion(model).attribute(
            x,
            sliding_window_shapes=(c, o["window"], o["window"]),
            strides=(c, o["stride"], o["stride"]),
            baselines=o["baseline"],
            target=target,
            perturbations_per_eval=o["perturbations_per_eval"],
        )
    cls = attr.Lime if name == "lime" else attr.KernelShap
    return lambda: cls(model).attribute(
        x,
        baselines=o["baseline"],
        target=target,
        feature_mask=patch_mask(x, patch=o["patch"]),
        n_samples=o["n_samples"],
        perturbations_per_eval=o["perturbations_per_eval"],
    )


def _seeded(fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``fn`` with torch and NumPy seeded as the wrapper seeds them."""
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    return fn()


def _timed(fn: Callable[[], Any], repeats: int, device: torch.device) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def parity_table(
    model: nn.Module, x: torch.Tensor, *, batch: int, repeats: int, device: torch.device
) -> None:
    print(f"\n## 1. Parity with Captum and wrapper overhead (batch {batch}; LIME/KernelSHAP 16)")
    print("| method | max abs diff | Captum s | trustlab s | overhead |")
    print("|---|---|---|---|---|")
    for name in list_explainers():
        n = 16 if name in SLOW else batch
        inputs = x[:n]
        target = model(inputs).argmax(dim=1).detach()
        explainer = make_explainer(name, options=OPTIONS.get(name, {}))
        reps = 1 if name in SLOW else repeats
        run_captum = functools.partial(_seeded, captum_call(name, model, inputs, target))
        run_ours = functools.partial(explainer.attribute, model=model, x=inputs, target=target)
        run_captum()  # warm-up
        # Alternate the two, so that the machine's load hits both alike.
        t_captum_runs, t_ours_runs = [], []
        for _ in range(reps):
            theirs, t = _timed(run_captum, 1, device)
            t_captum_runs.append(t)
            ours, t = _timed(run_ours, 1, device)
            t_ours_runs.append(t)
        t_captum, t_ours = statistics.median(t_captum_runs), statistics.median(t_ours_runs)
        diff = float((ours.values - theirs.detach()).abs().max())
        overhead = t_ours / t_captum - 1.0
        print(f"| {name} | {diff:.1e} | {t_captum:.3f} | {t_ours:.3f} | {overhead:+.1%} |")


def naive_deletion(
    model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: torch.Tensor, n_steps: int
) -> np.ndarray:
    """Petsiuk et al.'s loop: one forward pass per example and step."""
    n_pixels = x.shape[2] * x.shape[3]
    curves = np.zeros((len(x), n_steps + 1))
    with torch.no_grad():
        for i in range(len(x)):
            order = torch.argsort(-maps[i].flatten(), stable=True)
            for step in range(n_steps + 1):
                image = x[i].clone().reshape(x.shape[1], -1)
                image[:, order[: round(step * n_pixels / n_steps)]] = 0.0
                logits = model(image.reshape(1, *x.shape[1:]))
                curves[i, step] = float(torch.softmax(logits.double(), dim=1)[0, target[i]])
    return curves


def deletion_table(model: nn.Module, x: torch.Tensor, *, device: torch.device) -> None:
    n_steps = 16
    maps = make_explainer("saliency").attribute(model=model, x=x).maps()
    target = model(x).argmax(dim=1).detach()
    batched, t_batched = _timed(
        lambda: deletion_curve(model=model, x=x, attributions=maps, target=target, n_steps=n_steps),
        3,
        device,
    )
    loop, t_loop = _timed(lambda: naive_deletion(model, x, maps, target, n_steps), 1, device)
    diff = float(np.abs(batched.scores - loop).max())
    print(
        f"\n## 2. Deletion curves, batched vs per-example loop ({len(x)} canvases, {n_steps} steps)"
    )
    print("| loop s | batched s | speed-up | max abs diff |")
    print("|---|---|---|---|")
    print(f"| {t_loop:.3f} | {t_batched:.3f} | {t_loop / t_batched:.1f}x | {diff:.1e} |")


def quality_table(
    model: nn.Module, x: torch.Tensor, masks: np.ndarray, *, n_slow: int, n_stability: int
) -> None:
    print(
        f"\n## 3. Quality on {len(x)} test canvases (LIME/KernelSHAP: {n_slow}; "
        f"infidelity and max-sensitivity: {n_stability})"
    )
    print(
        "| method | pointing game | relevance mass | relevance rank | deletion AUC (lower) "
        "| insertion AUC | infidelity (lower) | max-sensitivity (lower) | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    target = model(x).argmax(dim=1).detach()
    rows: list[tuple[str, Any]] = [("random maps", None)] + [(n, n) for n in list_explainers()]
    for label, name in rows:
        n = n_slow if name in SLOW else len(x)
        inputs, labels, truth = x[:n], target[:n], masks[:n]
        start = time.perf_counter()
        if name is None:
            values = torch.rand(inputs.shape, generator=torch.Generator().manual_seed(SEED))
            values = values.to(x.device)
        else:
            explainer = make_explainer(name, options=OPTIONS.get(name, {}))
            values = explainer.attribute(model=model, x=inputs, target=labels).values
        seconds = time.perf_counter() - start
        values = values.expand(-1, inputs.shape[1], -1, -1)
        k = min(n, n_stability)
        infid = infidelity(model=model, x=inputs[:k], attributions=values[:k], target=labels[:k])
        sens = (
            float("nan")
            if name is None
            else float(
                max_sensitivity(
                    model=model,
                    x=inputs[:k],
                    explainer=explainer,
                    target=labels[:k],
                    n_perturb_samples=5,
                ).mean()
            )
        )
        cells = [
            pointing_game(attributions=values, masks=truth).mean(),
            relevance_mass_accuracy(attributions=values, masks=truth).mean(),
            relevance_rank_accuracy(attributions=values, masks=truth).mean(),
            deletion_curve(model=model, x=inputs, attributions=values, target=labels).auc.mean(),
            insertion_curve(model=model, x=inputs, attributions=values, target=labels).auc.mean(),
            float(infid.mean()),
            sens,
        ]
        text = " | ".join(f"{c:.3f}" if np.isfinite(c) else "-" for c in cells)
        print(f"| {label} | {text} | {seconds:.2f} |")


def sanity_table(model: nn.Module, randomised: nn.Module, x: torch.Tensor, *, n_slow: int) -> None:
    print(
        f"\n## 4. Adebayo et al. randomisation checks on {len(x)} canvases (LIME/KernelSHAP: "
        f"{n_slow}); Spearman correlation of |maps|, flagged above 0.5"
    )
    print("| method | model randomisation (all layers) | flagged | data randomisation | flagged |")
    print("|---|---|---|---|---|")
    for name in list_explainers():
        inputs = x[:n_slow] if name in SLOW else x
        explainer = make_explainer(name, options=OPTIONS.get(name, {}))
        cascade = model_randomisation(model=model, x=inputs, explainer=explainer, seed=SEED)
        data = data_randomisation(
            model=model, randomised_model=randomised, x=inputs, explainer=explainer
        )
        print(
            f"| {name} | {cascade.correlations[-1]:.3f} | {'yes' if cascade.flagged else 'no'} "
            f"| {data.correlations[-1]:.3f} | {'yes' if data.flagged else 'no'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches, fewer examples")
    parser.add_argument("--device", default="cpu", help="where everything runs (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (median)")
    parser.add_argument(
        "--tables",
        default="parity,deletion,quality,sanity",
        help="comma-separated tables to run (default: all four)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = 64 if args.quick else 256
    n_quality = 64 if args.quick else 256
    n_slow = 8 if args.quick else 16
    n_stability = 16 if args.quick else 64
    n_sanity = 16 if args.quick else 64

    train = make_digits_canvas(split="train", seed=SEED)
    test = make_digits_canvas(split="test", seed=SEED)
    seed_everything(SEED)
    model = build_model("canvas-cnn").to(device)
    epochs = 8 if args.quick else 16
    fit_classifier(model, train.x, train.y, epochs=epochs, lr=3e-3, seed=SEED)
    model.eval()
    print(f"# trustlab.explain benchmark ({device}, torch threads {torch.get_num_threads()})")
    print(f"canvas-cnn on digits-canvas 24x24: test accuracy {accuracy(model, test.x, test.y):.3f}")
    x = torch.from_numpy(test.x).to(device)
    tables = set(args.tables.split(","))
    if "parity" in tables:
        parity_table(model, x[:batch], batch=batch, repeats=args.repeats, device=device)
    if "deletion" in tables:
        deletion_table(model, x[:batch], device=device)
    if "quality" in tables:
        quality_table(
            model, x[:n_quality], test.masks[:n_quality], n_slow=n_slow, n_stability=n_stability
        )
    if "sanity" in tables:
        randomised = permuted_label_model(
            model=model, x=train.x, y=train.y, epochs=epochs, lr=3e-3, seed=SEED
        ).eval()
        sanity_table(model, randomised, x[:n_sanity], n_slow=n_slow)


if __name__ == "__main__":
    main()

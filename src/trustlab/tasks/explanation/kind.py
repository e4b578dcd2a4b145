"""The ``explanation`` kind: build a task, check a file of maps, score it on hidden masks.

See :mod:`trustlab.tasks.explanation` for the artefacts and the scoring rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trustlab.core.data import save_npz
from trustlab.core.data.digits_canvas import DigitsCanvas, make_digits_canvas
from trustlab.core.errors import ConfigurationError
from trustlab.core.models import build_model
from trustlab.core.training import accuracy, fit_classifier, predict_logits
from trustlab.core.weights import load_model, save_model
from trustlab.tasks._scoring import bootstrap_interval, mean, score_parts, stratified_public_mask
from trustlab.tasks._training import epoch_progress, seeded_single_thread
from trustlab.tasks.base import ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.explanation.params import CANVAS_DATASET, ExplanationParams
from trustlab.tasks.explanation.submission import read_maps
from trustlab.tasks.model_submission import check_architecture_name
from trustlab.tasks.readme import render_readme
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec, parse_params, scoring_device

if TYPE_CHECKING:
    from torch import nn

MSG_DATASET = (
    "field 'dataset': an explanation task is built on {want!r} (its digit masks are the "
    "answers); got {got!r}"
)
MSG_METHOD = (
    "field 'params.reference_methods': {name!r} is not an attribution method; use one of {known}"
)
MSG_TOO_MANY = (
    "params: n_explain={n} but the test split of {dataset!r} has only {available} canvases; "
    "lower n_explain"
)
#: Files of a built task.
MODEL_FILE = "model.safetensors"
INPUTS_FILE = "inputs.npz"
SAMPLE_FILE = "sample_submission.npz"
ANSWERS_FILE = "answers.npz"
#: Methods a reference figure may use, with their options at build time (kept cheap).
REFERENCE_OPTIONS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 16, "internal_batch_size": 1024},
    "smoothgrad": {"nt_samples": 16},
    "vargrad": {"nt_samples": 16},
}


@register_kind
class Explanation(TaskKind):
    """Explain a served model's decisions: maps scored on hidden object masks."""

    name = "explanation"
    params_model = ExplanationParams
    higher_is_better = True
    submission_format = (
        "NPZ archive with one float map per input id of inputs.npz, named by the id as text "
        "(np.savez(path, **{str(i): m})), each of shape (H, W) or (C, H, W); higher = more "
        "relevant to the model's prediction."
    )

    def _params(self, spec: TaskSpec) -> ExplanationParams:
        return parse_params(spec, self.params_model, as_type=ExplanationParams)

    def metric_names(self, spec: TaskSpec) -> list[str]:
        return ["score", "pointing_game", "relevance_mass", "relevance_rank", "deletion_auc"]

    def rules_text(self, spec: TaskSpec) -> str:
        params = self._params(spec)
        return (
            "Score = (pointing-game hit rate + relevance-mass accuracy) / 2 against the hidden "
            f"digit boxes, for the model's predicted class; a (C, H, W) map is summed over "
            f"its channels. The deletion AUC ({params.deletion_steps} steps, lower is more "
            "faithful) is reported beside it."
        )

    def check_spec(self, spec: TaskSpec) -> list[str]:
        from trustlab.explain import list_explainers

        problems = super().check_spec(spec)
        params = self._params(spec)
        if spec.dataset != CANVAS_DATASET:
            problems.append(MSG_DATASET.format(want=CANVAS_DATASET, got=spec.dataset))
        problems += check_architecture_name(params.architecture, field="params.architecture")
        known = list_explainers()
        for name in params.reference_methods:
            if name not in known:
                problems.append(MSG_METHOD.format(name=name, known=", ".join(known)))
        return problems

    # ----------------------------------------------------------------------------------------

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        options = params.canvas.model_dump()
        train = make_digits_canvas(split="train", seed=spec.seed, **options)
        test = make_digits_canvas(split="test", seed=spec.seed, **options)
        if params.n_explain > len(test):
            raise ConfigurationError(
                MSG_TOO_MANY.format(n=params.n_explain, dataset=spec.dataset, available=len(test))
            )
        progress(f"training the model ({params.architecture}) on {len(train)} canvases")
        with seeded_single_thread(spec.seed):
            model = build_model(params.architecture, arguments=params.architecture_arguments)
            fit_classifier(
                model,
                train.x,
                train.y,
                epochs=params.epochs,
                lr=params.lr,
                batch_size=params.batch_size,
                seed=spec.seed,
                progress=epoch_progress(progress, epochs=params.epochs),
            )
            test_accuracy = accuracy(model, test.x, test.y)
        progress(f"test accuracy {test_accuracy:.3f}")
        rng = np.random.default_rng(spec.seed)
        chosen = np.sort(rng.permutation(len(test))[: params.n_explain])
        x, y, masks = test.x[chosen], test.y[chosen], test.masks[chosen]
        ids = np.arange(len(chosen), dtype=np.int64)
        target = predict_logits(model, x).argmax(dim=1).numpy().astype(np.int64)
        public = stratified_public_mask(y, spec.public_fraction, rng)

        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        save_model(model, paths.public / MODEL_FILE, metadata={"trustlab.task": spec.id})
        save_npz(paths.public / INPUTS_FILE, ids=ids, x=x)
        random_maps = rng.random((len(ids), *x.shape[2:]), dtype=np.float32)
        save_npz(
            paths.public / SAMPLE_FILE,
            **{str(i): random_maps[i] for i in ids.tolist()},
        )
        save_npz(
            paths.hidden / ANSWERS_FILE,
            ids=ids,
            y=y,
            target=target,
            masks=masks,
            public=public,
        )
        progress("scoring the sample submission and the reference methods")
        with seeded_single_thread(spec.seed):  # small models run fastest on one thread
            baseline = self._score_maps(
                spec, params, paths, random_maps.astype(np.float64)
            ).public_metrics
            references = _reference_figures(self, spec, params, paths, model, test, chosen)
        (paths.public / "README.md").write_text(
            render_readme(
                self.name,
                context={
                    "spec": spec,
                    "params": params,
                    "input_shape": tuple(x.shape[1:]),
                    "n_explain": len(ids),
                    "n_train": len(train),
                    "test_accuracy": test_accuracy,
                    "mask_share": float(masks.mean()),
                    "baseline": baseline,
                    "references": references,
                    "rules": self.rules_text(spec),
                },
            )
        )

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        ids, image_shape = _public_inputs(paths)
        maps = read_maps(file, ids=ids, image_shape=image_shape)
        return {"maps": len(maps)}

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        params = self._params(spec)
        ids, image_shape = _public_inputs(paths)
        maps = read_maps(file, ids=ids, image_shape=image_shape)
        return self._score_maps(spec, params, paths, maps)

    def _score_maps(
        self, spec: TaskSpec, params: ExplanationParams, paths: TaskPaths, maps: np.ndarray
    ) -> ScoreResult:
        """Every metric of ``maps`` (n, H, W), per example once, then on each part."""
        from trustlab.explain.metrics import (
            deletion_curve,
            pointing_game,
            relevance_mass_accuracy,
            relevance_rank_accuracy,
        )

        with np.load(paths.hidden / ANSWERS_FILE, allow_pickle=False) as answers:
            masks, target, public = answers["masks"], answers["target"], answers["public"]
        with np.load(paths.public / INPUTS_FILE, allow_pickle=False) as inputs:
            x = inputs["x"]
        model = load_model(paths.public / MODEL_FILE, device=scoring_device(spec))
        hits = pointing_game(attributions=maps, masks=masks, tolerance=params.tolerance)
        mass = relevance_mass_accuracy(attributions=maps, masks=masks)
        rank = relevance_rank_accuracy(attributions=maps, masks=masks)
        deletion = deletion_curve(
            model=model, x=x, attributions=maps, target=target, n_steps=params.deletion_steps
        ).auc
        per_example = (hits + mass) / 2.0

        def part_metrics(mask: np.ndarray) -> dict[str, Any]:
            result: dict[str, Any] = {
                "score": float(per_example[mask].mean()),
                "pointing_game": float(hits[mask].mean()),
                "relevance_mass": float(mass[mask].mean()),
                "relevance_rank": float(rank[mask].mean()),
                "deletion_auc": float(deletion[mask].mean()),
                "n_examples": int(mask.sum()),
            }
            if params.bootstrap_resamples > 0:
                result["score_ci95"] = bootstrap_interval(
                    mean,
                    arrays={"values": per_example[mask]},
                    resamples=params.bootstrap_resamples,
                    seed=spec.seed,
                )
            return result

        return score_parts(public.astype(bool), part_metrics, primary="score")


def _public_inputs(paths: TaskPaths) -> tuple[np.ndarray, tuple[int, int, int]]:
    with np.load(paths.public / INPUTS_FILE, allow_pickle=False) as inputs:
        ids: np.ndarray = inputs["ids"]
        shape = tuple(int(d) for d in inputs["x"].shape[1:])
    return ids, (shape[0], shape[1], shape[2])


def _reference_figures(
    kind: Explanation,
    spec: TaskSpec,
    params: ExplanationParams,
    paths: TaskPaths,
    model: nn.Module,
    test: DigitsCanvas,
    chosen: np.ndarray,
) -> dict[str, dict[str, Any]]:
    """The public metrics of maps from the library's own methods (the README's figures)."""
    from trustlab.explain import explain

    figures: dict[str, dict[str, Any]] = {}
    for name in params.reference_methods:
        options = REFERENCE_OPTIONS.get(name, {})
        attribution = explain(model=model, x=test.x[chosen], method=name, **options)
        maps = attribution.maps().numpy().astype(np.float64)
        figures[name] = {
            "options": options,
            "metrics": kind._score_maps(spec, params, paths, maps).public_metrics,
        }
    return figures

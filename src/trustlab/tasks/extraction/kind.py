"""The ``model-extraction`` kind: build a victim, check and score a stolen model.

See :mod:`trustlab.tasks.extraction` for the threat model, the artefacts and the scoring rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustlab.core.checks import compute_logits, model_device_and_dtype
from trustlab.core.data import save_npz
from trustlab.core.errors import ConfigurationError, SubmissionError, TrustlabError
from trustlab.core.models import build_model
from trustlab.core.training import accuracy, fit_classifier
from trustlab.core.weights import save_model
from trustlab.tasks._scoring import score_parts
from trustlab.tasks._training import (
    MSG_OWN_MODEL,
    architecture_arguments,
    epoch_progress,
    load_own_model,
    load_task_data,
    own_file,
    seeded_single_thread,
)
from trustlab.tasks.base import FormField, ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.extraction.messages import (
    MSG_DEFENCE_MODE,
    MSG_MODEL_RUN,
    MSG_NO_LIBRARY,
    MSG_OUTPUT_NON_FINITE,
    MSG_OUTPUT_SHAPE,
    MSG_TOO_SMALL,
)
from trustlab.tasks.extraction.metrics import classifier_metrics, embedding_metrics
from trustlab.tasks.extraction.readme import readme_text
from trustlab.tasks.extraction.runtime import (
    VICTIM_ONNX,
    QueryVictim,
    build_defence,
    build_detector,
    read_query_format,
)
from trustlab.tasks.extraction.spec import EmbeddingTransformDefenceSpec, ExtractionParams
from trustlab.tasks.model_submission import (
    MODEL_NAME_FIELD,
    check_architecture_name,
    check_architectures,
    chosen_architecture,
    load_submitted_model,
)
from trustlab.tasks.onnx_submission import MSG_ONNX_REFUSED, ONNX_CHOICE, read_onnx
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec, parse_params

MSG_ONNX_VICTIM_EMBEDDINGS = (
    "field 'params.model_file': {path} is an ONNX model, which the task accepts for classifier "
    "victims only; for output: embeddings give a .safetensors file."
)
#: Rows per forward pass when the victim or a submitted model runs on many inputs.
SCORE_BATCH = 256
#: Pool inputs a submitted model runs on at intake.
VALIDATION_ROWS = 8


@register_kind
class ModelExtraction(TaskKind):
    """Steal a victim model through its query API; scored by fidelity on hidden inputs."""

    name = "model-extraction"
    params_model = ExtractionParams
    higher_is_better = True
    submission_format = (
        "The stolen model: weights (safetensors or a .pt state dict) of an architecture from "
        "the task's list, named in 'model_name', or an ONNX file with model_name=onnx."
    )
    form_fields = (
        FormField(
            name=MODEL_NAME_FIELD,
            description="The architecture of the submitted weights, or 'onnx' for an ONNX file.",
        ),
    )

    def _params(self, spec: TaskSpec) -> ExtractionParams:
        return parse_params(spec, self.params_model, as_type=ExtractionParams)

    def metric_names(self, spec: TaskSpec) -> list[str]:
        if self._params(spec).is_classifier:
            return ["agreement", "accuracy"]
        return ["l2_fidelity", "l2"]

    def check_spec(self, spec: TaskSpec) -> list[str]:
        params = self._params(spec)
        problems = []
        names = self.metric_names(spec)
        if spec.metric is not None and (spec.metric not in names or spec.metric == "l2"):
            usable = [n for n in names if n != "l2"]
            problems.append(
                f"field 'metric': {spec.metric!r} cannot rank this task (the leaderboard ranks "
                f"higher scores first); use one of {', '.join(usable)}"
            )
        problems += check_architecture_name(params.victim, field="params.victim")
        problems += check_architectures(params.architectures, field="params.architectures")
        defence = params.defence
        if defence is not None:
            embeddings = not params.is_classifier
            if isinstance(defence, EmbeddingTransformDefenceSpec) and not embeddings:
                problems.append(MSG_DEFENCE_MODE.format(name=defence.name, output=params.output))
            else:
                problems += _library_problems(
                    "defence",
                    defence.name,
                    lambda: build_defence(defence, embeddings=embeddings),
                    embeddings=embeddings,
                    output=params.output,
                )
        if params.detector is not None:
            if not params.is_classifier:
                problems.append(
                    "field 'params.detector': PRADA watches the victim's predicted classes; it "
                    "needs a classifier output (labels, top-k or probabilities)"
                )
            else:
                detector = params.detector
                problems += _library_problems(
                    "detector", detector.name, lambda: build_detector(detector)
                )
        return problems

    def form_fields_for(self, spec: TaskSpec) -> tuple[FormField, ...]:
        params = self._params(spec)
        choices = tuple(c.name for c in params.architectures)
        if params.accept_onnx:
            choices = (*choices, ONNX_CHOICE)
        return (
            FormField(
                name=MODEL_NAME_FIELD,
                description=(
                    "The architecture of the submitted weights, one of the task's list"
                    + (", or 'onnx' for an ONNX file." if params.accept_onnx else ".")
                ),
                choices=choices,
            ),
        )

    def rules_text(self, spec: TaskSpec) -> str:
        params = self._params(spec)
        if params.is_classifier:
            rule = (
                "agreement: the share of hidden inputs on which the stolen model's top class "
                "is the victim's"
            )
        else:
            rule = (
                "l2_fidelity = 1 / (1 + l2 / scale), with l2 the mean L2 distance to the "
                "victim's embeddings and scale their mean norm"
            )
        return (
            f"Scored against the undefended victim on {params.n_eval} hidden inputs by {rule}. "
            f"Query budget: {params.query_budget} rows per team."
        )

    def open_victim(self, spec: TaskSpec, *, paths: TaskPaths) -> QueryVictim:
        """The victim of a built task, for the query endpoint."""
        return QueryVictim(spec=spec, paths=paths, params=self._params(spec))

    # -- build ---------------------------------------------------------------------------

    def build(self, spec: TaskSpec, *, paths: TaskPaths, progress: ProgressFn) -> None:
        params = self._params(spec)
        data = load_task_data(spec.dataset, data_file=params.data_file)
        x, y = data.x, data.y
        needed = params.n_train + params.n_eval + 1
        if len(x) < needed:
            raise ConfigurationError(
                MSG_TOO_SMALL.format(dataset=data.source, available=len(x), needed=needed)
            )
        rng = np.random.default_rng(spec.seed)
        order = rng.permutation(len(x))
        train = order[: params.n_train]
        evaluation = order[params.n_train : params.n_train + params.n_eval]
        pool = order[params.n_train + params.n_eval :]
        if params.n_pool is not None:
            pool = pool[: params.n_pool]

        onnx_victim = params.model_file is not None and params.model_file.lower().endswith(".onnx")
        with seeded_single_thread(spec.seed):
            if onnx_victim:
                assert params.model_file is not None
                progress(f"using the victim {params.model_file} and {data.source}")
                victim_file, run_victim = _onnx_victim(params, x=x, y=y)
                raw = torch.from_numpy(run_victim(x[evaluation]))
                test_acc = float((raw.argmax(dim=1).numpy() == y[evaluation]).mean())
            elif params.model_file is not None:
                progress(f"using the victim {params.model_file} and {data.source}")
                victim = load_own_model(params.model_file)
            else:
                progress(f"training the victim ({params.victim}) on {len(train)} examples")
                arguments = architecture_arguments(params.victim, params.victim_arguments, x=x)
                if params.victim == "mlp" and "num_classes" not in arguments:
                    arguments["num_classes"] = int(y.max()) + 1
                victim = build_model(params.victim, arguments=arguments)
                fit_classifier(
                    victim,
                    x[train],
                    y[train],
                    epochs=params.epochs,
                    lr=params.lr,
                    batch_size=params.batch_size,
                    weight_decay=params.weight_decay,
                    seed=spec.seed,
                    progress=epoch_progress(progress, epochs=params.epochs),
                )
            if not onnx_victim:
                test_acc = accuracy(victim, x[evaluation], y[evaluation])
                raw = compute_logits(
                    model=victim, x=torch.from_numpy(x[evaluation]), batch_size=SCORE_BATCH
                )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(spec.seed)
                sample = params.architectures[0].build()
        progress(f"victim accuracy on the hidden inputs: {test_acc:.3f}")

        output_dim = int(raw.shape[1])
        input_shape = [int(d) for d in x.shape[1:]]
        paths.public.mkdir(parents=True, exist_ok=True)
        paths.hidden.mkdir(parents=True, exist_ok=True)
        if onnx_victim:
            (paths.hidden / VICTIM_ONNX).write_bytes(victim_file.read_bytes())
        else:
            save_model(
                victim, paths.hidden / "victim.safetensors", metadata={"trustlab.task": spec.id}
            )
        save_model(sample, paths.public / "sample_submission.safetensors")
        save_npz(paths.public / "pool.npz", x=x[pool])
        query_format = {
            "input_shape": input_shape,
            "input_dtype": "float32",
            "input_range": list(params.input_range) if params.input_range else None,
            "output": params.output,
            "output_dim": output_dim,
        }
        (paths.public / "query.json").write_text(
            json.dumps(query_format, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

        public = np.zeros(len(evaluation), dtype=bool)
        n_public = max(1, min(len(evaluation) - 1, round(len(evaluation) * spec.public_fraction)))
        public[rng.choice(len(evaluation), size=n_public, replace=False)] = True
        scale = float(np.linalg.norm(raw.numpy(), axis=1).mean())
        save_npz(
            paths.hidden / "answers.npz",
            x=x[evaluation],
            y=y[evaluation],
            victim_outputs=raw.numpy().astype(np.float32),
            victim_labels=raw.argmax(dim=1).numpy().astype(np.int64),
            public=public,
            scale=np.array(max(scale, 1e-12), dtype=np.float64),
        )
        (paths.public / "README.md").write_text(
            readme_text(
                spec,
                params,
                query_format=query_format,
                n_train=len(train),
                n_pool=len(pool),
                n_eval=len(evaluation),
                test_acc=test_acc,
            ),
            encoding="utf-8",
        )

    # -- validate and score ---------------------------------------------------------------

    def _stolen_outputs(
        self,
        params: ExtractionParams,
        *,
        paths: TaskPaths,
        file: Path,
        fields: Mapping[str, str],
        x: np.ndarray,
    ) -> np.ndarray:
        fmt = read_query_format(paths)
        input_shape = tuple(int(d) for d in fmt["input_shape"])
        output_dim = int(fmt["output_dim"])
        if (fields.get(MODEL_NAME_FIELD) or "").strip() == ONNX_CHOICE:
            if not params.accept_onnx:
                listed = ", ".join(repr(c.name) for c in params.architectures)
                raise SubmissionError(MSG_ONNX_REFUSED.format(choices=listed))
            outputs = read_onnx(file, input_shape=input_shape, output_dim=output_dim)(x)
        else:
            model = load_submitted_model(params.architectures, file=file, fields=fields)
            choice = chosen_architecture(params.architectures, fields)
            flat = choice.registry_name == "mlp" and x.ndim > 2
            outputs = _forward(model, x.reshape(len(x), -1) if flat else x)
        what = "class score vector" if params.is_classifier else "embedding"
        if outputs.ndim != 2 or outputs.shape != (len(x), output_dim):
            raise SubmissionError(
                MSG_OUTPUT_SHAPE.format(
                    shape=tuple(outputs.shape), n=len(x), dim=output_dim, what=what
                )
            )
        finite = np.isfinite(outputs).all(axis=1)
        if not finite.all():
            row = int(np.argmin(finite))
            what = "NaN" if np.isnan(outputs[row]).any() else "an infinity"
            raise SubmissionError(MSG_OUTPUT_NON_FINITE.format(what=what, row=row))
        return np.asarray(outputs, dtype=np.float64)

    def validate(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> dict[str, Any]:
        params = self._params(spec)
        with np.load(paths.public / "pool.npz", allow_pickle=False) as pool:
            x = np.asarray(pool["x"][:VALIDATION_ROWS], dtype=np.float32)
        self._stolen_outputs(params, paths=paths, file=file, fields=fields, x=x)
        return {"model_name": (fields.get(MODEL_NAME_FIELD) or "").strip()}

    def score(
        self, spec: TaskSpec, *, paths: TaskPaths, file: Path, fields: Mapping[str, str]
    ) -> ScoreResult:
        params = self._params(spec)
        with np.load(paths.hidden / "answers.npz", allow_pickle=False) as answers:
            x = answers["x"]
            y = answers["y"]
            victim_outputs = answers["victim_outputs"].astype(np.float64)
            victim_labels = answers["victim_labels"]
            public = answers["public"]
            scale = float(answers["scale"])
        stolen = self._stolen_outputs(params, paths=paths, file=file, fields=fields, x=x)
        primary = spec.metric or self.default_metric(spec)

        def part_metrics(mask: np.ndarray) -> dict[str, Any]:
            if params.is_classifier:
                return classifier_metrics(
                    stolen_labels=stolen[mask].argmax(axis=1),
                    victim_labels=victim_labels[mask],
                    true_labels=y[mask],
                    resamples=params.bootstrap_resamples,
                    seed=spec.seed,
                )
            return embedding_metrics(
                stolen=stolen[mask],
                victim=victim_outputs[mask],
                scale=scale,
                resamples=params.bootstrap_resamples,
                seed=spec.seed,
            )

        return score_parts(public, part_metrics, primary=primary)


def _forward(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """A submitted model's outputs on ``x``, on the model's device, batch by batch."""
    device, dtype = model_device_and_dtype(model)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), SCORE_BATCH):
            batch = torch.from_numpy(x[start : start + SCORE_BATCH]).to(device, dtype)
            try:
                output = model(batch)
            except RuntimeError as exc:
                raise SubmissionError(MSG_MODEL_RUN.format(error=str(exc)[:300])) from None
            if not isinstance(output, torch.Tensor):
                raise SubmissionError(MSG_MODEL_RUN.format(error="it returned no tensor"))
            outputs.append(output.detach().to("cpu", torch.float64).numpy())
    return np.concatenate(outputs)


def _library_problems(
    field: str, name: str, make: Any, *, embeddings: bool = False, output: str = ""
) -> list[str]:
    """Build a library defence or detector and try it on a dummy batch, so that a bad
    parameter fails the spec rather than the first query."""
    try:
        made = make()
        inputs = torch.zeros(1, 2)
        if field == "detector":
            made.observe(
                inputs=inputs, client_id="spec-check", labels=torch.zeros(1, dtype=torch.long)
            )
        elif embeddings and made.probabilities_only:
            return [MSG_DEFENCE_MODE.format(name=name, output=output)]
        else:
            made.apply(outputs=torch.full((1, 2), 0.5), inputs=inputs, client_id="spec-check")
    except ImportError as exc:
        return [MSG_NO_LIBRARY.format(field=field, what=field, name=name, error=exc)]
    except TrustlabError as exc:
        return [f"field 'params.{field}': {exc}"]
    return []


def _onnx_victim(
    params: ExtractionParams, *, x: np.ndarray, y: np.ndarray
) -> tuple[Path, Callable[[np.ndarray], np.ndarray]]:
    """The instructor's ONNX victim (a classifier: one logit per class of ``y``), checked as a
    submission is, and a function that runs it."""
    assert params.model_file is not None
    path = own_file(params.model_file, field="model_file")
    if not params.is_classifier:
        raise ConfigurationError(MSG_ONNX_VICTIM_EMBEDDINGS.format(path=path))
    try:
        model = read_onnx(
            path, input_shape=tuple(int(d) for d in x.shape[1:]), output_dim=int(y.max()) + 1
        )
        model(x[:1])
    except SubmissionError as exc:
        raise ConfigurationError(MSG_OWN_MODEL.format(path=path, error=exc)) from None

    def run(rows: np.ndarray) -> np.ndarray:
        return np.asarray(model(rows), dtype=np.float32)

    return path, run

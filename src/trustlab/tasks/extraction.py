"""The ``model-extraction`` task kind: steal a victim model through a query budget.

Threat model (Tramèr et al., "Stealing Machine Learning Models via Prediction APIs", USENIX
Security 2016; Orekondy et al., "Knockoff Nets", CVPR 2019): the team sees only a prediction
API. It sends inputs to ``POST /api/v1/tasks/{task_id}/query`` and receives the victim's
outputs (labels, top-k probabilities, full probability vectors or embeddings), possibly through
an output defence, within a per-team query budget and a rate limit. It never sees the victim's
weights, its training data or the hidden evaluation inputs. It then submits its stolen model.

Building a task trains the victim (a registered architecture) on a seeded subset of a data set
and writes:

``public/query.json``
    The query format: ``input_shape``, ``input_dtype``, ``input_range``, ``output``,
    ``output_dim``.
``public/pool.npz``
    ``x``: unlabeled inputs from the data set's distribution, a seed for the team's queries
    (never the hidden evaluation inputs, never the victim's training inputs).
``public/sample_submission.safetensors`` and ``public/README.md``
    An untrained model of the first accepted architecture, and the rules.
``hidden/victim.safetensors``
    The victim's weights; never served. The server loads it once per task and process.
``hidden/answers.npz``
    The hidden evaluation inputs, their labels, the victim's raw outputs (logits) on them and
    the public/private split.

A submission is the stolen model: weights for one of the task's architectures (safetensors, or
a ``.pt`` state dict read with ``weights_only=True``; ``model_name`` names the architecture),
or an ONNX file (``model_name=onnx``) whose graph uses only the standard operator domains,
holds all its data inline and declares the task's input and output shapes. It is scored by its
fidelity to the *undefended* victim on the hidden inputs:

* classifiers (``labels``, ``top-k``, ``probabilities``): ``agreement``, the fraction of hidden
  inputs on which the stolen model's arg-max equals the victim's (Jagielski et al., "High
  Accuracy and High Fidelity Extraction of Neural Networks", USENIX Security 2020), and
  ``accuracy`` on the true labels;
* encoders (``embeddings``): ``l2``, the mean L2 distance between the stolen and the victim's
  output vectors (lower is better), and the primary ``l2_fidelity = 1 / (1 + l2 / scale)`` with
  ``scale`` the victim's mean output norm on the hidden inputs. A kind has one direction for
  its leaderboard, so the bounded, higher-is-better ``l2_fidelity`` ranks the teams; it is 1
  for a perfect copy and 0.5 when the mean error equals the mean output norm.

In ``embeddings`` mode the victim is the trained network's output vector before the softmax.

Departures from the papers' settings: the defences act on the victim's softmax probabilities
(on the raw output vector for ``embeddings``), and ``labels`` and ``top-k`` answers are taken
from the defended probabilities; ``top-k`` answers keep the k largest probabilities without
renormalising them; the rate limit counts requests and rows in fixed windows; the detector
(PRADA, Juuti et al., EuroS&P 2019) sees each answered batch at once, as the library's
:class:`~trustlab.extraction.defences.PRADA` describes.

Examples
--------
>>> from trustlab.tasks import build_task, load_spec
>>> task = build_task(load_spec("extraction-digits.yaml"), tasks_dir="tasks")  # doctest: +SKIP
>>> victim = task.kind.open_victim(task.spec, paths=task.paths)               # doctest: +SKIP
>>> victim.answer(victim.rules.check_batch(x), client_id="team-1").outputs.shape  # doctest: +SKIP
(16, 10)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trustlab.core.checks import compute_logits, model_device_and_dtype
from trustlab.core.data import save_npz
from trustlab.core.errors import ConfigurationError, DataError, SubmissionError, TrustlabError
from trustlab.core.models import build_model
from trustlab.core.training import accuracy, fit_classifier
from trustlab.core.weights import load_model, save_model
from trustlab.tasks._scoring import bootstrap_interval, mean, score_parts
from trustlab.tasks._training import (
    architecture_arguments,
    epoch_progress,
    load_arrays,
    seeded_single_thread,
)
from trustlab.tasks.base import FormField, ProgressFn, ScoreResult, TaskKind, TaskPaths
from trustlab.tasks.model_submission import (
    MODEL_NAME_FIELD,
    ArchitectureChoice,
    check_architecture_name,
    check_architectures,
    chosen_architecture,
    load_submitted_model,
)
from trustlab.tasks.registry import register_kind
from trustlab.tasks.spec import TaskSpec, parse_duration

OUTPUT_MODES = ("labels", "top-k", "probabilities", "embeddings")
ONNX_CHOICE = "onnx"
#: ONNX operator domains a submitted graph may use: the standard operator set only.
STANDARD_ONNX_DOMAINS = frozenset({"", "ai.onnx"})
SCORE_BATCH = 256
VALIDATION_ROWS = 8

MSG_BATCH_DTYPE = (
    "The batch has dtype {dtype}; send real numbers (float32, float64 or integers), not {what}."
)
MSG_BATCH_SHAPE = (
    "The batch has shape {shape}; this task takes shape (n, {expected}): one row per input, "
    "each of shape {expected_tuple}."
)
MSG_BATCH_EMPTY = "The batch has no rows; send at least one input."
MSG_BATCH_TOO_MANY = (
    "The batch has {n} rows; this task answers at most {max_batch} rows per request. Split it "
    "into smaller batches."
)
MSG_BATCH_NON_FINITE = "Row {row} holds {what}; every input value must be finite."
MSG_BATCH_RANGE = (
    "Row {row} holds the value {value:g}, outside this task's input range [{low:g}, {high:g}]; "
    "clip the inputs to that range."
)
MSG_OUTPUT_SHAPE = (
    "Your model returns outputs of shape {shape} for {n} inputs; the task needs shape "
    "({n}, {dim}), one {what} per input."
)
MSG_OUTPUT_NON_FINITE = (
    "Your model returned {what} for the task's input {row}; it must return finite outputs."
)
MSG_ONNX_UNREADABLE = "Your file is not a readable ONNX model: {error}"
MSG_ONNX_EXTERNAL = (
    "Your ONNX model keeps the tensor {name!r} in an external data file; submit one "
    "self-contained file (save with onnx.save_model(model, path, save_as_external_data=False))."
)
MSG_ONNX_DOMAIN = (
    "Your ONNX model uses the operator domain {domain!r} ({where}); only the standard ONNX "
    "operators (domain '' or 'ai.onnx') are accepted. Export without custom operators."
)
MSG_ONNX_FUNCTIONS = (
    "Your ONNX model defines {count} local function(s) ({names}); export it with the functions "
    "inlined (onnx.inliner.inline_local_functions)."
)
MSG_ONNX_INVALID = "Your ONNX model fails the ONNX checker: {error}"
MSG_ONNX_INPUTS = (
    "Your ONNX model has {count} graph inputs ({names}); it must take exactly one input, a "
    "float32 tensor of shape (n, {expected})."
)
MSG_ONNX_INPUT_TYPE = (
    "The input {name!r} of your ONNX model is not a float32 tensor; the task sends float32 "
    "inputs of shape (n, {expected})."
)
MSG_ONNX_INPUT_SHAPE = (
    "The input {name!r} of your ONNX model has shape {shape}; the task sends shape "
    "(n, {expected}). Export it with an example batch of that shape."
)
MSG_ONNX_OUTPUT = (
    "The first output {name!r} of your ONNX model has {found}; the task needs a float32 "
    "tensor of shape (n, {dim})."
)
MSG_ONNX_NO_OUTPUT = "Your ONNX model declares no graph output; it must return shape (n, {dim})."
MSG_ONNX_RUN = "Your ONNX model failed on the task's inputs: {error}"
MSG_MODEL_RUN = "Your model failed on the task's inputs: {error}"
MSG_ONNX_UNAVAILABLE = (
    "This arena cannot read ONNX files right now ({error}); submit weights for one of the "
    "task's architectures instead, and tell the course staff (install trustlab[onnx])."
)
MSG_ONNX_REFUSED = (
    "This task does not accept ONNX files; submit weights for one of its architectures: {choices}."
)
MSG_NO_QUERY_FORMAT = "{path} is missing; rebuild the task with 'trustlab task build'."
MSG_TOO_SMALL = (
    "params: the data set {dataset!r} has {available} examples, but the task needs {needed} "
    "(n_train + n_eval + at least one pool input); lower n_train or n_eval."
)
MSG_DEFENCE_MODE = (
    "field 'params.defence': the {name!r} defence does not apply to {output!r} outputs; "
    "embedding-transform is for embeddings, top-k and reverse-sigmoid for probabilities"
)
MSG_NO_LIBRARY = (
    "field 'params.{field}': the {what} {name!r} needs trustlab.extraction, which cannot be "
    "imported ({error}); install trustlab with its extraction pillar or remove the {what}."
)


# --------------------------------------------------------------------------------------------
# Spec parameters


def _duration(value: Any) -> float:
    return parse_duration(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoundingDefenceSpec(_Strict):
    """Round every output to ``decimals`` decimals (Tramèr et al., 2016)."""

    name: Literal["rounding"]
    decimals: int = Field(default=2, ge=0, le=8)


class TopKDefenceSpec(_Strict):
    """Answer only the ``k`` largest probabilities (the others become 0)."""

    name: Literal["top-k"]
    k: int = Field(default=1, ge=1)
    renormalise: bool = False


class NoiseDefenceSpec(_Strict):
    """Add Gaussian noise of standard deviation ``scale`` to the outputs."""

    name: Literal["noise"]
    scale: float = Field(gt=0.0, allow_inf_nan=False)
    seed: int = Field(default=0, ge=0)


class ReverseSigmoidDefenceSpec(_Strict):
    """The reverse-sigmoid perturbation of Lee et al. (S&P Workshops 2019)."""

    name: Literal["reverse-sigmoid"]
    beta: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    gamma: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)


class EmbeddingTransformDefenceSpec(_Strict):
    """A secret per-client transformation of embeddings (``embeddings`` output only)."""

    name: Literal["embedding-transform"]
    secret: str = Field(min_length=1)
    dim: int | None = Field(default=None, ge=1)


DefenceSpec = Annotated[
    RoundingDefenceSpec
    | TopKDefenceSpec
    | NoiseDefenceSpec
    | ReverseSigmoidDefenceSpec
    | EmbeddingTransformDefenceSpec,
    Field(discriminator="name"),
]


class DetectorSpec(_Strict):
    """An extraction detector run over each team's query stream.

    ``action`` decides what a flagged team gets: ``flag`` (default) keeps answering and only
    records the flag for the staff; ``refuse`` refuses the batch that raised the flag (its
    queries are given back) and every later query with 403.
    """

    name: Literal["prada"]
    threshold: float = Field(default=0.9, gt=0.0, le=1.0)
    min_queries: int = Field(default=100, ge=3)
    action: Literal["flag", "refuse"] = "flag"


class RateLimit(_Strict):
    """At most ``requests`` requests and ``queries`` rows per ``window`` (fixed windows)."""

    requests: int | None = Field(default=None, ge=1)
    queries: int | None = Field(default=None, ge=1)
    window: float = Field(default=60.0, gt=0.0)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> float:
        return _duration(value)


class ExtractionParams(_Strict):
    """Parameters of a model-extraction task (the spec's ``params``)."""

    victim: str = "digits-cnn"
    victim_arguments: dict[str, Any] = Field(default_factory=dict)
    n_train: int = Field(default=900, ge=10)
    n_eval: int = Field(default=400, ge=10)
    n_pool: int | None = Field(default=None, ge=1)
    epochs: int = Field(default=10, ge=1, le=10_000)
    lr: float = Field(default=1e-3, gt=0.0)
    batch_size: int = Field(default=32, ge=1)
    weight_decay: float = Field(default=0.0, ge=0.0)
    output: Literal["labels", "top-k", "probabilities", "embeddings"] = "probabilities"
    top_k: int = Field(default=3, ge=1)
    defence: DefenceSpec | None = None
    detector: DetectorSpec | None = None
    query_budget: int = Field(default=2000, ge=1)
    max_batch: int = Field(default=256, ge=1)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    input_range: tuple[float, float] | None = None
    architectures: list[ArchitectureChoice] = Field(min_length=1)
    accept_onnx: bool = True
    bootstrap_resamples: int = Field(default=200, ge=0)

    @field_validator("input_range")
    @classmethod
    def _range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None:
            low, high = value
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"must be [low, high] with finite low < high; got {list(value)}")
        return value

    @model_validator(mode="after")
    def _onnx_name(self) -> ExtractionParams:
        if self.accept_onnx and any(c.name == ONNX_CHOICE for c in self.architectures):
            raise ValueError(
                f"the architecture name {ONNX_CHOICE!r} is reserved for ONNX submissions; "
                "rename that entry"
            )
        return self

    @property
    def is_classifier(self) -> bool:
        return self.output != "embeddings"


# --------------------------------------------------------------------------------------------
# The query side: rules, batch checks and the victim


@dataclass(frozen=True)
class QueryRules:
    """What a task's query endpoint accepts, from the spec and the built task."""

    input_shape: tuple[int, ...]
    input_range: tuple[float, float] | None
    output: str
    output_dim: int
    query_budget: int
    max_batch: int
    rate_limit: RateLimit

    @property
    def max_rows(self) -> int:
        """The most rows one request may carry (the batch limit and the window's row limit)."""
        limit = self.rate_limit.queries
        return self.max_batch if limit is None else min(self.max_batch, limit)

    @property
    def max_body_bytes(self) -> int:
        """A generous cap on a request body: a full batch as JSON text, plus slack."""
        features = int(np.prod(self.input_shape))
        return 65_536 + self.max_rows * features * 32

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """Check a batch of inputs and return it as C-contiguous float32.

        Parameters
        ----------
        batch : numpy.ndarray, shape (n, *input_shape)
            Real numbers (integers or floats), ``1 <= n <= max_rows``.

        Raises
        ------
        DataError
            If the batch is not real numbers, has the wrong shape, too many rows, or a value
            that is not finite or lies outside the input range (the message names the row).

        Examples
        --------
        >>> rules = QueryRules(input_shape=(2,), input_range=(0.0, 1.0), output="labels",
        ...                    output_dim=3, query_budget=10, max_batch=4, rate_limit=RateLimit())
        >>> rules.check_batch(np.array([[0, 1], [1, 1]])).dtype
        dtype('float32')
        >>> rules.check_batch(np.array([[0.5, 2.0]]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        trustlab.core.errors.DataError: Row 0 holds the value 2, outside ... [0, 1]; ...
        """
        if batch.dtype == np.bool_ or not (
            np.issubdtype(batch.dtype, np.integer) or np.issubdtype(batch.dtype, np.floating)
        ):
            what = "booleans" if batch.dtype == np.bool_ else f"values of kind {batch.dtype.kind!r}"
            raise DataError(MSG_BATCH_DTYPE.format(dtype=batch.dtype, what=what))
        expected = ", ".join(str(d) for d in self.input_shape)
        if batch.ndim != 1 + len(self.input_shape) or tuple(batch.shape[1:]) != self.input_shape:
            raise DataError(
                MSG_BATCH_SHAPE.format(
                    shape=tuple(batch.shape), expected=expected, expected_tuple=self.input_shape
                )
            )
        n = batch.shape[0]
        if n == 0:
            raise DataError(MSG_BATCH_EMPTY)
        if n > self.max_rows:
            raise DataError(MSG_BATCH_TOO_MANY.format(n=n, max_batch=self.max_rows))
        with np.errstate(over="ignore"):
            values = np.ascontiguousarray(batch, dtype=np.float32)
        flat = values.reshape(n, -1)
        # A float64 value beyond float32's range becomes an infinity here, and is refused.
        finite = np.isfinite(flat).all(axis=1)
        if not finite.all():
            row = int(np.argmin(finite))
            what = "NaN" if np.isnan(flat[row]).any() else "an infinity"
            raise DataError(MSG_BATCH_NON_FINITE.format(row=row, what=what))
        if self.input_range is not None:
            low, high = self.input_range
            inside = ((flat >= low) & (flat <= high)).all(axis=1)
            if not inside.all():
                row = int(np.argmin(inside))
                bad = flat[row][(flat[row] < low) | (flat[row] > high)][0]
                raise DataError(MSG_BATCH_RANGE.format(row=row, value=bad, low=low, high=high))
        return values

    def to_json(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "input_dtype": "float32",
            "input_range": list(self.input_range) if self.input_range else None,
            "output": self.output,
            "output_dim": self.output_dim,
            "query_budget": self.query_budget,
            "max_batch": self.max_rows,
            "rate_limit": self.rate_limit.model_dump(),
        }


@dataclass(frozen=True)
class Answer:
    """The victim's answer to one batch: what the team gets, and the undefended labels."""

    outputs: np.ndarray
    labels: np.ndarray | None


@dataclass(frozen=True)
class Verdict:
    """What a detector concluded about a team's query stream after one batch."""

    flagged: bool
    statistic: float | None
    n_queries: int
    reason: str


class QueryVictim:
    """A task's victim as the query endpoint serves it (trusted: built by the staff).

    Thread-safe: the server calls :meth:`answer` from several threads at once; nothing in it
    changes the model or shared state.
    """

    def __init__(self, *, spec: TaskSpec, paths: TaskPaths, params: ExtractionParams) -> None:
        fmt = _read_query_format(paths)
        self.spec = spec
        self.params = params
        self.rules = QueryRules(
            input_shape=tuple(int(d) for d in fmt["input_shape"]),
            input_range=params.input_range,
            output=params.output,
            output_dim=int(fmt["output_dim"]),
            query_budget=params.query_budget,
            max_batch=params.max_batch,
            rate_limit=params.rate_limit,
        )
        self.model = load_model(paths.hidden / "victim.safetensors")
        self.defence = build_defence(params.defence, embeddings=not params.is_classifier)
        self.detector_action = params.detector.action if params.detector else None

    def answer(self, x: np.ndarray, *, client_id: str) -> Answer:
        """The outputs for a batch checked with :meth:`QueryRules.check_batch`.

        Shapes: ``x`` is ``(n, *input_shape)`` float32; the outputs are ``(n,)`` int64 labels
        or ``(n, output_dim)`` float32 (``top-k`` keeps the k largest probabilities of each
        row and sets the others to 0).
        """
        inputs = torch.from_numpy(x)
        raw = compute_logits(model=self.model, x=inputs, batch_size=max(1, len(x)))
        labels = raw.argmax(dim=1) if self.params.is_classifier else None
        outputs = raw if self.params.output == "embeddings" else torch.softmax(raw, dim=1)
        if self.defence is not None:
            outputs = self.defence.apply(outputs=outputs, inputs=inputs, client_id=client_id)
        if self.params.output == "labels":
            return Answer(
                outputs=outputs.argmax(dim=1).numpy().astype(np.int64), labels=_labels_np(labels)
            )
        if self.params.output == "top-k":
            outputs = keep_top_k(outputs, k=self.params.top_k)
        result = outputs.detach().cpu().numpy().astype(np.float32)
        return Answer(outputs=result, labels=_labels_np(labels))

    def new_detector(self) -> Any | None:
        """A fresh detector (its state is loaded per team by the caller), or None."""
        return build_detector(self.params.detector)


def _labels_np(labels: torch.Tensor | None) -> np.ndarray | None:
    return None if labels is None else labels.numpy().astype(np.int64)


def keep_top_k(probabilities: torch.Tensor, *, k: int) -> torch.Tensor:
    """Zero all but the ``k`` largest entries of each row (ties broken by index)."""
    k = min(k, probabilities.shape[1])
    top = torch.topk(probabilities, k=k, dim=1)
    kept = torch.zeros_like(probabilities)
    return kept.scatter(1, top.indices, top.values)


def build_defence(spec: DefenceSpec | None, *, embeddings: bool = False) -> Any | None:
    """The library defence a spec names (from :mod:`trustlab.extraction.defences`)."""
    if spec is None:
        return None
    from trustlab.extraction import defences

    if isinstance(spec, RoundingDefenceSpec):
        return defences.Rounding(decimals=spec.decimals)
    if isinstance(spec, TopKDefenceSpec):
        return defences.TopK(k=spec.k, renormalise=spec.renormalise)
    if isinstance(spec, NoiseDefenceSpec):
        return defences.AdditiveNoise(
            scale=spec.scale, seed=spec.seed, probabilities=not embeddings
        )
    if isinstance(spec, ReverseSigmoidDefenceSpec):
        return defences.ReverseSigmoid(beta=spec.beta, gamma=spec.gamma)
    return defences.EmbeddingTransform(secret=spec.secret, dim=spec.dim)


def build_detector(spec: DetectorSpec | None) -> Any | None:
    """The library detector a spec names (imported from :mod:`trustlab.extraction`)."""
    if spec is None:
        return None
    from trustlab.extraction import defences

    return defences.PRADA(threshold=spec.threshold, min_queries=spec.min_queries)


def _read_query_format(paths: TaskPaths) -> dict[str, Any]:
    path = paths.public / "query.json"
    if not path.is_file():
        raise ConfigurationError(MSG_NO_QUERY_FORMAT.format(path=path))
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@runtime_checkable
class SupportsQueries(Protocol):
    """A task kind whose tasks answer ``POST /api/v1/tasks/{task_id}/query``."""

    def open_victim(self, spec: TaskSpec, *, paths: TaskPaths) -> QueryVictim: ...


# --------------------------------------------------------------------------------------------
# ONNX submissions


def _graphs(graph: Any) -> Iterator[Any]:
    """A graph and every subgraph inside its nodes' attributes (If, Loop, Scan bodies)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor stored in a graph: initializers, sparse ones and constant attributes."""
    for g in _graphs(graph):
        yield from g.initializer
        for sparse in g.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in g.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("sparse_tensor"):
                    yield attribute.sparse_tensor.values
                    yield attribute.sparse_tensor.indices


def _dims(value_info: Any) -> list[int | str] | None:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[int | str] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or "?")
    return dims


class OnnxModel:
    """A checked ONNX model run with onnxruntime on the CPU, one thread.

    Use :func:`read_onnx` to make one. ``batch`` is the fixed batch size the graph declares,
    or None when its first dimension is symbolic.
    """

    def __init__(self, session: Any, *, input_name: str, output_name: str, batch: int | None):
        self.session = session
        self.input_name = input_name
        self.output_name = output_name
        self.batch = batch

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs for ``x`` of shape ``(n, *input_shape)``, float32, in row order."""
        step = self.batch or SCORE_BATCH
        outputs = []
        for start in range(0, len(x), step):
            chunk = np.ascontiguousarray(x[start : start + step], dtype=np.float32)
            rows = len(chunk)
            if self.batch is not None and rows < self.batch:
                pad = np.zeros((self.batch - rows, *chunk.shape[1:]), dtype=np.float32)
                chunk = np.concatenate([chunk, pad])
            try:
                (result,) = self.session.run([self.output_name], {self.input_name: chunk})
            except Exception as exc:  # onnxruntime raises its own error types
                raise SubmissionError(MSG_ONNX_RUN.format(error=str(exc)[:300])) from None
            outputs.append(np.asarray(result)[:rows])
        return np.concatenate(outputs)


def read_onnx(file: Path, *, input_shape: tuple[int, ...], output_dim: int) -> OnnxModel:
    """Check a submitted ONNX file and open it with onnxruntime, without running anything.

    The file must be one self-contained model (no external data), use only the standard ONNX
    operator domains (no custom operators, no local functions), pass the ONNX checker, and
    declare exactly one float32 input of shape ``(n, *input_shape)`` and a first output of
    shape ``(n, output_dim)`` (``n`` symbolic, or a fixed batch size that scoring pads to).
    onnxruntime reads the model from bytes, on the CPU provider with one thread.

    Raises
    ------
    SubmissionError
        Naming the first problem found.
    """
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        raise SubmissionError(MSG_ONNX_UNAVAILABLE.format(error=exc)) from None

    data = file.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise SubmissionError(
            MSG_ONNX_UNREADABLE.format(error=str(exc)[:200] or "bad bytes")
        ) from None
    if not model.HasField("graph"):
        raise SubmissionError(MSG_ONNX_UNREADABLE.format(error="it holds no graph"))
    for tensor in _tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise SubmissionError(MSG_ONNX_EXTERNAL.format(name=tensor.name))
    for opset in model.opset_import:
        if opset.domain not in STANDARD_ONNX_DOMAINS:
            raise SubmissionError(
                MSG_ONNX_DOMAIN.format(domain=opset.domain, where="in its opset imports")
            )
    if len(model.functions):
        names = ", ".join(f.name for f in list(model.functions)[:5])
        raise SubmissionError(MSG_ONNX_FUNCTIONS.format(count=len(model.functions), names=names))
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in STANDARD_ONNX_DOMAINS:
                where = f"node {node.name or node.op_type!r}, operator {node.op_type!r}"
                raise SubmissionError(MSG_ONNX_DOMAIN.format(domain=node.domain, where=where))
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise SubmissionError(MSG_ONNX_INVALID.format(error=str(exc).strip()[:300])) from None

    expected = ", ".join(str(d) for d in input_shape)
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise SubmissionError(
            MSG_ONNX_INPUTS.format(count=len(inputs), names=names, expected=expected)
        )
    graph_input = inputs[0]
    if graph_input.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise SubmissionError(MSG_ONNX_INPUT_TYPE.format(name=graph_input.name, expected=expected))
    dims = _dims(graph_input)
    batch: int | None = None
    if dims is not None:
        fits = len(dims) == 1 + len(input_shape) and all(
            isinstance(d, str) or d == want for d, want in zip(dims[1:], input_shape, strict=False)
        )
        if not fits or (isinstance(dims[0], int) and dims[0] < 1):
            raise SubmissionError(
                MSG_ONNX_INPUT_SHAPE.format(
                    name=graph_input.name, shape=tuple(dims), expected=expected
                )
            )
        batch = dims[0] if isinstance(dims[0], int) else None
    if not len(model.graph.output):
        raise SubmissionError(MSG_ONNX_NO_OUTPUT.format(dim=output_dim))
    graph_output = model.graph.output[0]
    out_dims = _dims(graph_output)
    problem = None
    if graph_output.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        problem = "a type other than float32"
    elif out_dims is not None and (
        len(out_dims) != 2 or (isinstance(out_dims[1], int) and out_dims[1] != output_dim)
    ):
        problem = f"shape {tuple(out_dims)}"
    if problem is not None:
        raise SubmissionError(
            MSG_ONNX_OUTPUT.format(name=graph_output.name, found=problem, dim=output_dim)
        )

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's Fail, InvalidGraph, NotImplemented, ...
        raise SubmissionError(MSG_ONNX_RUN.format(error=str(exc).strip()[:300])) from None
    return OnnxModel(
        session, input_name=graph_input.name, output_name=graph_output.name, batch=batch
    )


# --------------------------------------------------------------------------------------------
# The kind


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
        params = self.params_model.model_validate(spec.params)
        assert isinstance(params, ExtractionParams)
        return params

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
        x, y = load_arrays(spec.dataset)
        needed = params.n_train + params.n_eval + 1
        if len(x) < needed:
            raise ConfigurationError(
                MSG_TOO_SMALL.format(dataset=spec.dataset, available=len(x), needed=needed)
            )
        rng = np.random.default_rng(spec.seed)
        order = rng.permutation(len(x))
        train = order[: params.n_train]
        evaluation = order[params.n_train : params.n_train + params.n_eval]
        pool = order[params.n_train + params.n_eval :]
        if params.n_pool is not None:
            pool = pool[: params.n_pool]

        progress(f"training the victim ({params.victim}) on {len(train)} examples")
        with seeded_single_thread(spec.seed):
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
        save_model(victim, paths.hidden / "victim.safetensors", metadata={"trustlab.task": spec.id})
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
            _readme(
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
        fmt = _read_query_format(paths)
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


def classifier_metrics(
    *,
    stolen_labels: np.ndarray,
    victim_labels: np.ndarray,
    true_labels: np.ndarray,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """``agreement`` with the victim's labels and ``accuracy``, with a bootstrap interval."""
    same = (stolen_labels == victim_labels).astype(np.float64)
    result: dict[str, Any] = {
        "agreement": float(same.mean()),
        "accuracy": float((stolen_labels == true_labels).mean()),
        "n": len(same),
    }
    if resamples > 0:
        result["agreement_ci95"] = bootstrap_interval(
            mean, arrays={"values": same}, resamples=resamples, seed=seed
        )
    return result


def embedding_metrics(
    *, stolen: np.ndarray, victim: np.ndarray, scale: float, resamples: int, seed: int
) -> dict[str, Any]:
    """Mean ``l2`` distance and the bounded ``l2_fidelity = 1 / (1 + l2 / scale)``."""
    distances = np.linalg.norm(stolen - victim, axis=1)

    def fidelity(values: np.ndarray) -> float:
        return 1.0 / (1.0 + float(np.mean(values)) / scale)

    result: dict[str, Any] = {
        "l2_fidelity": fidelity(distances),
        "l2": float(distances.mean()),
        "n": len(distances),
    }
    if resamples > 0:
        result["l2_fidelity_ci95"] = bootstrap_interval(
            fidelity, arrays={"values": distances}, resamples=resamples, seed=seed
        )
    return result


def _readme(
    spec: TaskSpec,
    params: ExtractionParams,
    *,
    query_format: Mapping[str, Any],
    n_train: int,
    n_pool: int,
    n_eval: int,
    test_acc: float,
) -> str:
    deadline = spec.deadline.isoformat() if spec.deadline else "none"
    shape = ", ".join(str(d) for d in query_format["input_shape"])
    value_range = (
        f"within [{params.input_range[0]:g}, {params.input_range[1]:g}]"
        if params.input_range
        else "finite"
    )
    outputs = {
        "labels": "the predicted class of each row, shape (n,), int64",
        "top-k": (
            f"the {params.top_k} largest class probabilities of each row (the others are 0), "
            f"shape (n, {query_format['output_dim']}), float32"
        ),
        "probabilities": (
            f"the class probabilities of each row, shape (n, {query_format['output_dim']}), float32"
        ),
        "embeddings": (
            f"an embedding of each row, shape (n, {query_format['output_dim']}), float32"
        ),
    }[params.output]
    defence = "" if params.defence is None else "The answers pass through an output defence.\n"
    rate = params.rate_limit
    limits = []
    if rate.requests is not None:
        limits.append(f"{rate.requests} requests")
    if rate.queries is not None:
        limits.append(f"{rate.queries} rows")
    rate_text = (
        f"at most {' and '.join(limits)} per {rate.window:g} s" if limits else "no rate limit"
    )
    architectures = ", ".join(f"`{c.name}`" for c in params.architectures)
    if any(c.registry_name == "mlp" for c in params.architectures):
        architectures += " (an `mlp` sees each input flattened to one row)"
    onnx_text = "; or an ONNX file with `model_name=onnx`" if params.accept_onnx else ""
    metric = spec.metric or ("agreement" if params.is_classifier else "l2_fidelity")
    return f"""# {spec.title}

Task id: `{spec.id}` (kind `model-extraction`), deadline: {deadline}.

{spec.description}

A victim model (`{params.victim}`, trained on {n_train} examples of `{spec.dataset}`, accuracy
{test_acc:.3f} on held-out data) answers queries. Steal it: train a model that agrees with it.

## Queries
`POST /api/v1/tasks/{spec.id}/query` with your `X-API-Key`. The body is a NumPy `.npy` array
(`Content-Type: application/x-npy`) or JSON `{{"inputs": [...]}}`, of shape (n, {shape}),
real numbers {value_range}, at most {params.max_batch} rows per request. The answer is JSON
`{{"outputs": [...], "queries_remaining": ...}}`, or `.npy` with `Accept: application/x-npy`:
{outputs}.
{defence}
Your team's budget is {params.query_budget} rows in total; {rate_text}. Every answer carries
`X-Queries-Remaining`. A refused request (bad batch, budget or rate limit) costs nothing.
`trustlab.client.ArenaClient(url, api_key=...).query("{spec.id}", x)` does all this.

## Files
- `query.json`: the query format above, as JSON.
- `pool.npz`: `x`, {n_pool} unlabeled inputs to start your queries from.
- `sample_submission.safetensors`: an untrained `{params.architectures[0].name}`, the format of a
  weights submission.

## Submission
Weights (safetensors, or a `.pt` state dict) of one of {architectures}, with its name in the
form field `model_name`{onnx_text}. An ONNX file must be self-contained, use only standard ONNX
operators, and take one float32 input of shape (n, {shape}) and return
(n, {query_format["output_dim"]}).
Scored on {n_eval} hidden inputs by `{metric}`; the leaderboard shows the public part
({spec.public_fraction:.0%} of them) until the deadline, the private part after it.
"""

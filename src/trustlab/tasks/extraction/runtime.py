"""The query runtime of the ``model-extraction`` kind: the victim behind the query endpoint.

:class:`QueryVictim` implements the :class:`~trustlab.tasks.base.Victim` contract the server
relies on: it loads the victim's weights once, answers batches already checked against the
task's :class:`~trustlab.tasks.base.QueryRules` (through the spec's output defence, from
:mod:`trustlab.extraction.defences`), and makes a fresh detector for the server to run over
each team's query stream.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from trustlab.core.checks import compute_logits
from trustlab.core.errors import ConfigurationError
from trustlab.core.weights import load_model
from trustlab.tasks.base import Answer, Detector, QueryRules, TaskPaths
from trustlab.tasks.extraction.messages import MSG_NO_QUERY_FORMAT
from trustlab.tasks.extraction.spec import DefenceSpec, DetectorSpec, ExtractionParams
from trustlab.tasks.spec import TaskSpec

#: The victim of a task built from an instructor's ONNX model (else ``victim.safetensors``).
VICTIM_ONNX = "victim.onnx"

if TYPE_CHECKING:
    from trustlab.extraction import OutputDefence
    from trustlab.extraction.defences import QueryDetector


class QueryVictim:
    """A task's victim as the query endpoint serves it (trusted: built by the staff).

    Implements :class:`~trustlab.tasks.base.Victim`. Thread-safe: the server calls
    :meth:`answer` from several threads at once; nothing in it changes the model or shared
    state.
    """

    def __init__(self, *, spec: TaskSpec, paths: TaskPaths, params: ExtractionParams) -> None:
        fmt = read_query_format(paths)
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
        self.model: torch.nn.Module | None = None
        self.onnx: Any = None
        if (paths.hidden / VICTIM_ONNX).is_file():
            from trustlab.tasks.onnx_submission import read_onnx

            self.onnx = read_onnx(
                paths.hidden / VICTIM_ONNX,
                input_shape=self.rules.input_shape,
                output_dim=self.rules.output_dim,
            )
        else:
            self.model = load_model(paths.hidden / "victim.safetensors")
        self.defence = build_defence(params.defence, embeddings=not params.is_classifier)
        self.detector_action: str | None = params.detector.action if params.detector else None

    def answer(self, x: np.ndarray, *, client_id: str) -> Answer:
        """The outputs for a batch checked with :meth:`QueryRules.check_batch`.

        Shapes: ``x`` is ``(n, *input_shape)`` float32; the outputs are ``(n,)`` int64 labels
        or ``(n, output_dim)`` float32 (``top-k`` keeps the k largest probabilities of each
        row and sets the others to 0).
        """
        inputs = torch.from_numpy(x)
        if self.onnx is not None:
            raw = torch.from_numpy(np.asarray(self.onnx(x), dtype=np.float32))
        else:
            assert self.model is not None
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

    def new_detector(self) -> Detector | None:
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


def build_defence(spec: DefenceSpec | None, *, embeddings: bool = False) -> OutputDefence | None:
    """The library defence a spec names, built through :data:`trustlab.extraction.DEFENCES`.

    The spec's ``name`` is the defence's registered name and its other fields are the
    defence's options; ``noise`` on an encoder adds its noise without renormalising
    (``embeddings=True``).
    """
    if spec is None:
        return None
    from trustlab.extraction import build_defence as build_library_defence

    options = spec.model_dump(exclude={"name"})
    if spec.name == "noise":
        options["probabilities"] = not embeddings
    return build_library_defence(spec.name, options)


def build_detector(spec: DetectorSpec | None) -> QueryDetector | None:
    """The library detector a spec names, built from the extraction pillar's registry."""
    if spec is None:
        return None
    from trustlab.extraction.defences import build_detector as build_library_detector

    return build_library_detector(spec.name, spec.model_dump(exclude={"name", "action"}))


def read_query_format(paths: TaskPaths) -> dict[str, Any]:
    """The query format a built task publishes in ``public/query.json``.

    Raises
    ------
    ConfigurationError
        If the task was built without it.
    """
    path = paths.public / "query.json"
    if not path.is_file():
        raise ConfigurationError(MSG_NO_QUERY_FORMAT.format(path=path))
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data

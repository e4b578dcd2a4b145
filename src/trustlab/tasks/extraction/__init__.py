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
    The victim's weights; never served. The server loads it once per task and process. A task
    built from the instructor's ONNX victim (``params.model_file``) keeps ``hidden/victim.onnx``
    instead, run with onnxruntime.
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

Modules
-------
``spec``
    The spec's parameters (:class:`ExtractionParams`, defences, detector).
``runtime``
    The victim behind the query endpoint (:class:`QueryVictim`); the query contract it
    implements lives in :mod:`trustlab.tasks.base`.
``kind``
    The kind itself (:class:`ModelExtraction`): build, validate, score.
``metrics``
    The scores, from :mod:`trustlab.extraction.metrics`.
``messages`` and ``readme``
    The messages as constants, and the README (``templates/model-extraction_readme.md.j2``).

ONNX submissions are read by :mod:`trustlab.tasks.onnx_submission`.
"""

from trustlab.tasks.base import (
    MSG_BATCH_DTYPE,
    MSG_BATCH_EMPTY,
    MSG_BATCH_NON_FINITE,
    MSG_BATCH_RANGE,
    MSG_BATCH_SHAPE,
    MSG_BATCH_TOO_MANY,
    Answer,
    QueryRules,
    RateLimit,
    SupportsQueries,
    Verdict,
)
from trustlab.tasks.extraction.kind import SCORE_BATCH, VALIDATION_ROWS, ModelExtraction
from trustlab.tasks.extraction.messages import (
    MSG_DEFENCE_MODE,
    MSG_MODEL_RUN,
    MSG_NO_LIBRARY,
    MSG_NO_QUERY_FORMAT,
    MSG_OUTPUT_NON_FINITE,
    MSG_OUTPUT_SHAPE,
    MSG_TOO_SMALL,
)
from trustlab.tasks.extraction.metrics import classifier_metrics, embedding_metrics
from trustlab.tasks.extraction.runtime import (
    QueryVictim,
    build_defence,
    build_detector,
    keep_top_k,
    read_query_format,
)
from trustlab.tasks.extraction.spec import (
    OUTPUT_MODES,
    DefenceSpec,
    DetectorSpec,
    EmbeddingTransformDefenceSpec,
    ExtractionParams,
    NoiseDefenceSpec,
    ReverseSigmoidDefenceSpec,
    RoundingDefenceSpec,
    TopKDefenceSpec,
)
from trustlab.tasks.onnx_submission import (
    MSG_ONNX_DOMAIN,
    MSG_ONNX_EXTERNAL,
    MSG_ONNX_FUNCTIONS,
    MSG_ONNX_INPUT_SHAPE,
    MSG_ONNX_INPUT_TYPE,
    MSG_ONNX_INPUTS,
    MSG_ONNX_INVALID,
    MSG_ONNX_NO_OUTPUT,
    MSG_ONNX_OUTPUT,
    MSG_ONNX_REFUSED,
    MSG_ONNX_RUN,
    MSG_ONNX_UNAVAILABLE,
    MSG_ONNX_UNREADABLE,
    ONNX_CHOICE,
    STANDARD_ONNX_DOMAINS,
    OnnxModel,
    read_onnx,
)

__all__ = [
    "MSG_BATCH_DTYPE",
    "MSG_BATCH_EMPTY",
    "MSG_BATCH_NON_FINITE",
    "MSG_BATCH_RANGE",
    "MSG_BATCH_SHAPE",
    "MSG_BATCH_TOO_MANY",
    "MSG_DEFENCE_MODE",
    "MSG_MODEL_RUN",
    "MSG_NO_LIBRARY",
    "MSG_NO_QUERY_FORMAT",
    "MSG_ONNX_DOMAIN",
    "MSG_ONNX_EXTERNAL",
    "MSG_ONNX_FUNCTIONS",
    "MSG_ONNX_INPUTS",
    "MSG_ONNX_INPUT_SHAPE",
    "MSG_ONNX_INPUT_TYPE",
    "MSG_ONNX_INVALID",
    "MSG_ONNX_NO_OUTPUT",
    "MSG_ONNX_OUTPUT",
    "MSG_ONNX_REFUSED",
    "MSG_ONNX_RUN",
    "MSG_ONNX_UNAVAILABLE",
    "MSG_ONNX_UNREADABLE",
    "MSG_OUTPUT_NON_FINITE",
    "MSG_OUTPUT_SHAPE",
    "MSG_TOO_SMALL",
    "ONNX_CHOICE",
    "OUTPUT_MODES",
    "SCORE_BATCH",
    "STANDARD_ONNX_DOMAINS",
    "VALIDATION_ROWS",
    "Answer",
    "DefenceSpec",
    "DetectorSpec",
    "EmbeddingTransformDefenceSpec",
    "ExtractionParams",
    "ModelExtraction",
    "NoiseDefenceSpec",
    "OnnxModel",
    "QueryRules",
    "QueryVictim",
    "RateLimit",
    "ReverseSigmoidDefenceSpec",
    "RoundingDefenceSpec",
    "SupportsQueries",
    "TopKDefenceSpec",
    "Verdict",
    "build_defence",
    "build_detector",
    "classifier_metrics",
    "embedding_metrics",
    "keep_top_k",
    "read_onnx",
    "read_query_format",
]

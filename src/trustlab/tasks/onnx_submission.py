"""Submissions that are ONNX files: checked statically, then run with onnxruntime.

A kind that accepts ONNX models beside weights (e.g. ``model-extraction``, where the form field
``model_name`` is ``onnx``) reads the file with :func:`read_onnx`. The graph must be one
self-contained model (no external data), use only the standard ONNX operator domains (no
custom operators, no local functions), pass the ONNX checker and declare the task's input and
output shapes; nothing in it runs before these checks pass, and onnxruntime then runs it on
the CPU with one thread. Every problem becomes a
:class:`~trustlab.core.errors.SubmissionError` whose message names it.

onnx and onnxruntime are optional (``trustlab[onnx]``); without them an ONNX submission is
refused with a message that says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from trustlab.core.errors import SubmissionError

#: The ``model_name`` form value that marks an ONNX submission.
ONNX_CHOICE = "onnx"
#: ONNX operator domains a submitted graph may use: the standard operator set only.
STANDARD_ONNX_DOMAINS = frozenset({"", "ai.onnx"})
#: Rows per onnxruntime call when the graph's batch dimension is symbolic.
ONNX_BATCH = 256

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
MSG_ONNX_UNAVAILABLE = (
    "This arena cannot read ONNX files right now ({error}); submit weights for one of the "
    "task's architectures instead, and tell the course staff (install trustlab[onnx])."
)
MSG_ONNX_REFUSED = (
    "This task does not accept ONNX files; submit weights for one of its architectures: {choices}."
)


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
        """Outputs for ``x`` of shape ``(n, *input_shape)``, float32, in row order.

        Raises
        ------
        SubmissionError
            If onnxruntime fails on a batch.
        """
        step = self.batch or ONNX_BATCH
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

    Parameters
    ----------
    file : pathlib.Path
        The submitted file (untrusted).
    input_shape : tuple of int
        The shape of one input row the task sends.
    output_dim : int
        The width of one output row the task needs.

    Returns
    -------
    OnnxModel
        The model, ready to run on arrays of shape ``(n, *input_shape)``.

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

"""Input checks shared by every pillar: inputs, labels, logits and batch sizes.

Each check raises :class:`~trustlab.core.errors.DataError` (bad data) or
:class:`~trustlab.core.errors.ConfigurationError` (a bad parameter) with a message that says
what is wrong and how to fix it; the messages are module constants so tests can match them.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.typing import ArrayLike

MSG_X_TYPE = "x must be a torch.Tensor or a NumPy array of numbers; got {what}."
MSG_X_SHAPE = "x must have one row per example, shape (n_examples, ...); got shape {shape}."
MSG_X_EMPTY = "x is empty; pass at least one example."
MSG_X_NON_FINITE = "x contains {what} in example {index}; every input value must be finite."
MSG_Y_SHAPE = "y must be 1-D with one class label per example; got shape {shape}."
MSG_Y_DTYPE = (
    "y must hold integer class labels; got dtype {dtype}. Convert it with .long() or .astype(int)."
)
MSG_Y_RANGE = (
    "y must hold class indices in [0, {n_classes}) for a model with {n_classes} outputs; "
    "found {value} at index {index}."
)
MSG_LENGTH = (
    "{first} and {second} must have the same number of examples; got {n_first} and {n_second}."
)
MSG_LOGITS_SHAPE = (
    "The model must return logits of shape (n_examples, n_classes); got shape {shape} for "
    "{n_examples} examples."
)
MSG_LOGITS_NON_FINITE = (
    "The model returned {what} for example {index}; the evaluation needs finite outputs."
)
MSG_MODEL_FAILED = (
    "The model cannot run on inputs of shape (n, {shape}): {error}. Pass x in the shape the "
    "model expects (e.g. (n, channels, height, width) for an image model)."
)
MSG_BATCH_SIZE = "The 'batch_size' parameter of {owner} must be an int >= 1. Got {value!r} instead."


def check_batch_size(batch_size: int, *, owner: str) -> int:
    """Return ``batch_size`` if it is an int >= 1, else raise :class:`ConfigurationError`."""
    is_int = isinstance(batch_size, (int, np.integer)) and not isinstance(
        batch_size, (bool, np.bool_)
    )
    if not is_int or batch_size < 1:
        raise ConfigurationError(MSG_BATCH_SIZE.format(owner=owner, value=batch_size))
    return int(batch_size)


def as_input_tensor(x: ArrayLike) -> torch.Tensor:
    """Check candidate inputs and return them as a tensor of shape (n_examples, ...).

    Raises
    ------
    DataError
        If ``x`` is not numeric, is a scalar, is empty, or holds a NaN or an infinity (the
        message names the first such example).
    """
    if isinstance(x, torch.Tensor):
        tensor = x.detach()
    else:
        array = np.asarray(x)
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
            raise DataError(MSG_X_TYPE.format(what=f"an array of dtype {array.dtype}"))
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dim() == 0:
        raise DataError(MSG_X_SHAPE.format(shape=tuple(tensor.shape)))
    if tensor.shape[0] == 0:
        raise DataError(MSG_X_EMPTY)
    if tensor.is_floating_point() or tensor.is_complex():
        finite = torch.isfinite(tensor).reshape(tensor.shape[0], -1).all(dim=1)
        if not bool(finite.all()):
            index = int(torch.argmin(finite.to(torch.uint8)))
            what = "NaN" if bool(torch.isnan(tensor[index]).any()) else "an infinity"
            raise DataError(MSG_X_NON_FINITE.format(what=what, index=index))
    return tensor


def as_label_tensor(y: ArrayLike) -> torch.Tensor:
    """Check class labels and return them as a 1-D int64 tensor on the CPU.

    Raises
    ------
    DataError
        If ``y`` is not 1-D or not of an integer dtype.
    """
    if isinstance(y, torch.Tensor):
        if y.dim() != 1:
            raise DataError(MSG_Y_SHAPE.format(shape=tuple(y.shape)))
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise DataError(MSG_Y_DTYPE.format(dtype=y.dtype))
        return y.detach().cpu().long()
    array = np.asarray(y)
    if array.ndim != 1:
        raise DataError(MSG_Y_SHAPE.format(shape=array.shape))
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(MSG_Y_DTYPE.format(dtype=array.dtype))
    return torch.from_numpy(array.astype(np.int64))


def check_same_length(*, first: str, n_first: int, second: str, n_second: int) -> None:
    """Raise :class:`DataError` unless two arguments hold the same number of examples."""
    if n_first != n_second:
        raise DataError(
            MSG_LENGTH.format(first=first, second=second, n_first=n_first, n_second=n_second)
        )


def check_labels_in_range(labels: torch.Tensor, *, n_classes: int) -> None:
    """Raise :class:`DataError` unless every label is a class index in ``[0, n_classes)``."""
    in_range = (labels >= 0) & (labels < n_classes)
    if not bool(in_range.all()):
        index = int(torch.argmin(in_range.to(torch.uint8)))
        raise DataError(
            MSG_Y_RANGE.format(n_classes=n_classes, value=int(labels[index]), index=index)
        )


def check_logits(logits: torch.Tensor, *, n_examples: int) -> torch.Tensor:
    """Check that ``logits`` has shape (n_examples, n_classes) and finite values."""
    if logits.dim() != 2 or logits.shape[0] != n_examples:
        raise DataError(MSG_LOGITS_SHAPE.format(shape=tuple(logits.shape), n_examples=n_examples))
    finite = torch.isfinite(logits).all(dim=1)
    if not bool(finite.all()):
        index = int(torch.argmin(finite.to(torch.uint8)))
        what = "NaN" if bool(torch.isnan(logits[index]).any()) else "an infinity"
        raise DataError(MSG_LOGITS_NON_FINITE.format(what=what, index=index))
    return logits


def model_device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    tensors = list(itertools.chain(model.parameters(), model.buffers()))
    device = tensors[0].device if tensors else torch.device("cpu")
    floating = [tensor.dtype for tensor in tensors if tensor.is_floating_point()]
    dtype = floating[0] if floating else torch.get_default_dtype()
    return device, dtype


def run_model(model: nn.Module, batch: torch.Tensor) -> object:
    """``model(batch)``, with a shape mismatch turned into a :class:`DataError` that says so.

    A model that cannot run on the inputs raises a bare ``RuntimeError`` deep inside torch
    ("mat1 and mat2 shapes cannot be multiplied"); this names the input shape instead. Running
    out of memory is not a data problem and propagates unchanged.
    """
    try:
        return model(batch)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        raise DataError(
            MSG_MODEL_FAILED.format(
                shape=", ".join(str(size) for size in batch.shape[1:]),
                error=str(err).splitlines()[0],
            )
        ) from err


def compute_logits(
    *, model: nn.Module, x: torch.Tensor, batch_size: int, require_finite: bool = True
) -> torch.Tensor:
    """Run ``model`` on ``x`` in eval mode, without gradients, ``batch_size`` rows at a time.

    Floating-point inputs are cast to the model's floating-point dtype and every batch is moved
    to the model's device. The mode of every submodule is restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of shape (batch, ...) to logits of shape (batch, n_classes).
    x : torch.Tensor, shape (n_examples, ...)
        Inputs, already checked with :func:`as_input_tensor`.
    batch_size : int
        Rows per forward pass.
    require_finite : bool, default=True
        Refuse logits that hold NaN or an infinity (:class:`DataError` naming the example).

    Returns
    -------
    torch.Tensor, shape (n_examples, n_classes)
        The logits, on the CPU.
    """
    device, dtype = model_device_and_dtype(model)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        outputs = []
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                batch = x[start : start + batch_size].to(device)
                if batch.is_floating_point():
                    batch = batch.to(dtype)
                output = run_model(model, batch)
                if not isinstance(output, torch.Tensor):
                    raise DataError(
                        MSG_LOGITS_SHAPE.format(
                            shape=type(output).__name__, n_examples=batch.shape[0]
                        )
                    )
                outputs.append(output.detach().cpu())
    finally:
        for module, training in modes:
            module.training = training
    logits = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
    if not require_finite:
        if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            raise DataError(
                MSG_LOGITS_SHAPE.format(shape=tuple(logits.shape), n_examples=x.shape[0])
            )
        return logits
    return check_logits(logits, n_examples=x.shape[0])

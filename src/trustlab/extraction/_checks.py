"""Checks of the data the extraction pillar's defences receive: output batches and client ids.

Hyperparameters are declared on each class and checked at construction by
:func:`trustlab.core.params.validate_params`; these helpers check what arrives with a call.
"""

from __future__ import annotations

import torch

from trustlab.core.errors import DataError

MSG_OUTPUTS_SHAPE = (
    "{owner}: outputs must be a 2-D float tensor of shape (n_queries, n_outputs); got {what}."
)
MSG_OUTPUTS_NON_FINITE = "{owner}: outputs hold NaN or infinite values in row {index}."
MSG_OUTPUTS_NOT_PROBABILITIES = (
    "{owner} works on probability vectors, but outputs row {index} holds {value} (outside "
    "[0, 1]); apply it to softmax probabilities, not to logits or embeddings."
)
MSG_INPUTS_LENGTH = (
    "{owner}: inputs must have one row per output row; got {n_inputs} inputs for {n_outputs} "
    "outputs."
)
MSG_CLIENT_ID = "{owner}: client_id must be a non-empty str. Got {value!r} instead."


def _first_false(mask: torch.Tensor) -> int:
    return int(torch.argmin(mask.to(torch.uint8)))


def check_client_id(value: object, *, owner: str) -> str:
    """Return ``value`` if it is a non-empty str, else raise DataError."""
    if not isinstance(value, str) or not value:
        raise DataError(MSG_CLIENT_ID.format(owner=owner, value=value))
    return value


def check_outputs(
    outputs: object, *, owner: str, probabilities: bool, n_inputs: int | None = None
) -> torch.Tensor:
    """Check a batch of victim outputs: a finite 2-D float tensor, in [0, 1] if probabilities."""
    if not isinstance(outputs, torch.Tensor):
        raise DataError(MSG_OUTPUTS_SHAPE.format(owner=owner, what=type(outputs).__name__))
    if outputs.dim() != 2 or not outputs.is_floating_point() or outputs.shape[0] == 0:
        what = f"shape {tuple(outputs.shape)} and dtype {outputs.dtype}"
        raise DataError(MSG_OUTPUTS_SHAPE.format(owner=owner, what=what))
    finite = torch.isfinite(outputs).all(dim=1)
    if not bool(finite.all()):
        raise DataError(MSG_OUTPUTS_NON_FINITE.format(owner=owner, index=_first_false(finite)))
    if probabilities:
        inside = ((outputs >= 0) & (outputs <= 1)).all(dim=1)
        if not bool(inside.all()):
            index = _first_false(inside)
            row = outputs[index]
            bad = row[(row < 0) | (row > 1)][0]
            raise DataError(
                MSG_OUTPUTS_NOT_PROBABILITIES.format(owner=owner, index=index, value=float(bad))
            )
    if n_inputs is not None and n_inputs != outputs.shape[0]:
        raise DataError(
            MSG_INPUTS_LENGTH.format(owner=owner, n_inputs=n_inputs, n_outputs=outputs.shape[0])
        )
    return outputs

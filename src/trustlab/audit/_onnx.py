"""An ONNX classifier run by onnxruntime behind the ``nn.Module`` interface.

The audit runs every section on an ``nn.Module``; an ONNX file is wrapped so that its forward
pass calls onnxruntime on the CPU. Gradients do not flow through it, so the sections that need
them (white-box attacks, attributions) say so and use what works without them (Square, a
black-box attack) or report "not available".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, WeightsError

__all__ = ["OnnxClassifier"]

MSG_NO_ONNXRUNTIME = (
    "Auditing an ONNX model needs onnxruntime: pip install 'trustlab[onnx]' (or export the "
    "model's weights with trustlab.core.weights.save_model instead)."
)
MSG_ONNX_UNREADABLE = "The ONNX model {path} could not be opened by onnxruntime: {error}"
MSG_ONNX_INPUTS = (
    "The ONNX model {path} has {count} graph inputs; the audit needs exactly one (the batch of "
    "inputs)."
)


class OnnxClassifier(nn.Module):
    """Run an ONNX classifier with onnxruntime (CPU, no gradients).

    Parameters
    ----------
    path : pathlib.Path
        The ``.onnx`` file: one input of shape (batch, ...), first output the logits.
    """

    differentiable = False

    def __init__(self, path: Path) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as err:  # pragma: no cover - depends on the installation
            raise ConfigurationError(MSG_NO_ONNXRUNTIME) from err
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        try:
            self._session: Any = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types
            raise WeightsError(
                MSG_ONNX_UNREADABLE.format(path=path, error=str(err).splitlines()[0])
            ) from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise WeightsError(MSG_ONNX_INPUTS.format(path=path, count=len(inputs)))
        self._input = inputs[0].name
        first = inputs[0].shape[0] if inputs[0].shape else None
        self._fixed_batch = first if isinstance(first, int) and first > 0 else None

    def _run(self, batch: np.ndarray) -> np.ndarray:
        output = self._session.run(None, {self._input: batch})[0]
        return np.asarray(output, dtype=np.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().to("cpu", torch.float32).numpy()
        if self._fixed_batch is None:
            out = self._run(array)
        else:
            size = self._fixed_batch
            parts = []
            for start in range(0, len(array), size):
                chunk = array[start : start + size]
                pad = size - len(chunk)
                if pad:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
                parts.append(self._run(chunk)[: size - pad])
            out = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
        return torch.from_numpy(out).to(x.device)

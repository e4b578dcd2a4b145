"""A secret, per-client transformation of an encoder's embedding space."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from trustlab.core.errors import DataError
from trustlab.core.params import Constraint, Integer, NonEmptyStr, Optional, validate_params
from trustlab.core.typing import FloatArray
from trustlab.extraction._hashing import stable_key, stable_normal, stable_uniform
from trustlab.extraction.defences.base import OutputDefence
from trustlab.extraction.defences.registry import register_defence

__all__ = ["ClientTransform", "EmbeddingTransform"]

MSG_DIM_TOO_SMALL = (
    "The 'dim' parameter of EmbeddingTransform ({dim}) is smaller than the victim's embedding "
    "dimension ({d}); an isometry needs dim >= {d}. Pass dim=None to keep the dimension."
)
#: Each client's scale is drawn uniformly from [SCALE_LOW, SCALE_HIGH).
SCALE_LOW, SCALE_HIGH = 0.5, 2.0
#: Each coordinate of a client's shift is drawn uniformly from [-SHIFT, SHIFT).
SHIFT = 1.0


class ClientTransform:
    """The affine map one client sees: ``e -> scale * e @ rotation + shift``.

    Attributes
    ----------
    rotation : ndarray of float64, shape (d, dim)
        A matrix with orthonormal rows (orthogonal when ``dim == d``).
    scale : float
        A positive scale.
    shift : ndarray of float64, shape (dim,)
        A shift vector.
    """

    def __init__(self, *, rotation: FloatArray, scale: float, shift: FloatArray) -> None:
        self.rotation = rotation
        self.scale = scale
        self.shift = shift

    def __call__(self, embeddings: torch.Tensor) -> torch.Tensor:
        rotation = torch.from_numpy(self.rotation).to(embeddings.device)
        shift = torch.from_numpy(self.shift).to(embeddings.device)
        return self.scale * embeddings.to(torch.float64) @ rotation + shift


@register_defence("embedding-transform")
class EmbeddingTransform(OutputDefence):
    """Show each client the victim's embeddings through its own secret affine isometry.

    Courses that expose an encoder to many teams guard against stitching: a team that opens
    several accounts must not be able to pool their answers. Each client gets a fixed map
    ``e -> s * e @ R + b`` with ``R`` a random (d, dim) matrix with orthonormal rows (a
    rotation, possibly into a larger space), ``s`` in [0.5, 2) and ``b`` in [-1, 1)^dim. The
    map preserves the geometry one client sees (all its pairwise L2 distances are multiplied
    by the same ``s``, angles between differences are kept), so a single client can still
    train a useful copy, but embeddings obtained under two client ids live in different
    frames and do not agree.

    ``R``, ``s`` and ``b`` are derived from ``secret``, ``client_id`` and the dimensions by
    BLAKE2b and SHAKE-256 (never Python's salted ``hash()``): the same client gets the same map
    in every process, on every machine, as long as ``secret`` is unchanged. ``R`` is the Q
    factor of the QR decomposition of a Gaussian matrix with the signs fixed by the diagonal of
    R (a Haar-distributed rotation). Maps are cached per client.

    Threat model: the client knows an isometry is applied but not which one; only the
    server's ``secret`` determines them. A client who learns a few (input, embedding) pairs of
    another account can align the two frames, which this defence does not prevent.

    Parameters
    ----------
    secret : str
        The server's secret; keep it out of anything a client can read.
    dim : int or None, default=None
        Dimension of the returned embeddings; ``None`` keeps the victim's dimension ``d``.
        Must be >= ``d``.

    Examples
    --------
    >>> import torch
    >>> defence = EmbeddingTransform(secret="s3cret")
    >>> e = torch.randn(4, 8)
    >>> a = defence.apply(outputs=e, inputs=torch.zeros(4, 1), client_id="team-a")
    >>> b = defence.apply(outputs=e, inputs=torch.zeros(4, 1), client_id="team-b")
    >>> bool(torch.allclose(a, b))
    False
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "secret": NonEmptyStr(),
        "dim": Optional(Integer(low=1)),
    }

    def __init__(self, *, secret: str, dim: int | None = None) -> None:
        self.secret = secret
        self.dim = dim
        validate_params(self)
        self._cache: dict[tuple[str, str, int, int], ClientTransform] = {}

    @property
    def probabilities_only(self) -> bool:
        return False

    def transform_for(self, *, client_id: str, d: int) -> ClientTransform:
        """The map applied to ``client_id``'s embeddings of dimension ``d``."""
        dim = d if self.dim is None else self.dim
        if dim < d:
            raise DataError(MSG_DIM_TOO_SMALL.format(dim=dim, d=d))
        key = (self.secret, client_id, d, dim)
        if key not in self._cache:
            self._cache[key] = _make_transform(self.secret, client_id, d, dim)
        return self._cache[key]

    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        transform = self.transform_for(client_id=client_id, d=outputs.shape[1])
        return transform(outputs)

    def __repr__(self) -> str:
        return f"EmbeddingTransform(secret='***', dim={self.dim!r})"


def _make_transform(secret: str, client_id: str, d: int, dim: int) -> ClientTransform:
    key = stable_key("embedding-transform", secret, client_id, d, dim)
    gaussian = stable_normal(stable_key(key, "rotation"), dim * dim).reshape(dim, dim)
    q, r = np.linalg.qr(gaussian)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    orthogonal = q * signs  # Haar-distributed
    rotation = np.ascontiguousarray(orthogonal[:d, :])
    u = stable_uniform(stable_key(key, "scale"), 1)[0]
    scale = float(SCALE_LOW + (SCALE_HIGH - SCALE_LOW) * u)
    shift = SHIFT * (2.0 * stable_uniform(stable_key(key, "shift"), dim) - 1.0)
    return ClientTransform(rotation=rotation, scale=scale, shift=shift)

"""PRADA: detection of extraction attacks from the distances between queries (Juuti et al.)."""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import stats

from trustlab.core.checks import as_input_tensor, as_label_tensor, check_same_length
from trustlab.core.errors import DataError
from trustlab.core.params import Constraint, Integer, Real, validate_params
from trustlab.core.typing import FloatArray
from trustlab.extraction._checks import check_client_id
from trustlab.extraction.defences.base import DetectorVerdict, QueryDetector
from trustlab.extraction.defences.registry import register_detector

__all__ = ["PRADA"]

#: Version of the format returned by :meth:`PRADA.state_dict`.
STATE_VERSION = 1
#: A class contributes its distances to the test once it has at least this many (reference
#: implementation of the authors).
MIN_CLASS_DISTANCES = 10
#: Distances further than this many standard deviations from the mean are left out of the test.
OUTLIER_STDS = 3.0

MSG_FEATURES = (
    "PRADA: client {client!r} sent inputs with {got} values per query, but its earlier queries "
    "had {expected}; one detector watches one victim, whose input shape is fixed."
)
MSG_STATE = (
    "PRADA.load_state_dict: the state for client {client!r} is malformed ({problem}); pass a "
    "dict returned by PRADA.state_dict."
)


class _ClassState:
    """Growing set, its distances and threshold, and all query distances of one class."""

    def __init__(self, first: FloatArray) -> None:
        self.growing_set: FloatArray = first[None, :].copy()
        self.growing_distances: list[float] = [0.0]
        self.threshold = 0.0
        self.distances: list[float] = []

    def add(self, query: FloatArray) -> None:
        nearest = float(np.min(np.linalg.norm(self.growing_set - query, axis=1)))
        self.distances.append(nearest)
        if nearest > self.threshold:
            self.growing_set = np.vstack([self.growing_set, query[None, :]])
            self.growing_distances.append(nearest)
            spread = np.asarray(self.growing_distances)
            self.threshold = max(self.threshold, float(spread.mean() - spread.std()))


class _ClientState:
    def __init__(self) -> None:
        self.classes: dict[int, _ClassState] = {}
        self.n_queries = 0
        self.n_features: int | None = None


@register_detector("prada")
class PRADA(QueryDetector):
    """Flag clients whose query distances stop looking normally distributed (Juuti et al.).

    Natural queries are spread over the input space, so the distance from each new query to
    its nearest earlier query of the same predicted class is roughly normally distributed.
    Extraction attacks that synthesise queries (Jacobian-based augmentation, small
    perturbations of a few seeds) produce many tiny, regular distances and some large jumps,
    which no normal distribution fits.

    For each client and each predicted class ``c`` the detector keeps a growing set ``G_c``
    (its first query starts it), the distances ``D_{G_c}`` at which members joined, and a
    threshold ``T_c`` (0 at first). For a new query ``x`` of class ``c`` it computes the L2
    distance ``d`` from ``x`` (flattened) to the nearest member of ``G_c`` and records it; if
    ``d > T_c``, ``x`` joins ``G_c`` and ``T_c = max(T_c, mean(D_{G_c}) - std(D_{G_c}))``.
    After each observed batch, the recorded distances of the classes holding at least 10 of
    them are pooled, values more than 3 standard deviations from their mean are dropped, and
    once at least ``min_queries`` remain the Shapiro-Wilk statistic ``W`` is computed; the
    client is flagged when ``W < threshold``. The verdict reflects the client's current state,
    so a flag can clear again as natural queries accumulate.

    Departures from the paper: the test runs once per :meth:`observe` call rather than after
    every query (send batches of one query to get the paper's behaviour). The per-class minimum
    of 10 distances and the 3-sigma outlier removal follow the authors' reference code. The
    state grows with the number of queries (every distance, and the growing sets); call
    :meth:`reset` to forget a client.

    Threat model: the defender sees every query of a client and the victim's predicted class;
    the attacker does not know ``threshold``. Attackers who spread their queries like natural
    data (Knockoff Nets on natural images) are not detected, as the paper reports.

    Parameters
    ----------
    threshold : float, default=0.9
        Flag when the Shapiro-Wilk ``W`` falls below this value, in (0, 1]. The paper tunes it
        per victim (0.87 to 0.96).
    min_queries : int, default=100
        Number of pooled distances needed before the test runs (the paper uses 100), >= 3.

    References
    ----------
    .. [1] M. Juuti, S. Szyller, S. Marchal and N. Asokan, "PRADA: Protecting Against DNN
       Model Stealing Attacks", IEEE EuroS&P 2019.

    Examples
    --------
    >>> import torch
    >>> detector = PRADA(min_queries=20)
    >>> x, labels = torch.rand(60, 1, 8, 8), torch.randint(0, 2, (60,))
    >>> verdict = detector.observe(inputs=x, client_id="team-a", labels=labels)
    >>> verdict.n_queries
    60
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "threshold": Real(low=0, high=1, closed="right"),
        "min_queries": Integer(low=3),
    }

    def __init__(self, *, threshold: float = 0.9, min_queries: int = 100) -> None:
        self.threshold = threshold
        self.min_queries = min_queries
        validate_params(self)
        self._clients: dict[str, _ClientState] = {}

    def observe(
        self, *, inputs: torch.Tensor, client_id: str, labels: torch.Tensor
    ) -> DetectorVerdict:
        """Add a batch of a client's queries, in order, and return the verdict.

        Parameters
        ----------
        inputs : torch.Tensor, shape (n, ...)
            The queries, in the order they arrived; compared flattened, in float64.
        client_id : str
            Who sent them.
        labels : torch.Tensor of int, shape (n,)
            The victim's predicted class of each query.

        Returns
        -------
        DetectorVerdict
            ``statistic`` is the Shapiro-Wilk ``W`` (``None`` while fewer than ``min_queries``
            distances are pooled).

        Raises
        ------
        DataError
            If ``inputs`` is empty or not finite, ``labels`` is not 1-D integers of the same
            length, or the number of values per query differs from the client's earlier
            queries. Nothing is recorded then.
        """
        client_id = check_client_id(client_id, owner="PRADA")
        queries = as_input_tensor(inputs)
        classes = as_label_tensor(labels)
        check_same_length(
            first="inputs", n_first=queries.shape[0], second="labels", n_second=len(classes)
        )
        flat = queries.detach().cpu().reshape(queries.shape[0], -1).to(torch.float64).numpy()
        state = self._clients.get(client_id)
        if state is not None and state.n_features not in (None, flat.shape[1]):
            raise DataError(
                MSG_FEATURES.format(client=client_id, got=flat.shape[1], expected=state.n_features)
            )
        if state is None:
            state = self._clients.setdefault(client_id, _ClientState())
        state.n_features = flat.shape[1]
        for query, label in zip(flat, classes.tolist(), strict=True):
            class_state = state.classes.get(label)
            if class_state is None:
                state.classes[label] = _ClassState(query)
            else:
                class_state.add(query)
            state.n_queries += 1
        return self._verdict(state)

    def verdict(self, client_id: str) -> DetectorVerdict:
        """The verdict on ``client_id`` from the queries seen so far (none: not flagged)."""
        state = self._clients.get(client_id)
        return self._verdict(state if state is not None else _ClientState())

    def _verdict(self, state: _ClientState) -> DetectorVerdict:
        pooled = [
            distance
            for _, class_state in sorted(state.classes.items())
            if len(class_state.distances) >= MIN_CLASS_DISTANCES
            for distance in class_state.distances
        ]
        distances = np.asarray(pooled, dtype=np.float64)
        if distances.size:
            spread = distances.std()
            distances = distances[np.abs(distances - distances.mean()) <= OUTLIER_STDS * spread]
        threshold = self.threshold
        if distances.size < self.min_queries:
            reason = (
                f"Too few distances to test ({distances.size} of the {self.min_queries} needed)."
            )
            return DetectorVerdict(False, None, state.n_queries, reason)
        if float(np.ptp(distances)) == 0.0:
            # Identical distances: maximally non-natural; W is undefined for constant data.
            w = 0.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "p-value may not be accurate for N > 5000"
                w = float(stats.shapiro(distances).statistic)
        if not math.isfinite(w):
            w = 0.0
        flagged = w < threshold
        relation = "below" if flagged else "at or above"
        reason = (
            f"Shapiro-Wilk W = {w:.4f} over {distances.size} query distances is {relation} the "
            f"threshold {threshold:g}."
        )
        return DetectorVerdict(flagged, w, state.n_queries, reason)

    def state_dict(self, client_id: str) -> dict[str, Any]:
        """The detector's state for ``client_id`` as JSON-serialisable data (lists, floats).

        An unseen client gives the state of a fresh client. Floats round-trip exactly through
        :func:`json.dumps` and :func:`json.loads`.
        """
        state = self._clients.get(client_id, _ClientState())
        return {
            "version": STATE_VERSION,
            "n_queries": state.n_queries,
            "n_features": state.n_features,
            "classes": {
                str(label): {
                    "growing_set": cls.growing_set.tolist(),
                    "growing_distances": list(cls.growing_distances),
                    "threshold": cls.threshold,
                    "distances": list(cls.distances),
                }
                for label, cls in sorted(state.classes.items())
            },
        }

    def load_state_dict(self, client_id: str, state: dict[str, Any]) -> None:
        """Replace the state of ``client_id`` by ``state`` (from :meth:`state_dict`).

        Lists or NumPy arrays are accepted. A malformed state raises
        :class:`~trustlab.core.errors.DataError` and leaves the detector unchanged.
        """
        client_id = check_client_id(client_id, owner="PRADA")
        restored = _parse_state(client_id, state)
        self._clients[client_id] = restored

    def reset(self, client_id: str) -> None:
        """Forget everything about ``client_id``."""
        self._clients.pop(client_id, None)


def _parse_state(client_id: str, state: Any) -> _ClientState:
    def fail(problem: str) -> DataError:
        return DataError(MSG_STATE.format(client=client_id, problem=problem))

    if not isinstance(state, dict):
        raise fail(f"expected a dict, got {type(state).__name__}")
    if state.get("version") != STATE_VERSION:
        raise fail(f"unsupported version {state.get('version')!r}")
    try:
        restored = _ClientState()
        restored.n_queries = int(state["n_queries"])
        n_features = state["n_features"]
        restored.n_features = None if n_features is None else int(n_features)
        for key, entry in dict(state["classes"]).items():
            growing_set = np.asarray(entry["growing_set"], dtype=np.float64)
            if growing_set.ndim != 2 or growing_set.shape[0] == 0:
                raise fail(f"class {key}: growing_set must be a non-empty 2-D array")
            if restored.n_features is not None and growing_set.shape[1] != restored.n_features:
                raise fail(f"class {key}: growing_set rows must have n_features values")
            class_state = _ClassState(growing_set[0])
            class_state.growing_set = growing_set
            class_state.growing_distances = [float(v) for v in entry["growing_distances"]]
            class_state.threshold = float(entry["threshold"])
            class_state.distances = [float(v) for v in entry["distances"]]
            values = [*class_state.growing_distances, *class_state.distances]
            if not all(math.isfinite(v) for v in [*values, class_state.threshold]):
                raise fail(f"class {key}: distances must be finite")
            restored.classes[int(key)] = class_state
    except (KeyError, TypeError, ValueError) as error:
        raise fail(f"{type(error).__name__}: {error}") from None
    if restored.n_queries < 0:
        raise fail("n_queries must be >= 0")
    return restored

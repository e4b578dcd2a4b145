"""Build-time data and models shared by the task kinds that train a model (target, victim,
baseline), and the instructor's own data (an ``.npz`` file) and model (a weights file) that a
spec may name instead (``params.data_file``, ``params.model_file``).

A relative path in a spec is read from the current folder; ``trustlab task build`` runs the
build from the spec file's folder, so a path there is relative to the spec.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trustlab.core.data import load_dataset, load_npz
from trustlab.core.errors import ConfigurationError, TrustlabError
from trustlab.core.progress import ProgressCallback, ProgressEvent
from trustlab.core.training import seed_everything
from trustlab.tasks.base import ProgressFn

if TYPE_CHECKING:
    from torch import nn

MSG_OWN_FILE_MISSING = (
    "field 'params.{field}': no file at {path} (a relative path is read from the spec file's "
    "folder); check the path."
)
MSG_OWN_DATA = "field 'params.data_file': {error}"
MSG_OWN_DATA_SHAPE = (
    "field 'params.data_file': {path} must hold 'x' (n, ...) real inputs and 'y' (n,) integer "
    "labels >= 0 of the same length; got x {x_shape} {x_dtype} and y {y_shape} {y_dtype}."
)
MSG_OWN_MEMBER = (
    "field 'params.data_file': {path} must hold a 'member' array of 0 and 1, one per row of x "
    "(1 where params.model_file was trained on the row), because params.model_file is set; "
    "{problem}."
)
MSG_OWN_MODEL_NEEDS_DATA = (
    "field 'params.model_file' needs params.data_file: an .npz with 'x', 'y' and a 'member' "
    "array of 0 and 1 (1 where the model was trained on the row), so that the task knows "
    "the members."
)
MSG_OWN_MODEL_SUFFIX = (
    "field 'params.model_file': {path} must be {accepted}; got the suffix {suffix!r}."
)
MSG_OWN_MODEL = "field 'params.model_file': {path} cannot be used: {error}"
MSG_OWN_MODEL_ARCHITECTURE = (
    "field 'params.model_file': {path} holds a {name!r} model; the task accepts {accepted}. "
    "List its architecture in params.architectures."
)


@dataclass(frozen=True)
class TaskData:
    """The rows a task is built from: a registered data set's, or an ``.npz`` file's."""

    x: np.ndarray
    y: np.ndarray
    member: np.ndarray | None
    source: str


def own_file(value: str, *, field: str) -> Path:
    """The existing file a spec's ``params.<field>`` names."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigurationError(MSG_OWN_FILE_MISSING.format(field=field, path=path))
    return path


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256 (named in build logs and READMEs)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_task_data(dataset: str, *, data_file: str | None, need_member: bool = False) -> TaskData:
    """The spec's data: the ``.npz`` file ``data_file`` (arrays ``x``, ``y`` and, when
    ``need_member``, ``member``) if given, else the registered data set ``dataset``."""
    if data_file is None and need_member:
        raise ConfigurationError(MSG_OWN_MODEL_NEEDS_DATA)
    if data_file is None:
        x, y = load_arrays(dataset)
        return TaskData(x=x, y=y, member=None, source=f"the data set {dataset!r}")
    path = own_file(data_file, field="data_file")
    try:
        x, y = load_npz(path)
    except TrustlabError as exc:
        raise ConfigurationError(MSG_OWN_DATA.format(error=exc)) from None
    real = np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    labels = np.issubdtype(y.dtype, np.integer) and y.ndim == 1 and (y.size == 0 or y.min() >= 0)
    if x.ndim < 2 or not real or not labels or len(x) != len(y) or len(x) == 0:
        raise ConfigurationError(
            MSG_OWN_DATA_SHAPE.format(
                path=path, x_shape=x.shape, x_dtype=x.dtype, y_shape=y.shape, y_dtype=y.dtype
            )
        )
    member = None
    if need_member:
        try:
            (member, _) = load_npz(path, x_key="member", y_key="member")
        except TrustlabError as exc:
            raise ConfigurationError(
                MSG_OWN_MEMBER.format(path=path, problem=str(exc).rstrip("."))
            ) from None
        if member.shape != (len(x),) or not np.isin(member, (0, 1)).all():
            problem = f"got shape {member.shape} with values {np.unique(member)[:5].tolist()}"
            raise ConfigurationError(MSG_OWN_MEMBER.format(path=path, problem=problem))
        member = member.astype(np.int8)
    source = f"the file {path.name} (sha256 {file_digest(path)})"
    return TaskData(
        x=np.asarray(x, dtype=np.float32), y=y.astype(np.int64), member=member, source=source
    )


def load_own_model(value: str, *, accepted: list[str] | None = None) -> nn.Module:
    """The instructor's model: a safetensors file whose metadata names its architecture (as
    :func:`trustlab.core.weights.save_model` writes it). ``accepted``: the registered
    architectures the task allows (None: any)."""
    from trustlab.core.weights import load_model, read_architecture

    path = own_file(value, field="model_file")
    if path.suffix.lower() != ".safetensors":
        raise ConfigurationError(
            MSG_OWN_MODEL_SUFFIX.format(
                path=path, accepted="a .safetensors file", suffix=path.suffix
            )
        )
    try:
        name, _ = read_architecture(path)
        model = load_model(path)
    except TrustlabError as exc:
        raise ConfigurationError(MSG_OWN_MODEL.format(path=path, error=exc)) from None
    if accepted is not None and name not in accepted:
        raise ConfigurationError(
            MSG_OWN_MODEL_ARCHITECTURE.format(path=path, name=name, accepted=", ".join(accepted))
        )
    return model.eval()


def load_arrays(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """A registered data set's inputs as float32 and its labels as int64."""
    data = load_dataset(dataset)
    return np.asarray(data.x, dtype=np.float32), np.asarray(data.y, dtype=np.int64)


@contextmanager
def seeded_single_thread(seed: int) -> Iterator[None]:
    """Run the block on one torch thread after seeding every generator with ``seed``, so that a
    build gives the same weights on any machine; the thread count is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed_everything(seed)
        yield
    finally:
        torch.set_num_threads(threads)


def epoch_progress(progress: ProgressFn, *, epochs: int) -> ProgressCallback:
    """A ``fit_classifier`` progress callback reporting each epoch's training loss."""

    def callback(event: ProgressEvent) -> None:
        loss = event.metrics.get("loss", float("nan"))
        progress(f"epoch {event.done}/{event.total or epochs}, training loss {loss:.4f}")

    return callback


def stage_progress(progress: ProgressFn, *, what: str) -> ProgressCallback:
    """A progress callback that reports each event as ``"<what> <stage> <done>/<total>"``."""
    return lambda event: progress(f"{what} {event.describe()}")


def architecture_arguments(
    architecture: str, arguments: Mapping[str, Any], *, x: np.ndarray
) -> dict[str, Any]:
    """The spec's constructor arguments, with an ``mlp``'s ``in_features`` filled from ``x``."""
    filled = dict(arguments)
    if architecture == "mlp" and "in_features" not in filled:
        filled["in_features"] = int(np.prod(x.shape[1:]))
    return filled

"""Bring your own data and model: ``params.data_file`` (.npz) and ``params.model_file``
(safetensors with architecture metadata, or ONNX for a membership target)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from onnx import save_model as save_onnx
from specs import digits_spec

from trustlab.core.data import load_npz, save_npz
from trustlab.core.errors import ConfigurationError
from trustlab.core.models import build_model
from trustlab.core.training import fit_classifier
from trustlab.core.weights import load_model, save_model
from trustlab.tasks import build_task, get_kind, parse_spec
from trustlab.tasks.base import TaskPaths

N_ROWS = 300


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """Digit-shaped rows (1x8x8 in [0, 1], 10 classes), without loading the data set."""
    rng = np.random.default_rng(0)
    x = rng.random((N_ROWS, 1, 8, 8), dtype=np.float32)
    return x, np.arange(N_ROWS, dtype=np.int64) % 10


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory, digits: Any) -> dict[str, Path]:
    """An .npz with a member column, and a digits CNN (one epoch on its member rows)."""
    x, y = digits
    folder = tmp_path_factory.mktemp("own")
    member = (np.arange(N_ROWS) % 2).astype(np.int8)
    save_npz(folder / "data.npz", x=x, y=y, member=member)
    torch.manual_seed(0)
    model = build_model("digits-cnn")
    fit_classifier(model, x[member == 1][:64], y[member == 1][:64], epochs=1, batch_size=64)
    save_model(model, folder / "model.safetensors")
    return {"data": folder / "data.npz", "model": folder / "model.safetensors"}


def mia_spec(**params: Any) -> Any:
    base = {
        "architecture": "digits-cnn",
        "n_candidates": 40,
        "n_calibration": 10,
        "epochs": 1,
        "bootstrap_resamples": 0,
    }
    return parse_spec(
        digits_spec(
            task_id="mia-own",
            kind="membership-inference",
            title="Own files",
            max_file_size="200KB",
            params={**base, **params},
        )
    )


def build_kind(spec: Any, root: Path) -> TaskPaths:
    """Run only the kind's build (no sample scoring), as ``build_task`` does first."""
    paths = TaskPaths(root / spec.id)
    messages: list[str] = []
    get_kind(spec.kind).build(spec, paths=paths, progress=messages.append)
    return paths


def test_membership_with_an_npz_data_set(own: dict[str, Path], tmp_path: Path) -> None:
    paths = build_kind(mia_spec(data_file=str(own["data"])), tmp_path)
    x_all, _ = load_npz(own["data"])
    candidates = np.load(paths.public / "candidates.npz")
    assert candidates["x"].shape == (40, *x_all.shape[1:])
    # every candidate is a row of the file
    flat = {row.tobytes() for row in x_all}
    assert all(row.tobytes() in flat for row in candidates["x"])


def test_membership_with_an_own_target_uses_its_members(
    own: dict[str, Path], digits: Any, tmp_path: Path
) -> None:
    spec = mia_spec(data_file=str(own["data"]), model_file=str(own["model"]))
    paths = build_kind(spec, tmp_path)
    x, _ = digits
    member = (np.arange(N_ROWS) % 2).astype(np.int8)
    by_row = {row.tobytes(): int(m) for row, m in zip(x, member, strict=True)}
    candidates = np.load(paths.public / "candidates.npz")
    answers = np.load(paths.hidden / "answers.npz")
    truth = [by_row[row.tobytes()] for row in candidates["x"]]
    assert truth == answers["member"].tolist()
    population = np.load(paths.public / "population.npz")
    assert all(by_row[row.tobytes()] == 0 for row in population["x"])
    published = load_model(paths.public / "target.safetensors")
    original = load_model(own["model"])
    for a, b in zip(published.state_dict().values(), original.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert "trained by the task's authors" in (paths.public / "README.md").read_text()


def _zeros_onnx(path: Path) -> Path:
    weight = helper.make_tensor("w", TensorProto.FLOAT, [64, 10], [0.0] * 640)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["f"], axis=1),
            helper.make_node("MatMul", ["f", "w"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_onnx(model, str(path))
    return path


def test_membership_with_an_onnx_target(own: dict[str, Path], tmp_path: Path) -> None:
    onnx_file = _zeros_onnx(tmp_path / "target.onnx")
    spec = mia_spec(data_file=str(own["data"]), model_file=str(onnx_file))
    paths = build_kind(spec, tmp_path / "tasks")
    assert (paths.public / "target.onnx").read_bytes() == onnx_file.read_bytes()
    assert not (paths.public / "target.safetensors").exists()
    assert "`target.onnx`" in (paths.public / "README.md").read_text()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"data_file": "nowhere.npz"}, r"params.data_file.*no file at nowhere.npz"),
        ({"model_file": "{model}"}, r"needs params.data_file"),
        ({"data_file": "{data}", "model_file": "{data}"}, r"must be a .safetensors or .onnx"),
        ({"data_file": "{nomember}", "model_file": "{model}"}, r"'member' array"),
        ({"data_file": "{bad}"}, r"must hold 'x' \(n, ...\) real inputs"),
    ],
)
def test_bad_own_files_say_what_to_fix(
    own: dict[str, Path], tmp_path: Path, params: dict[str, str], match: str
) -> None:
    x, y = load_npz(own["data"])
    save_npz(tmp_path / "nomember.npz", x=x, y=y)
    save_npz(tmp_path / "bad.npz", x=x, y=y.astype(np.float32))
    files = {**{k: str(v) for k, v in own.items()}, "nomember": str(tmp_path / "nomember.npz")}
    files["bad"] = str(tmp_path / "bad.npz")
    filled = {key: value.format(**files) for key, value in params.items()}
    with pytest.raises(ConfigurationError, match=match):
        build_kind(mia_spec(**filled), tmp_path / "tasks")


def test_robustness_with_an_own_baseline(own: dict[str, Path], tmp_path: Path) -> None:
    spec = parse_spec(
        digits_spec(
            task_id="robust-own",
            kind="robustness",
            title="Own baseline",
            max_file_size="2MB",
            params={"data_file": str(own["data"]), "model_file": str(own["model"]), "n_eval": 50},
        )
    )
    paths = build_kind(spec, tmp_path)
    sample = load_model(paths.public / "sample_submission.safetensors")
    original = load_model(own["model"])
    for a, b in zip(sample.state_dict().values(), original.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert len(np.load(paths.public / "train.npz")["x"]) == N_ROWS - 50


def test_robustness_refuses_a_baseline_of_another_architecture(
    own: dict[str, Path], tmp_path: Path
) -> None:
    spec = parse_spec(
        digits_spec(
            task_id="robust-own",
            kind="robustness",
            title="Own baseline",
            max_file_size="2MB",
            params={
                "model_file": str(own["model"]),
                "architectures": [{"name": "mlp", "arguments": {"in_features": 64}}],
            },
        )
    )
    with pytest.raises(
        ConfigurationError, match="holds a 'digits-cnn' model; the task accepts mlp"
    ):
        build_kind(spec, tmp_path)


def test_extraction_with_an_own_victim(own: dict[str, Path], tmp_path: Path) -> None:
    spec = parse_spec(
        digits_spec(
            task_id="steal-own",
            kind="model-extraction",
            title="Own victim",
            max_file_size="2MB",
            params={
                "data_file": str(own["data"]),
                "model_file": str(own["model"]),
                "n_train": 10,
                "n_eval": 50,
                "architectures": [{"name": "digits-cnn"}],
            },
        )
    )
    paths = build_kind(spec, tmp_path)
    victim = load_model(paths.hidden / "victim.safetensors")
    original = load_model(own["model"])
    for a, b in zip(victim.state_dict().values(), original.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert len(np.load(paths.public / "pool.npz")["x"]) == N_ROWS - 60


@pytest.mark.slow
def test_membership_defence_with_an_npz_data_set(own: dict[str, Path], tmp_path: Path) -> None:
    spec = parse_spec(
        digits_spec(
            task_id="defence-own",
            kind="membership-defence",
            title="Own data",
            max_file_size="2MB",
            params={
                "data_file": str(own["data"]),
                "n_train": 100,
                "n_test": 100,
                "n_population_min": 50,
                "reference": {"n_models": 2, "epochs": 1},
                "bootstrap_resamples": 0,
            },
        )
    )
    built = build_task(spec, tasks_dir=tmp_path)
    assert len(np.load(built.paths.public / "train.npz")["x"]) == 100


def test_extraction_with_an_onnx_victim_answers_queries(
    own: dict[str, Path], tmp_path: Path
) -> None:
    from trustlab.tasks.extraction.runtime import QueryVictim

    onnx_file = _zeros_onnx(tmp_path / "victim.onnx")
    spec = parse_spec(
        digits_spec(
            task_id="steal-onnx",
            kind="model-extraction",
            title="ONNX victim",
            max_file_size="2MB",
            params={
                "data_file": str(own["data"]),
                "model_file": str(onnx_file),
                "n_train": 10,
                "n_eval": 50,
                "architectures": [{"name": "digits-cnn"}],
            },
        )
    )
    paths = build_kind(spec, tmp_path / "tasks")
    assert (paths.hidden / "victim.onnx").read_bytes() == onnx_file.read_bytes()
    assert not (paths.hidden / "victim.safetensors").exists()
    victim = QueryVictim(spec=spec, paths=paths, params=get_kind(spec.kind)._params(spec))
    answer = victim.answer(np.zeros((3, 1, 8, 8), np.float32), client_id="team")
    assert answer.outputs.shape == (3, 10)
    np.testing.assert_allclose(answer.outputs.sum(axis=1), 1.0, atol=0.02)  # rounded
    assert "provided by the task's authors" in (paths.public / "README.md").read_text()

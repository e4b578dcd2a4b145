"""The model-extraction kind: spec checks, batch checks, the victim's answers, ONNX and weights
submissions scored alike, and hostile files refused without running anything."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from digests import tree_digest
from hostile import write_hostile_state_dict
from onnx import TensorProto, helper
from specs import digits_spec
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError, SubmissionError
from trustlab.core.weights import load_model, save_model
from trustlab.extraction.defences import AdditiveNoise, Rounding
from trustlab.extraction.metrics import embedding_l2, label_agreement
from trustlab.tasks import build_task, parse_spec
from trustlab.tasks.base import MSG_BATCH_EMPTY, QueryRules, RateLimit, SupportsQueries, Victim
from trustlab.tasks.build import BuiltTask
from trustlab.tasks.extraction import (
    QueryVictim,
    classifier_metrics,
    embedding_metrics,
    keep_top_k,
)

SPEC: dict[str, Any] = digits_spec(
    task_id="steal-small",
    kind="model-extraction",
    title="Small extraction task",
    max_file_size="2MB",
    params={
        "n_train": 300,
        "n_eval": 100,
        "n_pool": 200,
        "epochs": 3,
        "query_budget": 500,
        "max_batch": 64,
        "input_range": [0.0, 1.0],
        "architectures": [
            {"name": "digits-cnn"},
            {
                "name": "mlp",
                "arguments": {"in_features": 64, "num_classes": 10, "hidden": [32]},
            },
        ],
        "bootstrap_resamples": 20,
    },
)


def spec_with(**params: Any) -> Any:
    data = copy.deepcopy(SPEC)
    data["params"].update(params)
    return parse_spec(data)


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> BuiltTask:
    return build_task(parse_spec(SPEC), tasks_dir=tmp_path_factory.mktemp("extraction"))


def pool(task: BuiltTask, n: int = 16) -> np.ndarray:
    with np.load(task.paths.public / "pool.npz") as data:
        return np.asarray(data["x"][:n])


def score(task: BuiltTask, file: Path, model_name: str, **params: Any) -> Any:
    spec = task.spec if not params else spec_with(**params)
    return task.kind.score(spec, paths=task.paths, file=file, fields={"model_name": model_name})


def validate(task: BuiltTask, file: Path, model_name: str) -> Any:
    return task.kind.validate(
        task.spec, paths=task.paths, file=file, fields={"model_name": model_name}
    )


def export_onnx(model: nn.Module, path: Path, *, batch: int = 2, dynamic: bool = True) -> Path:
    """Export with the TorchScript exporter (fast, and what most teams still use)."""
    example = torch.zeros(batch, 1, 8, 8)
    axes = {"x": {0: "n"}, "y": {0: "n"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes=axes,
        )
    return path


def perturbed_victim(task: BuiltTask, *, scale: float, seed: int = 1) -> nn.Module:
    """The victim with noise on its weights: a copy that agrees on only part of the inputs."""
    model = load_model(task.paths.hidden / "victim.safetensors")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(scale * torch.randn(param.shape, generator=generator))
    return model.eval()


# -- spec -------------------------------------------------------------------------------------


def test_spec_defaults_and_metrics() -> None:
    spec = parse_spec(SPEC)
    assert spec.metric == "agreement"
    assert spec.params["output"] == "probabilities"
    kind = spec_with().kind
    assert kind == "model-extraction"
    from trustlab.tasks import get_kind

    extraction = get_kind("model-extraction")
    assert extraction.metric_names(spec) == ["agreement", "accuracy"]
    assert extraction.metric_names(spec_with(output="embeddings")) == ["l2_fidelity", "l2"]
    (field,) = extraction.form_fields_for(spec)
    assert field.name == "model_name" and field.choices == ("digits-cnn", "mlp", "onnx")
    no_onnx = extraction.form_fields_for(spec_with(accept_onnx=False))
    assert no_onnx[0].choices == ("digits-cnn", "mlp")


@pytest.mark.parametrize(
    ("params", "top", "message"),
    [
        ({"defence": {"name": "rounding", "decimals": -1}}, {}, "params.defence.rounding.decimals"),
        ({"defence": {"name": "blur"}}, {}, "params.defence"),
        (
            {"defence": {"name": "embedding-transform", "secret": "s"}},
            {},
            "does not apply to 'probabilities'",
        ),
        (
            {"output": "embeddings", "defence": {"name": "reverse-sigmoid"}},
            {},
            "does not apply to 'embeddings'",
        ),
        (
            {"output": "embeddings", "defence": {"name": "top-k", "k": 2}},
            {},
            "does not apply to 'embeddings'",
        ),
        ({"output": "embeddings", "detector": {"name": "prada"}}, {}, "needs a classifier"),
        ({"architectures": [{"name": "onnx", "architecture": "mlp"}]}, {}, "reserved"),
        ({"architectures": []}, {}, "params.architectures"),
        ({"victim": "resnet99"}, {}, "unknown architecture 'resnet99'"),
        ({"input_range": [1.0, 0.0]}, {}, "finite low < high"),
        ({"rate_limit": {"window": "soon"}}, {}, "params.rate_limit.window"),
        ({"output": "embeddings"}, {"metric": "l2"}, "cannot rank"),
        ({"detector": {"name": "prada", "min_queries": 1}}, {}, "params.detector.min_queries"),
    ],
)
def test_bad_specs_name_the_field(
    params: dict[str, Any], top: dict[str, Any], message: str
) -> None:
    data = copy.deepcopy(SPEC)
    data["params"].update(params)
    data.update(top)
    with pytest.raises(ConfigurationError) as info:
        parse_spec(data)
    assert message in str(info.value)


def test_a_defence_and_a_detector_are_accepted() -> None:
    spec = spec_with(
        defence={"name": "noise", "scale": 0.01, "seed": 3},
        detector={"name": "prada", "threshold": 0.9, "action": "refuse"},
        rate_limit={"requests": 5, "queries": 100, "window": "2m"},
    )
    assert spec.params["defence"] == {"name": "noise", "scale": 0.01, "seed": 3}
    assert spec.params["rate_limit"]["window"] == 120.0


# -- build ------------------------------------------------------------------------------------


def test_build_is_reproducible_and_keeps_the_victim_hidden(task: BuiltTask, tmp_path: Path) -> None:
    again = build_task(task.spec, tasks_dir=tmp_path)
    assert tree_digest(again.paths.root) == tree_digest(task.paths.root)
    public = {p.name for p in task.paths.public.iterdir()}
    assert public == {"README.md", "pool.npz", "query.json", "sample_submission.safetensors"}
    assert (task.paths.hidden / "victim.safetensors").is_file()
    with np.load(task.paths.hidden / "answers.npz") as answers:
        hidden_x = answers["x"]
        assert len(hidden_x) == 100 and answers["public"].sum() == 30
    pooled = pool(task, 200)
    assert len(pooled) == 200
    # No hidden evaluation input is in the public pool.
    hidden_rows = {row.tobytes() for row in hidden_x}
    assert not any(row.tobytes() in hidden_rows for row in pooled)


# -- batches ----------------------------------------------------------------------------------

RULES = QueryRules(
    input_shape=(1, 2, 2),
    input_range=(0.0, 1.0),
    output="probabilities",
    output_dim=3,
    query_budget=100,
    max_batch=4,
    rate_limit=RateLimit(),
)


def test_a_good_batch_becomes_float32() -> None:
    batch = RULES.check_batch(np.zeros((3, 1, 2, 2), dtype=np.float64))
    assert batch.dtype == np.float32 and batch.shape == (3, 1, 2, 2)
    assert RULES.check_batch(np.ones((1, 1, 2, 2), dtype=np.int64)).dtype == np.float32


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((2, 4)), "shape (2, 4)"),
        (np.zeros((2, 1, 2, 2), dtype=bool), "booleans"),
        (np.zeros((2, 1, 2, 2), dtype=np.complex64), "dtype complex64"),
        (np.array([["a"]]), "dtype <U1"),
        (np.zeros((0, 1, 2, 2)), MSG_BATCH_EMPTY),
        (np.zeros((5, 1, 2, 2)), "at most 4 rows"),
        (
            np.concatenate([np.zeros((2, 1, 2, 2)), np.full((1, 1, 2, 2), np.nan)]),
            "Row 2 holds NaN",
        ),
        (np.full((1, 1, 2, 2), -np.inf), "Row 0 holds an infinity"),
        (np.full((1, 1, 2, 2), 1e300), "Row 0 holds an infinity"),
        (
            np.concatenate([np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), 1.5)]),
            "Row 1 holds the value 1.5",
        ),
    ],
)
def test_bad_batches_name_the_problem(batch: np.ndarray, message: str) -> None:
    with pytest.raises(DataError) as info:
        RULES.check_batch(batch)
    assert message in str(info.value)


def test_a_row_limit_per_window_caps_the_batch() -> None:
    rules = QueryRules(**{**RULES.__dict__, "rate_limit": RateLimit(queries=2)})
    assert rules.max_rows == 2
    with pytest.raises(DataError, match="at most 2 rows"):
        rules.check_batch(np.zeros((3, 1, 2, 2)))


# -- the victim's answers ---------------------------------------------------------------------


def victim_with(task: BuiltTask, **params: Any) -> QueryVictim:
    spec = spec_with(**params)
    kind: Any = task.kind
    return kind.open_victim(spec, paths=task.paths)


def test_every_output_mode_answers_from_the_victim(task: BuiltTask) -> None:
    x = pool(task)
    model = load_model(task.paths.hidden / "victim.safetensors")
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    probs = torch.softmax(logits, dim=1).numpy()

    answer = victim_with(task).answer(x, client_id="team-1")
    np.testing.assert_allclose(answer.outputs, probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(answer.labels, probs.argmax(axis=1))

    labels = victim_with(task, output="labels").answer(x, client_id="team-1").outputs
    assert labels.dtype == np.int64 and labels.shape == (16,)
    np.testing.assert_array_equal(labels, probs.argmax(axis=1))

    top2 = victim_with(task, output="top-k", top_k=2).answer(x, client_id="team-1").outputs
    assert ((top2 > 0).sum(axis=1) <= 2).all()
    for row, full in zip(top2, probs, strict=True):
        keep = np.argsort(full)[-2:]
        np.testing.assert_allclose(row[keep], full[keep], rtol=1e-5)

    embeddings = victim_with(task, output="embeddings").answer(x, client_id="team-1")
    np.testing.assert_allclose(embeddings.outputs, logits.numpy(), rtol=1e-5, atol=1e-5)
    assert embeddings.labels is None


def test_defences_come_from_the_library(task: BuiltTask) -> None:
    x = pool(task)
    plain = victim_with(task).answer(x, client_id="team-1").outputs
    rounded = victim_with(task, defence={"name": "rounding", "decimals": 1})
    expected = Rounding(decimals=1).apply(
        outputs=torch.from_numpy(plain), inputs=torch.from_numpy(x), client_id="team-1"
    )
    np.testing.assert_allclose(
        rounded.answer(x, client_id="team-1").outputs, expected.numpy(), atol=1e-6
    )
    noisy = victim_with(task, defence={"name": "noise", "scale": 0.05, "seed": 7})
    first = noisy.answer(x, client_id="team-1").outputs
    np.testing.assert_array_equal(first, noisy.answer(x, client_id="team-1").outputs)
    assert not np.allclose(first, noisy.answer(x, client_id="team-2").outputs)
    expected = AdditiveNoise(scale=0.05, seed=7).apply(
        outputs=torch.from_numpy(plain), inputs=torch.from_numpy(x), client_id="team-1"
    )
    np.testing.assert_allclose(first, expected.numpy(), atol=1e-6)


def test_embedding_defences_answer_raw_outputs(task: BuiltTask) -> None:
    x = pool(task)
    raw = victim_with(task, output="embeddings").answer(x, client_id="team-1").outputs
    for defence in (
        {"name": "noise", "scale": 0.5, "seed": 1},
        {"name": "rounding", "decimals": 0},
        {"name": "embedding-transform", "secret": "s3cret"},
    ):
        victim = victim_with(task, output="embeddings", defence=defence)
        answered = victim.answer(x, client_id="team-1").outputs
        assert answered.shape == raw.shape and not np.allclose(answered, raw)
    rounded = victim_with(task, output="embeddings", defence={"name": "rounding", "decimals": 0})
    np.testing.assert_allclose(rounded.answer(x, client_id="t").outputs, np.round(raw), atol=1e-5)


def test_keep_top_k_by_hand() -> None:
    probs = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
    kept = keep_top_k(probs, k=2)
    assert torch.equal(kept, torch.tensor([[0.0, 0.5, 0.4], [0.7, 0.2, 0.0]]))
    assert torch.equal(keep_top_k(probs, k=5), probs)


# -- metrics ----------------------------------------------------------------------------------


def test_classifier_metrics_by_hand() -> None:
    result = classifier_metrics(
        stolen_labels=np.array([0, 1, 2, 2]),
        victim_labels=np.array([0, 1, 1, 2]),
        true_labels=np.array([0, 0, 1, 2]),
        resamples=50,
        seed=0,
    )
    assert result["agreement"] == 0.75 and result["accuracy"] == 0.5
    low, high = result["agreement_ci95"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0


def test_embedding_metrics_by_hand() -> None:
    victim = np.array([[3.0, 4.0], [0.0, 0.0]])
    stolen = np.array([[3.0, 4.0], [0.0, 2.0]])
    result = embedding_metrics(stolen=stolen, victim=victim, scale=2.0, resamples=0, seed=0)
    assert result["l2"] == 1.0  # distances 0 and 2
    assert result["l2_fidelity"] == pytest.approx(1 / (1 + 1.0 / 2.0))


def test_metrics_are_the_extraction_pillars() -> None:
    rng = np.random.default_rng(0)
    stolen, victim = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    truth = rng.integers(0, 4, size=30)
    labels = classifier_metrics(
        stolen_labels=stolen.argmax(axis=1),
        victim_labels=victim.argmax(axis=1),
        true_labels=truth,
        resamples=0,
        seed=0,
    )
    assert labels["agreement"] == label_agreement(y_true=victim, y_pred=stolen)
    assert labels["accuracy"] == label_agreement(y_true=truth, y_pred=stolen)
    embeddings = embedding_metrics(stolen=stolen, victim=victim, scale=1.5, resamples=20, seed=0)
    l2 = embedding_l2(reference=victim, candidate=stolen)
    assert embeddings["l2"] == l2
    assert embeddings["l2_fidelity"] == 1.0 / (1.0 + l2 / 1.5)
    low, high = embeddings["l2_fidelity_ci95"]
    assert low <= embeddings["l2_fidelity"] <= high


def test_the_kind_fulfils_the_query_contract(task: BuiltTask) -> None:
    kind = task.kind
    assert isinstance(kind, SupportsQueries)
    victim: Victim = kind.open_victim(task.spec, paths=task.paths)
    assert isinstance(victim.rules, QueryRules)
    assert victim.detector_action is None and victim.new_detector() is None
    answer = victim.answer(victim.rules.check_batch(pool(task)), client_id="team-1")
    assert answer.outputs.shape == (16, victim.rules.output_dim)


# -- scoring weights and ONNX -----------------------------------------------------------------


def test_the_victim_itself_scores_one_and_the_sample_scores_low(task: BuiltTask) -> None:
    perfect = score(task, task.paths.hidden / "victim.safetensors", "digits-cnn")
    assert perfect.public_score == 1.0 and perfect.private_score == 1.0
    sample = score(task, task.paths.public / "sample_submission.safetensors", "digits-cnn")
    assert sample.private_score < 0.5
    assert set(sample.public_metrics) >= {"agreement", "accuracy", "agreement_ci95"}


def test_onnx_and_weights_of_the_same_model_score_the_same(task: BuiltTask, tmp_path: Path) -> None:
    model = perturbed_victim(task, scale=0.05)
    save_model(model, tmp_path / "stolen.safetensors")
    by_weights = score(task, tmp_path / "stolen.safetensors", "digits-cnn")
    assert 0.2 < by_weights.private_score < 1.0  # a partial copy, so the comparison means something
    dynamic = export_onnx(model, tmp_path / "stolen.onnx")
    fixed = export_onnx(model, tmp_path / "fixed.onnx", batch=7, dynamic=False)
    for file in (dynamic, fixed):
        assert validate(task, file, "onnx") == {"model_name": "onnx"}
        by_onnx = score(task, file, "onnx")
        assert by_onnx.public_score == by_weights.public_score
        assert by_onnx.private_score == by_weights.private_score
        assert by_onnx.private_metrics == by_weights.private_metrics


def test_an_mlp_sees_flattened_inputs_and_scores_like_its_onnx(
    task: BuiltTask, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    from trustlab.core.models import build_model

    mlp = build_model("mlp", arguments={"in_features": 64, "num_classes": 10, "hidden": [32]})
    torch.save(mlp.state_dict(), tmp_path / "mlp.pt")
    by_weights = score(task, tmp_path / "mlp.pt", "mlp")
    export_onnx(nn.Sequential(nn.Flatten(), mlp), tmp_path / "mlp.onnx")
    by_onnx = score(task, tmp_path / "mlp.onnx", "onnx")
    assert by_onnx.private_metrics == by_weights.private_metrics


def test_embedding_tasks_score_l2_to_the_victim(task: BuiltTask, tmp_path: Path) -> None:
    victim = task.paths.hidden / "victim.safetensors"
    exact = score(task, victim, "digits-cnn", output="embeddings")
    # Equal up to float32 rounding (thread counts change the order of sums).
    assert exact.private_metrics["l2"] < 1e-4 and exact.private_score == pytest.approx(1.0)
    model = perturbed_victim(task, scale=0.02)
    save_model(model, tmp_path / "enc.safetensors")
    result = score(task, tmp_path / "enc.safetensors", "digits-cnn", output="embeddings")
    with np.load(task.paths.hidden / "answers.npz") as answers:
        x, public = answers["x"], answers["public"]
        reference, scale = answers["victim_outputs"], float(answers["scale"])
    with torch.no_grad():
        mine = model(torch.from_numpy(x)).double().numpy()
    distances = np.linalg.norm(mine - reference, axis=1)
    assert result.private_metrics["l2"] == pytest.approx(distances[~public].mean(), rel=1e-5)
    assert result.private_score == pytest.approx(1 / (1 + distances[~public].mean() / scale))
    export_onnx(model, tmp_path / "enc.onnx")
    by_onnx = score(task, tmp_path / "enc.onnx", "onnx", output="embeddings")
    assert by_onnx.private_score == pytest.approx(result.private_score, rel=1e-5)


# -- hostile and broken files -----------------------------------------------------------------


def test_a_hostile_pickle_is_refused_without_running(task: BuiltTask, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    model = load_model(task.paths.hidden / "victim.safetensors")
    path = write_hostile_state_dict(tmp_path / "evil.pt", model=model, marker=marker)
    for check in (validate, score):
        with pytest.raises(SubmissionError, match="Refused to load"):
            check(task, path, "digits-cnn")
    assert not marker.exists()


def _graph_model(
    *,
    nodes: list[Any],
    inputs: list[Any],
    outputs: list[Any],
    initializers: list[Any] = (),  # type: ignore[assignment]
    opsets: list[Any] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _linear_onnx(
    *, in_shape: list[Any], out_dim: int = 10, custom: bool = False
) -> onnx.ModelProto:
    """Flatten then MatMul with zeros: (n, *in_shape) -> (n, out_dim)."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [64, out_dim], [0.0] * (64 * out_dim))
    flatten = helper.make_node("Flatten", ["x"], ["f"], axis=1)
    matmul = helper.make_node("MatMul", ["f", "w"], ["y"], domain="com.evil" if custom else "")
    opsets = [helper.make_opsetid("", 17)]
    if custom:
        opsets.append(helper.make_opsetid("com.evil", 1))
    return _graph_model(
        nodes=[flatten, matmul],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *in_shape])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", out_dim])],
        initializers=[weight],
        opsets=opsets,
    )


def test_a_hand_made_onnx_graph_is_accepted(task: BuiltTask, tmp_path: Path) -> None:
    path = tmp_path / "zeros.onnx"
    onnx.save_model(_linear_onnx(in_shape=[1, 8, 8]), str(path))
    assert validate(task, path, "onnx") == {"model_name": "onnx"}


def test_bad_onnx_files_are_refused(task: BuiltTask, tmp_path: Path) -> None:
    external = _linear_onnx(in_shape=[1, 8, 8])
    weight = external.graph.initializer[0]
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    two_inputs = _linear_onnx(in_shape=[1, 8, 8])
    two_inputs.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1]))
    doubles = _linear_onnx(in_shape=[1, 8, 8])
    doubles.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    cases = {
        "external.onnx": (external, "external data file"),
        "custom.onnx": (_linear_onnx(in_shape=[1, 8, 8], custom=True), "'com.evil'"),
        "shape.onnx": (_linear_onnx(in_shape=[64]), "has shape ('n', 64)"),
        "width.onnx": (_linear_onnx(in_shape=[1, 8, 8], out_dim=3), "shape ('n', 3)"),
        "inputs.onnx": (two_inputs, "2 graph inputs"),
        "doubles.onnx": (doubles, "not a float32 tensor"),
    }
    for name, (model, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(model.SerializeToString())
        with pytest.raises(SubmissionError) as info:
            validate(task, path, "onnx")
        assert message in str(info.value), name
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\xfe not a protobuf at all" * 10)
    with pytest.raises(SubmissionError, match="not a readable ONNX model"):
        validate(task, garbage, "onnx")
    weights_as_onnx = task.paths.public / "sample_submission.safetensors"
    with pytest.raises(SubmissionError):
        validate(task, weights_as_onnx, "onnx")
    export_onnx(load_model(task.paths.hidden / "victim.safetensors"), tmp_path / "v.onnx")
    with pytest.raises(SubmissionError, match="does not accept ONNX"):
        score(task, tmp_path / "v.onnx", "onnx", accept_onnx=False)


def test_weights_of_the_wrong_shape_or_name_are_refused(task: BuiltTask, tmp_path: Path) -> None:
    from trustlab.core.models import build_model

    wide = build_model("mlp", arguments={"in_features": 64, "num_classes": 10, "hidden": [16]})
    torch.save(wide.state_dict(), tmp_path / "wide.pt")
    with pytest.raises(SubmissionError, match="do not fit architecture 'mlp'"):
        validate(task, tmp_path / "wide.pt", "mlp")
    with pytest.raises(SubmissionError, match="not accepted by this task"):
        validate(task, tmp_path / "wide.pt", "resnet18")

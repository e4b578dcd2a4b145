"""The membership-inference kind: reading score files, and the artefacts of a built task."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from digests import tree_digest
from specs import SMALL_SPEC

import trustlab
from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.core.training import accuracy
from trustlab.tasks import build_task, get_kind, open_task, parse_spec
from trustlab.tasks._csv import (
    MSG_BAD_ID,
    MSG_BAD_SCORE,
    MSG_DUPLICATE,
    MSG_EMPTY,
    MSG_FIELDS,
    MSG_MISSING,
    MSG_NO_HEADER,
    MSG_NONFINITE,
    MSG_UNKNOWN,
)
from trustlab.tasks.base import TaskPaths
from trustlab.tasks.membership import read_scores

#: What the membership task's messages say of its ids.
CANDIDATES = {
    "noun": "candidate id",
    "artifact": "candidates.npz",
    "header": "id,score",
    "expected": 2,
}

IDS = np.arange(10, dtype=np.int64)


def csv_text(rows: list[str], *, header: str = "id,score", newline: str = "\n") -> str:
    return newline.join([header, *rows]) + newline


def good_rows(ids: np.ndarray = IDS) -> list[str]:
    return [f"{i},{i / 10:.3f}" for i in ids.tolist()]


def refused(text: str, ids: np.ndarray = IDS) -> str:
    with pytest.raises(SubmissionError) as info:
        read_scores(text, candidate_ids=ids)
    return str(info.value)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fast_spec(**params: Any) -> Any:
    data = copy.deepcopy(SMALL_SPEC)
    data["params"].update({"epochs": 2, **params})
    return parse_spec(data)


# -- read_scores ----------------------------------------------------------------------------


def test_read_scores_accepts_a_good_file() -> None:
    scores = read_scores(csv_text(good_rows()), candidate_ids=IDS)
    assert scores == {i: pytest.approx(i / 10) for i in range(10)}


def test_read_scores_order_does_not_matter_and_scores_may_be_any_finite_number() -> None:
    rows = [f"{i},{v}" for i, v in zip([3, 1, 0, 2], ["-1e300", "0", "1e-9", "+7"], strict=True)]
    scores = read_scores(csv_text(rows), candidate_ids=np.array([0, 1, 2, 3]))
    assert scores == {0: 1e-9, 1: 0.0, 2: 7.0, 3: -1e300}


@pytest.mark.parametrize(
    "text",
    [
        csv_text(good_rows(), newline="\r\n"),
        "\ufeff" + csv_text(good_rows()),
        "\ufeff" + csv_text(good_rows(), newline="\r\n"),
        csv_text(good_rows()) + "\n\n\n",
        csv_text(good_rows(), newline="\r\n") + "\r\n\r\n",
        csv_text(good_rows(), newline="\r"),
        csv_text(good_rows(), header=" ID , Score "),
        csv_text(good_rows(), header="Id,SCORE"),
        csv_text([f" {i} ,\t{i / 10} " for i in IDS.tolist()]),
        csv_text(good_rows()).rstrip("\n"),
    ],
    ids=[
        "crlf",
        "bom",
        "bom-crlf",
        "blank-trailing-lines",
        "crlf-blank-trailing-lines",
        "lone-cr",
        "header-whitespace",
        "header-case",
        "cell-whitespace",
        "no-final-newline",
    ],
)
def test_read_scores_tolerates_harmless_formatting(text: str) -> None:
    assert read_scores(text, candidate_ids=IDS) == read_scores(
        csv_text(good_rows()), candidate_ids=IDS
    )


def test_bom_through_the_kind_validate(small_task_dir: Path, tmp_path: Path) -> None:
    task = open_task(small_task_dir)
    ids = np.load(small_task_dir / "public" / "candidates.npz")["ids"]
    file = tmp_path / "bom.csv"
    file.write_bytes(b"\xef\xbb\xbf" + csv_text(good_rows(ids), newline="\r\n").encode())
    summary = task.kind.validate(task.spec, paths=task.paths, file=file, fields={})
    assert summary == {"rows": len(ids)}


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "\r\n", "\ufeff"])
def test_empty_file(text: str) -> None:
    assert refused(text) == MSG_EMPTY.format(**CANDIDATES, n=10)


def test_missing_header_on_a_data_row_hints_at_it() -> None:
    message = refused("\n".join(good_rows()) + "\n")
    assert message == MSG_NO_HEADER.format(
        **CANDIDATES, found="0,0.000", hint=", which looks like a data row"
    )
    assert "looks like a data row" in message


def test_negative_id_first_line_also_looks_like_a_data_row() -> None:
    assert "looks like a data row" in refused("-1,0.5\n")


@pytest.mark.parametrize("header", ["identifier,score", "id;score", "id,score,extra", "id"])
def test_wrong_header(header: str) -> None:
    message = refused(csv_text(good_rows(), header=header))
    assert message == MSG_NO_HEADER.format(**CANDIDATES, found=header, hint="")
    assert "looks like a data row" not in message


def test_long_header_is_cut_in_the_message() -> None:
    message = refused(csv_text(good_rows(), header="x" * 500))
    assert message == MSG_NO_HEADER.format(**CANDIDATES, found="x" * 80, hint="")


@pytest.mark.parametrize(("row", "count"), [("3", 1), ("3,0.5,extra", 3), ("3,0.5,", 3)])
def test_wrong_number_of_fields(row: str, count: int) -> None:
    rows = good_rows()
    rows[3] = row
    assert refused(csv_text(rows)) == MSG_FIELDS.format(**CANDIDATES, line=5, count=count)


@pytest.mark.parametrize("value", ["abc", "1.5", "", "0x3", "3e0"])
def test_id_that_is_not_an_integer(value: str) -> None:
    rows = good_rows()
    rows[0] = f"{value},0.5"
    assert refused(csv_text(rows)) == MSG_BAD_ID.format(**CANDIDATES, line=2, value=value)


def test_bad_id_value_is_cut_in_the_message() -> None:
    rows = good_rows()
    rows[0] = "x" * 100 + ",0.5"
    assert refused(csv_text(rows)) == MSG_BAD_ID.format(**CANDIDATES, line=2, value="x" * 40)


@pytest.mark.parametrize("value", ["high", "", "0.5.1", "1,5"])
def test_score_that_is_not_a_number(value: str) -> None:
    rows = good_rows()
    rows[1] = f"1,{value}" if value != "1,5" else '1,"1,5"'
    assert refused(csv_text(rows)) == MSG_BAD_SCORE.format(**CANDIDATES, line=3, value=value, id=1)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_score_that_is_not_finite(value: str) -> None:
    rows = good_rows()
    rows[2] = f"2,{value}"
    assert refused(csv_text(rows)) == MSG_NONFINITE.format(**CANDIDATES, line=4, id=2, value=value)


def test_duplicate_id_names_both_lines() -> None:
    rows = good_rows()
    rows.insert(7, "4,0.9")
    assert refused(csv_text(rows)) == MSG_DUPLICATE.format(**CANDIDATES, line=9, id=4, first=6)


def test_unknown_id() -> None:
    rows = [*good_rows(), "10,0.5"]
    assert refused(csv_text(rows)) == MSG_UNKNOWN.format(**CANDIDATES, line=12, id=10)


def test_missing_ids_are_counted_with_examples() -> None:
    ids = np.arange(100, dtype=np.int64)
    rows = good_rows(ids[::2])
    message = refused(csv_text(rows), ids)
    assert message == MSG_MISSING.format(**CANDIDATES, count=50, examples="1, 3, 5, 7, 9", n=100)


def test_only_a_header_misses_every_id() -> None:
    assert refused("id,score\n") == MSG_MISSING.format(
        **CANDIDATES, count=10, examples="0, 1, 2, 3, 4", n=10
    )


def test_line_numbers_count_blank_lines() -> None:
    text = "id,score\n0,0.1\n\n1,oops\n"
    assert refused(text) == MSG_BAD_SCORE.format(**CANDIDATES, line=4, value="oops", id=1)


def test_malformed_csv_is_a_submission_error() -> None:
    # A field beyond the csv module's size limit must not escape as csv.Error.
    rows = good_rows()
    rows[0] = "0," + "9" * 200_000
    assert "not valid CSV" in refused(csv_text(rows))


# -- the built task ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def answers(small_task_dir: Path) -> dict[str, np.ndarray]:
    with np.load(small_task_dir / "hidden" / "answers.npz", allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def npz(small_task_dir: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(small_task_dir / "public" / name, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def test_manifest_lists_every_public_artefact_with_hash_and_size(small_task_dir: Path) -> None:
    manifest = json.loads((small_task_dir / "manifest.json").read_text())
    assert manifest["task_id"] == SMALL_SPEC["id"]
    assert manifest["kind"] == SMALL_SPEC["kind"]
    spec_text = (small_task_dir / "spec.yaml").read_text(encoding="utf-8")
    assert manifest["spec_sha256"] == hashlib.sha256(spec_text.encode()).hexdigest()
    names = [a["name"] for a in manifest["artifacts"]]
    assert names == sorted(
        [
            "README.md",
            "calibration.npz",
            "candidates.npz",
            "population.npz",
            "sample_submission.csv",
            "target.safetensors",
        ]
    )
    assert sorted(p.name for p in (small_task_dir / "public").iterdir()) == names
    for artifact in manifest["artifacts"]:
        path = small_task_dir / "public" / artifact["name"]
        assert artifact["size"] == path.stat().st_size
        assert artifact["sha256"] == sha256(path)


def test_hidden_answers_are_not_in_the_manifest(small_task_dir: Path) -> None:
    assert (small_task_dir / "hidden" / "answers.npz").is_file()
    text = (small_task_dir / "manifest.json").read_text()
    assert "answers" not in text
    assert "hidden" not in text


def test_spec_yaml_is_the_canonical_spec(small_task_dir: Path) -> None:
    spec_text = (small_task_dir / "spec.yaml").read_text(encoding="utf-8")
    assert spec_text == parse_spec(SMALL_SPEC).to_yaml()
    assert open_task(small_task_dir).spec == parse_spec(SMALL_SPEC)


def test_candidates_are_unique_with_the_spec_member_fraction(
    small_task_dir: Path, answers: dict[str, np.ndarray]
) -> None:
    cand = npz(small_task_dir, "candidates.npz")
    n = SMALL_SPEC["params"]["n_candidates"]
    assert cand["ids"].shape == (n,)
    assert len(np.unique(cand["ids"])) == n
    assert cand["x"].shape[0] == cand["y"].shape[0] == n
    np.testing.assert_array_equal(answers["ids"], cand["ids"])
    spec = parse_spec(SMALL_SPEC)
    assert int(answers["member"].sum()) == round(n * spec.params["member_fraction"])
    assert set(np.unique(answers["member"]).tolist()) == {0, 1}


def test_calibration_is_balanced(small_task_dir: Path) -> None:
    cal = npz(small_task_dir, "calibration.npz")
    n = SMALL_SPEC["params"]["n_calibration"]
    assert cal["x"].shape[0] == cal["y"].shape[0] == cal["member"].shape[0] == n
    assert int(cal["member"].sum()) == n // 2


def _row_set(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(x).reshape(len(x), -1)}


def test_population_is_disjoint_from_candidates_and_calibration(small_task_dir: Path) -> None:
    cand = npz(small_task_dir, "candidates.npz")
    cal = npz(small_task_dir, "calibration.npz")
    pop = npz(small_task_dir, "population.npz")
    pop_rows = _row_set(pop["x"])
    assert pop_rows.isdisjoint(_row_set(cand["x"]))
    assert pop_rows.isdisjoint(_row_set(cal["x"]))
    # Together the three sets use the whole data set.
    total = len(pop["x"]) + len(cand["x"]) + len(cal["x"])
    assert total == len(trustlab.load_dataset(SMALL_SPEC["dataset"]).x)


def test_public_private_split_is_stratified(answers: dict[str, np.ndarray]) -> None:
    public, member = answers["public"].astype(bool), answers["member"].astype(bool)
    fraction = SMALL_SPEC["public_fraction"]
    assert abs(public.mean() - fraction) < 0.02
    for label in (True, False):
        part = public[member == label]
        assert part.sum() == round(len(part) * fraction)
    # Both parts have members and non-members, so both can be scored.
    for part in (public, ~public):
        assert 0 < member[part].sum() < part.sum()


def test_target_loads_and_fits_members_better(
    small_task_dir: Path, answers: dict[str, np.ndarray]
) -> None:
    model = trustlab.load_model(small_task_dir / "public" / "target.safetensors")
    cand = npz(small_task_dir, "candidates.npz")
    member = answers["member"].astype(bool)
    acc_in = accuracy(model, cand["x"][member], cand["y"][member])
    acc_out = accuracy(model, cand["x"][~member], cand["y"][~member])
    assert acc_in >= acc_out


def test_sample_submission_is_valid_and_scores(small_task_dir: Path) -> None:
    task = open_task(small_task_dir)
    sample = small_task_dir / "public" / "sample_submission.csv"
    summary = task.kind.validate(task.spec, paths=task.paths, file=sample, fields={})
    assert summary == {"rows": SMALL_SPEC["params"]["n_candidates"]}
    result = task.kind.score(task.spec, paths=task.paths, file=sample, fields={})
    assert 0.0 <= result.public_score <= 1.0
    assert set(result.public_metrics) >= {"tpr@0.05", "tpr@0.01", "auc"}


def test_same_spec_builds_byte_identical_files(tmp_path: Path) -> None:
    spec = fast_spec()
    first = build_task(spec, tasks_dir=tmp_path / "a").paths.root
    second = build_task(spec, tasks_dir=tmp_path / "b").paths.root
    digest = tree_digest(first)
    assert "hidden/answers.npz" in digest
    assert "public/target.safetensors" in digest
    assert digest == tree_digest(second)


def test_failed_build_keeps_the_earlier_build(
    small_task_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks_dir = tmp_path / "tasks"
    earlier = tasks_dir / SMALL_SPEC["id"]
    shutil.copytree(small_task_dir, earlier)
    before = tree_digest(earlier)

    kind = get_kind(SMALL_SPEC["kind"])

    def failing_build(spec: Any, *, paths: TaskPaths, progress: Any) -> None:
        (paths.public / "candidates.npz").write_bytes(b"half written")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(kind, "build", failing_build)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_task(parse_spec(SMALL_SPEC), tasks_dir=tasks_dir)
    assert tree_digest(earlier) == before
    assert [p.name for p in tasks_dir.iterdir()] == [SMALL_SPEC["id"]]


def test_build_needing_more_examples_than_the_data_set_has(tmp_path: Path) -> None:
    spec = fast_spec(n_candidates=5000)
    with pytest.raises(ConfigurationError, match="params") as info:
        build_task(spec, tasks_dir=tmp_path)
    assert "n_candidates" in str(info.value)
    assert "5040" in str(info.value)
    assert list(tmp_path.iterdir()) == []

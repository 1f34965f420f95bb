"""`mlops_kit.project.infer`: one test per inference rule, and CSVs of several shapes that
`validate` accepts at once and `run --train-only` trains on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.project.infer import InferError, Inferred, infer_project


def _infer(tmp_path: Path, frame: pd.DataFrame, target: str, kind: str = "csv") -> Inferred:
    path = tmp_path / f"data.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return infer_project(path, target, out_dir=tmp_path)


def _base(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.integers(0, 2, n)})


# --- one rule each --------------------------------------------------------------------------


def test_whole_numbers_are_int_with_bounds_and_a_margin(tmp_path: Path) -> None:
    frame = _base().assign(months=np.linspace(0, 72, 40).round())
    got = _infer(tmp_path, frame, "y").column("months")
    assert (got.column.type, got.column.min, got.column.max) == ("int", 0, 80)
    assert "integer: all 40 values are whole numbers" in got.reasons
    assert "bounds: observed 0..72 with a 10% margin" in got.reasons


def test_fractions_are_float_and_negative_bounds_widen_below(tmp_path: Path) -> None:
    frame = _base().assign(t=np.linspace(-10, 10, 40))
    col = _infer(tmp_path, frame, "y").column("t").column
    assert (col.type, col.min, col.max) == ("float", -12, 12)


def test_yes_no_is_bool(tmp_path: Path) -> None:
    frame = _base().assign(promo=["yes", "no", "Yes", "NO"] * 10)
    inf = _infer(tmp_path, frame, "y")
    assert inf.column("promo").column.type == "bool"
    assert {"name": "promo", "inputs": ["promo"]} in inf.as_dict()["features"]["declared"]


def test_iso_dates_are_a_timestamp_and_the_event_time(tmp_path: Path) -> None:
    frame = _base().assign(day=pd.date_range("2025-01-01", periods=40).strftime("%Y-%m-%d"))
    inf = _infer(tmp_path, frame, "y")
    assert inf.column("day").column.type == "timestamp"
    assert inf.role("event_time") == "day"
    assert [f.transform for f in inf.features if f.inputs == ["day"]] == ["month", "day_of_week"]
    assert (inf.split, inf.split_reason.split(",")[0]) == ("time", "split: time")


def test_without_a_timestamp_the_split_is_random(tmp_path: Path) -> None:
    inf = _infer(tmp_path, _base(), "y")
    assert inf.split == "random" and inf.role("event_time") is None


def test_a_small_string_set_is_a_category_a_large_one_is_not_a_feature(tmp_path: Path) -> None:
    frame = _base().assign(plan=["b", "a", "c", "a"] * 10, note=[f"t {i}" for i in range(40)])
    inf = _infer(tmp_path, frame, "y")
    plan, note = inf.column("plan"), inf.column("note")
    assert (plan.column.type, plan.column.categories) == ("category", ["a", "b", "c"])
    assert "category: 3 distinct values" in plan.reasons
    assert note.column.type == "string" and not note.usable
    assert [f.transform for f in inf.features if f.inputs == ["plan"]] == ["one_hot"]
    assert not [f for f in inf.features if f.inputs == ["note"]]


def test_missing_values_make_a_column_nullable(tmp_path: Path) -> None:
    frame = _base().assign(z=[1.5, None, 2.5, "NA"] * 10)
    got = _infer(tmp_path, frame, "y")
    assert got.column("z").column.nullable is True
    assert got.column("x").column.nullable is False
    assert "nullable: 20 of 40 values missing" in got.column("z").reasons


def test_an_id_column_unique_per_row_is_the_entity_id_and_no_feature(tmp_path: Path) -> None:
    frame = _base().assign(order_id=range(1000, 1040))
    inf = _infer(tmp_path, frame, "y")
    assert inf.role("entity_id") == "order_id"
    assert inf.column("order_id").column.type == "string"
    assert inf.column("order_id").reasons[0].startswith("entity id: unique per row")
    assert not [f for f in inf.features if f.inputs == ["order_id"]]


def test_an_id_repeating_at_one_time_is_no_entity_id(tmp_path: Path) -> None:
    days = pd.date_range("2025-01-01", periods=20).strftime("%Y-%m-%d")
    frame = _base().assign(user_id=[f"u{i % 20}" for i in range(40)], day=[*days, *days])
    inf = _infer(tmp_path, frame, "y")
    assert inf.role("entity_id") is None and inf.role("event_time") == "day"
    assert "20 rows repeat an earlier (user_id, day) pair" in inf.column("user_id").reasons[0]
    assert not [f for f in inf.features if f.inputs == ["user_id"]]


def test_a_constant_column_is_no_feature(tmp_path: Path) -> None:
    inf = _infer(tmp_path, _base().assign(k=7), "y")
    assert not inf.column("k").usable and "not a feature: one value only" in inf.column("k").reasons


@pytest.mark.parametrize(("labels", "task", "metric"), [
    ([0, 1], "binary", "roc_auc"),
    (["yes", "no"], "binary", "roc_auc"),
    (["cat", "dog", "bird"], "multiclass", "accuracy"),
    ([0, 1, 2, 3], "multiclass", "accuracy"),
])
def test_the_task_follows_the_target_values(tmp_path: Path, labels: list[object], task: str,
                                            metric: str) -> None:
    frame = _base(48).assign(label=labels * (48 // len(labels)))
    inf = _infer(tmp_path, frame, "label")
    assert (inf.task, inf.metric) == (task, metric)
    assert inf.task_reason == f"task: {task}, target has {len(labels)} values"


def test_a_continuous_target_is_regression(tmp_path: Path) -> None:
    inf = _infer(tmp_path, _base().assign(price=np.linspace(1, 99, 40)), "price")
    assert (inf.task, inf.metric) == ("regression", "r2")


def test_missing_targets_raise_the_allowed_bad_fraction(tmp_path: Path) -> None:
    frame = _base(100).assign(y=[1, 0, 1, None, 0, 1, 0, 1, 0, 1] * 10)
    inf = _infer(tmp_path, frame, "y")
    assert inf.max_bad_fraction == 0.11
    assert inf.column("y").column.nullable is False  # a target is always required


def test_parquet_typed_columns(tmp_path: Path) -> None:
    frame = _base().assign(flag=[True, False] * 20,
                           at=pd.date_range("2025-01-01", periods=40, freq="h"))
    inf = _infer(tmp_path, frame, "y", kind="parquet")
    assert inf.column("flag").column.type == "bool"
    assert inf.column("at").column.type == "timestamp" and inf.column("at").times_of_day
    assert inf.source.kind == "parquet"


def test_large_files_are_sampled_and_say_so(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlops_kit.project.infer.SAMPLE_ROWS", 30)
    frame = _base(60).assign(n=[*range(59), 10_000])  # the outlier may miss the sample
    inf = _infer(tmp_path, frame, "y")
    assert "random sample of 30 of 60 rows" in inf.notes[0]
    assert inf.column("n").column.max is not None and inf.column("n").column.max >= 10_000


def test_a_value_outside_the_sample_demotes_the_type(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlops_kit.project.infer.SAMPLE_ROWS", 10)
    frame = _base(60).assign(n=[*range(59), "2.5"])
    types = {_infer(tmp_path, frame.sample(frac=1, random_state=s), "y").column("n").column.type
             for s in range(3)}
    assert types == {"float"}


def test_a_header_reaching_a_reserved_name_gets_another(tmp_path: Path) -> None:
    inf = _infer(tmp_path, _base().assign(**{"_source_row": 1.5, "Ingest Date": 2.5}), "y")
    named = {g.column.source: g.column.name for g in inf.columns if g.column.source}
    assert named == {"_source_row": "_source_row_2", "Ingest Date": "ingest_date_2"}


def test_awkward_headers_keep_their_source_and_get_the_safe_name(tmp_path: Path) -> None:
    frame = _base().rename(columns={"y": "Churned?"}).assign(
        **{"a/b (mg)": np.linspace(0, 9, 40), "2nd visit": np.arange(40), "a_b_mg": 1.5})
    inf = _infer(tmp_path, frame, "Churned?")  # --target as the file's header
    columns = {g.column.name: g.column.source for g in inf.columns}
    assert columns == {"x": None, "churned": "Churned?", "a_b_mg_2": "a/b (mg)",
                       "c_2nd_visit": "2nd visit", "a_b_mg": None}
    assert inf.role("target") == "churned"
    assert {i for f in inf.features for i in f.inputs} <= set(columns)
    assert yaml.safe_load(inf.to_yaml()) == inf.as_dict()


def test_an_unknown_target_names_the_columns(tmp_path: Path) -> None:
    with pytest.raises(InferError, match=r"no column 'label'.*\['x', 'y'\]"):
        _infer(tmp_path, _base(), "label")


def test_the_yaml_is_the_config_with_its_reasons_as_comments(tmp_path: Path) -> None:
    frame = _base().assign(months=np.linspace(0, 72, 40).round())
    inf = _infer(tmp_path, frame, "y")
    text = inf.to_yaml()
    assert yaml.safe_load(text) == inf.as_dict()
    assert "# integer: all 40 values are whole numbers" in text
    assert "target: y  # task: binary, target has 2 values" in text
    assert max(len(line) for line in text.splitlines() if line.lstrip().startswith("#")) <= 99


# --- CSVs of several shapes: validate at once, then train -----------------------------------


def _shape(kind: str, n: int = 400) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=n)
    frame = pd.DataFrame({"customer_id": [f"c{i % 150}" for i in range(n)],
                          "x": x, "count": rng.integers(0, 30, n)})
    if kind == "regression":
        frame["signup_time"] = pd.date_range("2025-01-01", periods=n, freq="h").strftime(
            "%Y-%m-%dT%H:%M:%S")
        frame.loc[rng.random(n) < 0.15, "x"] = np.nan
        frame["price"] = (3 * np.nan_to_num(x) + rng.normal(size=n)).round(3)
        return frame, "price"
    frame["promo"] = rng.choice(["yes", "no"], n)
    frame["plan"] = rng.choice(["basic", "pro"], n)
    frame.loc[rng.random(n) < 0.1, "plan"] = ""
    frame["species"] = np.where(x > 0.5, "setosa", np.where(x < -0.5, "virginica", "other"))
    return frame, "species"


@pytest.mark.slow  # a real training run: 45-50 s on the shared 2-core machine
@pytest.mark.parametrize("kind", ["regression", "multiclass"])
def test_inferred_config_validates_and_trains(tmp_path: Path, kind: str) -> None:
    frame, target = _shape(kind)
    frame.to_csv(tmp_path / "data.csv", index=False)
    inf = infer_project(tmp_path / "data.csv", target, out_dir=tmp_path)
    config = tmp_path / "mlops.yaml"
    config.write_text(inf.to_yaml())
    res = CliRunner().invoke(main, ["validate", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("ok ")
    res = CliRunner().invoke(main, ["run", "--config", str(config), "--train-only",
                                    "--set", "model.search.trials=1"])
    assert res.exit_code == 0, res.output
    assert "register" in res.output and "registered=True" in res.output

"""Any header a real CSV has: the safe-name rule, its collisions, and a project whose CSV
headers hold spaces, slashes, dots, dashes, parentheses, a leading digit and non-ASCII
letters, trained, served (JSON by header and by name, CSV with a header line), batch-scored
and monitored on files with the raw headers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config import ConfigError, load_config
from mlops_kit.config.model import Column
from mlops_kit.config.names import HeaderClash, map_headers, safe_name, unique_names
from mlops_kit.serving.capture import request_rows
from tests.conftest import ROOT
from tests.test_serving import call, server

HEADERS = {"a/b (mg)": "a_b_mg", "2nd visit": "c_2nd_visit", "Größe": "grosse", "x.y": "x_y",
           "with space": "with_space", "dash-ed": "dash_ed", "(paren)": "paren"}


@pytest.mark.parametrize(("header", "name"), [
    *HEADERS.items(), ("Ångström", "angstrom"), ("ﬁle №1", "file_no1"), ("  Total $ ", "total"),
    ("customerID", "customerid"), ("__x__", "x"), ("9", "c_9"), ("a" * 80, "a" * 64)])
def test_the_safe_name_rule(header: str, name: str) -> None:
    assert safe_name(header) == name


def test_a_header_without_ascii_gets_a_stable_hashed_name() -> None:
    assert safe_name("日本") == safe_name("日本") != safe_name("中国")
    assert safe_name("日本").startswith("c_") and len(safe_name("日本")) == 10


def test_unique_names_number_the_collisions() -> None:
    assert unique_names(["a b", "a_b", "A-B", "c"]) == ["a_b_2", "a_b", "a_b_3", "c"]


def test_a_column_takes_source_and_name_or_makes_the_name() -> None:
    assert Column(source="a/b (mg)", name="ab", type="float").header == "a/b (mg)"
    made = Column(source="a/b (mg)", type="float")
    assert (made.name, made.header) == ("a_b_mg", "a/b (mg)")
    awkward = Column(name="Größe", type="float")
    assert (awkward.name, awkward.source) == ("grosse", "Größe")
    plain = Column(name="Age", type="float")
    assert (plain.name, plain.source, plain.header) == ("Age", None, "Age")


def test_map_headers_accepts_header_and_name_but_not_both() -> None:
    aliases = {"a/b (mg)": "a_b_mg"}
    assert map_headers(["a/b (mg)", "y"], aliases) == ["a_b_mg", "y"]
    assert map_headers(["a_b_mg", "y"], aliases) == ["a_b_mg", "y"]
    assert map_headers(["odd one"], aliases, safe_extras=True) == ["odd_one"]
    with pytest.raises(HeaderClash, match=r"'a/b \(mg\)' and 'a_b_mg' both name"):
        map_headers(["a/b (mg)", "a_b_mg"], aliases)


def test_captured_requests_are_read_by_header_or_name() -> None:
    names, aliases = ["a_b_mg", "y"], {"a/b (mg)": "a_b_mg"}
    for body, kind in (('{"a/b (mg)": "1", "y": "2"}', "application/json"),
                       ('{"a_b_mg": "1", "y": "2"}', "application/json"),
                       ("y,a/b (mg)\n2,1\n", "text/csv")):
        rows = request_rows(body, kind, names, aliases)
        assert rows.to_dict(orient="records") == [{"a_b_mg": "1", "y": "2"}], body


def project(tmp_path: Path, columns: list[dict[str, object]], target: str = "label") -> Path:
    """The example config with its schema and features replaced, on data/x.csv."""
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    raw["data"] = {"source": {"kind": "csv", "path": "data/x.csv"}, "schema": {
        "table": "t", "target": target, "columns": columns}}
    named = [Column.model_validate(c).name for c in columns]
    raw["features"] = {"split": "random", "declared": [
        {"name": f"f_{n}", "inputs": [n]} for n in named if n != target]}
    raw["model"]["search"]["trials"] = 1
    raw["model"]["params"]["n_estimators"] = 20
    raw["quality_gate"] = {"metric": "roc_auc", "min_value": 0.5}
    raw["environments"], raw["cicd"] = {}, {}
    config = tmp_path / "mlops.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return config


def test_colliding_safe_names_are_a_config_error_naming_both(tmp_path: Path) -> None:
    config = project(tmp_path, [{"name": "a b", "type": "float"},
                                {"name": "a_b", "type": "float"},
                                {"name": "label", "type": "int"}])
    with pytest.raises(ConfigError) as err:
        load_config(config)
    message = str(err.value)
    assert "'a b' and 'a_b' both get the name 'a_b'" in message
    assert "declare another `name:`" in message and "mlops.yaml:" in message


def test_a_feature_naming_a_header_is_told_the_name(tmp_path: Path) -> None:
    config = project(tmp_path, [{"source": "a/b (mg)", "type": "float"},
                                {"name": "label", "type": "int"}])
    raw = yaml.safe_load(config.read_text())
    raw["features"]["declared"] = [{"name": "f", "inputs": ["a/b (mg)"]}]
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(ConfigError, match=r"header of column 'a_b_mg': use 'a_b_mg'"):
        load_config(config)


def awkward_data(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    """A frame under the awkward headers, whose label follows two of its columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({h: rng.normal(size=rows).round(4) for h in HEADERS})
    frame["label"] = ((frame["a/b (mg)"] + frame["Größe"]) > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The awkward-header project, trained once: (config, state folder)."""
    tmp = tmp_path_factory.mktemp("headers")
    (tmp / "data").mkdir()
    awkward_data().to_csv(tmp / "data" / "x.csv", index=False)
    columns: list[dict[str, object]] = [{"name": h, "type": "float"} for h in HEADERS]
    columns[0] = {"source": "a/b (mg)", "name": "ab_mg", "type": "float"}  # a declared name
    config = project(tmp, [*columns, {"name": "label", "type": "int", "nullable": False}])
    state = tmp / "state"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_STATE_DIR", str(state))
        res = CliRunner().invoke(main, ["validate", "--config", str(config)])
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(main, ["run", "--config", str(config), "--train-only"])
        assert res.exit_code == 0, res.output
    return config, state


NAMES = ["ab_mg", *list(HEADERS.values())[1:]]


@pytest.mark.slow  # a training run and a served model: about 30 s alone
def test_awkward_headers_train_and_the_lake_uses_safe_names(awkward: tuple[Path, Path]) -> None:
    _, state = awkward
    raw = pd.read_parquet(next(state.rglob("raw/**/*.parquet")))
    assert [c for c in raw.columns if not c.startswith("_")] == [*NAMES, "label"]
    summary = json.loads(next(state.rglob("validation.json")).read_text())
    assert summary["quarantined"] == 0 and summary["valid"] == 400


@pytest.mark.slow
def test_a_served_model_takes_headers_and_names(awkward: tuple[Path, Path]) -> None:
    config, state = awkward
    row = awkward_data(3, seed=9).drop(columns="label")
    by_header = row.to_dict(orient="records")
    by_name = row.set_axis(NAMES, axis=1).to_dict(orient="records")
    csv_body = row.to_csv(index=False).encode()
    with server(None, config, state) as port:
        answers = [call(port, "POST", "/invocations", json.dumps(body).encode(),
                        {"Content-Type": "application/json"}) for body in (by_header, by_name)]
        csv_answer = call(port, "POST", "/invocations", csv_body,
                          {"Content-Type": "text/csv", "Accept": "application/json"})
        both = {**by_header[0], "ab_mg": 1.0}
        clash = call(port, "POST", "/invocations", json.dumps(both).encode(),
                     {"Content-Type": "application/json"})
    assert [a[0] for a in answers] == [200, 200] and csv_answer[0] == 200
    scores = [json.loads(a[2])["predictions"] for a in (*answers, csv_answer)]
    assert scores[0] == scores[1] == scores[2] and len(scores[0]) == 3
    assert clash[0] == 400 and b"'a/b (mg)' and 'ab_mg' both name" in clash[2]


@pytest.mark.slow
def test_batch_and_monitor_read_files_with_the_raw_headers(
        awkward: tuple[Path, Path], tmp_path: Path) -> None:
    config, state = awkward
    rows = awkward_data(300, seed=5)
    source = tmp_path / "score.csv"
    rows.drop(columns="label").to_csv(source, index=False)
    parquet = tmp_path / "score.parquet"
    rows.drop(columns="label").to_parquet(parquet)
    env = {"MLOPS_STATE_DIR": str(state)}
    outs = []
    for path in (source, parquet):
        res = CliRunner(env=env).invoke(main, ["batch", "--config", str(config), "--input",
                                               str(path), "--output", f"{tmp_path / 'out'}/"])
        assert res.exit_code == 0, res.output
        outs.append((tmp_path / "out" / f"{path.name}.out").read_text().split())
    assert len(outs[0]) == 300 and outs[0] == outs[1]
    monitored = tmp_path / "monitor.csv"
    rows.to_csv(monitored, index=False)
    res = CliRunner(env=env).invoke(main, ["monitor", "--config", str(config), "--input",
                                           str(monitored), "--output", str(tmp_path / "mon")])
    assert res.exit_code in (0, 3), res.output
    report = json.loads((tmp_path / "mon" / "drift.json").read_text())
    assert report["rows"] == 300 and report["quality"]["rows"] == 300
    assert {f["name"] for f in report["features"]} == {*NAMES, "label"}


@pytest.mark.parametrize("column", [{"name": "ingest_date"}, {"source": "Ingest Date"}])
def test_a_column_may_not_take_a_reserved_name(column: dict[str, str]) -> None:
    from mlops_kit.config.model import Schema

    with pytest.raises(ValueError, match="reserves for its own bookkeeping"):
        Schema.model_validate({"table": "t", "target": "y", "columns": [
            {"type": "float", **column}, {"name": "y", "type": "int"}]})


def test_names_differing_only_in_case_are_one_name() -> None:
    from mlops_kit.config.model import Schema

    assert unique_names(["Age", "age", "AGE x"]) == ["Age", "age_2", "age_x"]
    with pytest.raises(ValueError, match="differing only in case"):
        Schema.model_validate({"table": "t", "target": "y", "columns": [
            {"name": "Age", "type": "float"}, {"name": "age", "type": "float"},
            {"name": "y", "type": "int"}]})

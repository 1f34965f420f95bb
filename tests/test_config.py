"""The typed config: defaults, environments, overrides, and one clear error per fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlops_kit.cli import main
from mlops_kit.config import ConfigError, load_config
from tests.conftest import ROOT, write_config


def broken(tmp_path: Path, text_from: str, text_to: str) -> Path:
    src = (ROOT / "mlops.yaml").read_text()
    assert text_from in src
    path = tmp_path / "bad.yaml"
    path.write_text(src.replace(text_from, text_to, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_example_config_loads_with_defaults() -> None:
    loaded = load_config(ROOT / "mlops.yaml")
    cfg = loaded.config
    assert cfg.project == "churn"
    assert cfg.model.framework == "xgboost"
    assert cfg.monitoring.ks_pvalue == 0.01
    assert cfg.table.target == "churned"
    assert len(loaded.digest) == 64


def test_environment_overrides_apply_only_to_that_environment() -> None:
    dev = load_config(ROOT / "mlops.yaml", env="dev").config
    prod = load_config(ROOT / "mlops.yaml", env="prod").config
    assert (dev.serving.min_instances, prod.serving.min_instances) == (1, 2)
    assert (dev.registry.approval, prod.registry.approval) == ("auto", "manual")


def test_unknown_environment_is_an_error_not_a_fallback() -> None:
    with pytest.raises(ConfigError, match=r"environments\.qa: no such environment; "
                       r"defined: azure_dev, azure_prod, azure_staging, dev,"):
        load_config(ROOT / "mlops.yaml", env="qa")


@pytest.mark.parametrize(("old", "new", "field", "needle", "allowed"), [
    ("framework: xgboost ", "framework: lightgbm ", "model.framework", "framework: lightgbm",
     "'xgboost', 'pytorch' or 'sklearn'"),
    ("rows: 20000", "rows: 10", "data.source.rows", "rows: 10", "greater than or equal to 100"),
    ("metric: roc_auc", "metric: rmse", "quality_gate.metric", "metric: rmse", "allowed: roc_auc"),
    ("min_instances: 1", "min_instances: 9", "serving", "serving:", "must be <= max_instances"),
    ("psi_threshold: 0.2", "psi_treshold: 0.2", "monitoring.psi_treshold", "psi_treshold",
     "unknown field"),
    ("account: \"111111111111\"", "account: \"abc\"", "environments.dev", "dev:", "12 digits"),
    ("scale_in: [{upper: 200", "scale_in: [{upper: 900", "serving.scaling", "scaling:",
     "overlaps the scale-out band"),
    ("{lower: 1200, change: 2}", "{lower: 500, change: 2}", "serving.scaling", "scaling:",
     "must strictly increase"),
    ("scale_in: [{upper: 200, change: -1}", "scale_in: [{upper: 200, change: 1}",
     "serving.scaling.scale_in[0].change", "scale_in:", "less than or equal to -1"),
])
def test_bad_field_names_file_line_field_value_and_fix(
        tmp_path: Path, old: str, new: str, field: str, needle: str | None, allowed: str) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert f": {field}: " in message or f": {field} " in message  # section, or a rule's own text
    assert allowed in message
    if needle:
        assert f"{path}:{line_of(path, needle)}:" in message


def test_feature_reading_the_target_is_refused(tmp_path: Path) -> None:
    path = broken(tmp_path, "inputs: [tenure_months]}", "inputs: [churned]}")
    with pytest.raises(ConfigError, match="leaks the label"):
        load_config(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("project: x\ndata: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        load_config(path)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_set_overrides_and_bad_set(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    cfg = load_config(path, sets=["data.source.rows=500", "model.framework=pytorch",
                                  "model.params={epochs: 2}", "model.search.space={}"]).config
    assert cfg.data.source.rows == 500  # type: ignore[union-attr]
    assert cfg.model.framework == "pytorch"
    with pytest.raises(ConfigError, match="FIELD=VALUE"):
        load_config(path, sets=["oops"])


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", "--config", str(ROOT / "mlops.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "project churn" in ok.output
    bad = broken(tmp_path, "task: binary", "task: ranking")
    res = runner.invoke(main, ["validate", "--config", str(bad)])
    assert res.exit_code == 2
    assert "model.task" in res.output and "ranking" in res.output


def test_category_needs_categories(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    raw["data"]["schema"]["columns"][5].pop("categories")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"data\.schema\.columns\[5\].*categories"):
        load_config(path)


def test_unknown_hyper_parameter_is_refused(tmp_path: Path) -> None:
    path = broken(tmp_path, "max_depth: 5,", "max_dept: 5,")
    with pytest.raises(ConfigError, match=r"model\.params: .*unknown xgboost hyper-parameter\(s\) "
                                          r"\['max_dept'\] \(did you mean 'max_depth'\?\); "
                                          r"known: .*max_depth"):
        load_config(path)


def test_cli_error_text_is_printed_verbatim(tmp_path: Path) -> None:
    """Brackets in an error (lists of allowed values) must survive the terminal's markup."""
    path = broken(tmp_path, "max_depth: 5,", "max_dept: 5,")
    res = CliRunner().invoke(main, ["validate", "--config", str(path)])
    assert res.exit_code == 2
    assert "['max_dept']" in res.output


def test_cli_run_with_a_bad_pipeline_file_exits_2(tmp_path: Path) -> None:
    text = "pipeline: nowhere.yaml\n" + (ROOT / "mlops.yaml").read_text()
    (tmp_path / "mlops.yaml").write_text(text)
    res = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "mlops.yaml")])
    assert res.exit_code == 2, res.output
    assert "nowhere.yaml not found" in res.output


def test_several_models_share_one_config(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    first = raw.pop("model")
    raw["models"] = [first, {**first, "name": "churn-mlp", "framework": "pytorch", "params": {},
                             "search": {"trials": 1}}]
    path = tmp_path / "mlops.yaml"
    path.write_text(yaml.safe_dump(raw))
    loaded = load_config(path)
    assert loaded.config.model.name == "churn-classifier"
    assert [m.name for m in loaded.config.all_models] == ["churn-classifier", "churn-mlp"]
    picked = load_config(path, model="churn-mlp")
    assert picked.config.model.framework == "pytorch"
    assert picked.digest != loaded.digest
    assert picked.with_values({"data.source.rows": 500}).config.model.name == "churn-mlp"
    with pytest.raises(ConfigError, match=r"--model: no model 'nope'; models are"):
        load_config(path, model="nope")
    raw["models"][1]["name"] = "churn-classifier"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"duplicate model names \['churn-classifier'\]"):
        load_config(path)
    raw["model"] = {**first, "name": "other"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="give either 'model'"):
        load_config(path)

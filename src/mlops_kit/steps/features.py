"""Features: declared row-wise transforms into an offline store, an online store of the latest
values per entity, and a point-in-time correct training set split by time.

The transforms have no fitted state, so the serving handler applies the very same code to a
request (no training/serving skew); the spec travels with the model as `feature_spec.json`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mlops_kit.config.model import Feature, FeaturesConfig, Schema
from mlops_kit.monitoring.baseline import write_baseline
from mlops_kit.steps.base import (
    LINEAGE_FILE,
    Job,
    StepError,
    StepSpec,
    job_main,
    read_json,
    read_lineage,
    read_parquet_dir,
    write_json,
    write_parquet,
)

SPEC = StepSpec("features", "processing", inputs=("curated",),
                outputs=("offline", "online", "training_set"))
ENTITY, TIME, LABEL = "entity_id", "event_time", "label"
SPEC_FILE = "feature_spec.json"
SPLITS = ("train", "validation", "test")


def slug(value: str) -> str:
    """A category as a safe column-name part (XGBoost rejects `[`, `]`, `<`)."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", value).strip("_").lower() or "blank"


@dataclass(frozen=True)
class FeatureSet:
    """The declared features over a schema; `transform` maps source rows to model inputs."""

    features: tuple[Feature, ...]
    schema: Schema

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureSet:
        return cls(tuple(Feature.model_validate(f) for f in spec["features"]),
                   Schema.model_validate(spec["schema"]))

    @classmethod
    def load(cls, folder: Path) -> FeatureSet:
        """The spec saved beside a model (or in a training set) as `feature_spec.json`."""
        return cls.from_spec(read_json(folder / SPEC_FILE))

    def to_spec(self) -> dict[str, Any]:
        return {"features": [f.model_dump(exclude_none=True) for f in self.features],
                "schema": self.schema.model_dump(by_alias=True, exclude_none=True),
                "columns": self.columns}

    @cached_property
    def columns(self) -> list[str]:
        """The model's input columns, in order."""
        out = []
        for f in self.features:
            if f.transform == "one_hot":
                cats = self.schema.column(f.inputs[0]).categories or []
                out += [f"{f.name}__{slug(c)}" for c in cats]
            else:
                out.append(f.name)
        return out

    @cached_property
    def inputs(self) -> list[str]:
        """The source columns the features read, in schema order (a request's columns)."""
        used = {c for f in self.features for c in f.inputs}
        return [c.name for c in self.schema.columns if c.name in used]

    @cached_property
    def aliases(self) -> dict[str, str]:
        """Header -> name of the columns whose header in the data is not their name."""
        return self.schema.aliases

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model inputs (float64, NaN for missing) for every row of `frame`."""
        missing = sorted(set(self.inputs) - set(frame.columns))
        if missing:
            raise StepError(f"columns needed by the features are missing: {missing}")
        typed = {c: typed_column(frame[c], self.schema.column(c).type) for c in self.inputs}
        return pd.DataFrame(self.matrix(typed, len(frame)), columns=self.columns,
                            index=frame.index)

    def matrix(self, typed: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
        """The model's input matrix from typed source columns (see `typed_column`).

        Training and serving both come here, so a request is transformed by the very code
        that built the training set.
        """
        out = np.empty((rows, len(self.columns)), dtype="float64")
        at = 0
        for f in self.features:
            for values in self._one(f, typed):
                out[:, at] = values
                at += 1
        return out

    def _one(self, f: Feature, typed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        col = self.schema.column(f.inputs[0])
        x = typed[f.inputs[0]]
        if f.transform == "one_hot":
            return [np.asarray(x == c, dtype="float64") for c in col.categories or []]
        if f.transform == "is_null":
            return [np.asarray(pd.isna(x), dtype="float64")]
        if f.transform in ("day_of_week", "month", "hour"):
            return [_calendar(_as_datetime(x), f.transform)]
        v = _numeric(x, col.categories)
        if f.transform in ("ratio", "difference", "product"):
            other = self.schema.column(f.inputs[1])
            w = _numeric(typed[f.inputs[1]], other.categories)
            with np.errstate(divide="ignore", invalid="ignore"):
                out = {"ratio": v / np.where(w == 0, np.nan, w), "difference": v - w,
                       "product": v * w}[f.transform]
            return [out]
        if f.transform == "log1p":
            return [np.log1p(np.clip(v, 0, None))]
        if f.transform == "clip":
            return [np.clip(v, f.lower, f.upper)]
        if f.transform == "bucketize":
            b = np.digitize(v, f.boundaries or []).astype("float64")
            return [np.where(np.isnan(v), np.nan, b)]
        return [v]


def typed_column(values: pd.Series, kind: str) -> np.ndarray:
    """A source column as the transforms take it: float64 (NaN) for int, float and bool;
    datetime64[us] (NaT) for timestamps; objects (None) for category and string."""
    if kind in ("int", "float"):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if kind == "bool":
        return values.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    if kind == "timestamp":
        return _as_datetime(values.to_numpy())
    text = values.astype("string").to_numpy(dtype=object)
    text[pd.isna(text)] = None
    return text


def _as_datetime(x: np.ndarray | pd.Series) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.dtype.kind == "M":
        return x.astype("datetime64[us]")
    ts = pd.to_datetime(pd.Series(x), errors="coerce", utc=True, format="ISO8601")
    return ts.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _calendar(ts: np.ndarray, part: str) -> np.ndarray:
    """Month (1-12), day of week (Monday 0) or hour of datetime64 values, NaN for NaT."""
    if part == "month":
        out = ts.astype("datetime64[M]").astype("int64") % 12 + 1
    elif part == "day_of_week":
        out = (ts.astype("datetime64[D]").astype("int64") + 3) % 7  # 1970-01-01 was a Thursday
    else:
        out = ts.astype("datetime64[h]").astype("int64") % 24
    return np.where(np.isnat(ts), np.nan, out.astype("float64"))


def _numeric(x: np.ndarray, categories: list[str] | None) -> np.ndarray:
    """Numbers from a typed column: category codes, epoch seconds, or the values."""
    if x.dtype == object:
        codes = pd.Categorical(x, categories=categories).codes if categories else None
        if codes is None:
            return pd.to_numeric(pd.Series(x), errors="coerce").to_numpy(dtype="float64")
        return np.where(codes < 0, np.nan, codes).astype("float64")
    if x.dtype.kind == "M":
        seconds = x.astype("datetime64[s]").astype("int64").astype("float64")
        return np.where(np.isnat(x), np.nan, seconds)
    return x


def keys(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Entity id and event time of each row.

    Without both an entity id and an event time there is no history to join on, so each row is
    its own entity (its source row number) at its event or ingestion time.
    """
    by_row = not (schema.entity_id and schema.event_time)
    entity = frame["_source_row"] if by_row else frame[schema.entity_id]
    entity = entity.astype("string")
    if schema.event_time:
        time = np.asarray(pd.to_datetime(frame[schema.event_time]), dtype="datetime64[us]")
    elif "ingest_date" in frame.columns:
        time = np.asarray(pd.to_datetime(frame["ingest_date"].astype(str)), dtype="datetime64[us]")
    else:
        time = np.full(len(frame), np.datetime64(pd.Timestamp.now().normalize(), "us"))
    return pd.DataFrame({ENTITY: entity.to_numpy(), TIME: time})


def point_in_time_join(labels: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """For each label, the newest feature row of its entity at or before the label's time."""
    con = duckdb.connect()
    con.register("labels", labels)
    con.register("features", features)
    joined = con.execute(
        f"""SELECT l.*, f.* EXCLUDE ({ENTITY}, {TIME}) FROM labels l
        ASOF LEFT JOIN features f ON l.{ENTITY} = f.{ENTITY} AND l.{TIME} >= f.{TIME}
        ORDER BY l.{TIME}, l.{ENTITY}"""
    ).df()
    con.close()
    return joined


def split(frame: pd.DataFrame, cfg: FeaturesConfig, seed: int) -> dict[str, pd.DataFrame]:
    """Train / validation / test: by time (the newest rows are held out) or at random."""
    n = len(frame)
    if cfg.split == "time":
        order = np.argsort(frame[TIME].to_numpy(), kind="stable")
    else:
        order = np.random.default_rng(seed).permutation(n)
    n_test = int(n * cfg.test_fraction)
    n_val = int((n - n_test) * cfg.validation_fraction)
    cut = [n - n_test - n_val, n - n_test]
    parts = dict(zip(SPLITS, np.split(order, cut), strict=True))
    sizes = {k: len(v) for k, v in parts.items()}
    if min(sizes.values()) == 0:
        raise StepError(f"too few rows ({n}) to split into train/validation/test: {sizes}")
    return {k: frame.iloc[v].reset_index(drop=True) for k, v in parts.items()}


def run(job: Job) -> dict[str, Any]:
    cfg = job.config.config
    schema = cfg.table
    curated = read_parquet_dir(job.input("curated"))
    fs = FeatureSet(tuple(cfg.features.declared), schema)
    key = keys(curated, schema)
    offline = pd.concat([key, fs.transform(curated).reset_index(drop=True)], axis=1)
    write_parquet(offline, job.output("offline") / "part-00000.parquet")
    latest = offline.sort_values(TIME).drop_duplicates(ENTITY, keep="last")
    write_parquet(latest, job.output("online") / "latest.parquet")

    labels = key.assign(**{LABEL: curated[schema.target].to_numpy(), "_row": np.arange(len(key))})
    source = curated.drop(columns=["_source_row", "ingest_date"], errors="ignore")
    parts = split(point_in_time_join(labels, offline), cfg.features, cfg.model.seed)
    out = job.output("training_set")
    for name, part in parts.items():
        write_parquet(part.drop(columns="_row"), out / f"{name}.parquet")
    test_rows = parts["test"]["_row"].to_numpy()
    write_parquet(source.iloc[test_rows].reset_index(drop=True), out / "test_source.parquet")
    train_rows = parts["train"]["_row"].to_numpy()
    write_baseline(source.iloc[train_rows][fs.inputs], schema, out / "baseline")
    write_json(fs.to_spec(), out / SPEC_FILE)
    write_json(read_lineage(job.input("curated")), out / LINEAGE_FILE)
    sizes = {k: len(v) for k, v in parts.items()}
    write_json({"rows": sizes, "group": cfg.features.group, "columns": fs.columns,
                "entities": int(latest.shape[0])}, out / "_split.json")
    return {"features": len(fs.columns), **sizes, "entities": int(latest.shape[0])}


def main(argv: list[str] | None = None) -> int:
    return job_main(SPEC, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

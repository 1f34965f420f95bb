"""The local online feature store: the latest feature values per entity, in SQLite."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pandas as pd

from mlops_kit.steps.features import ENTITY, TIME


class SqliteOnlineStore:
    """One table per feature group, keyed by entity id; a newer event replaces an older one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def put(self, group: str, latest: pd.DataFrame) -> int:
        """Upsert rows whose event time is newer than what the store holds; return rows written."""
        table = _ident(group)
        cols = [c for c in latest.columns if c not in (ENTITY, TIME)]
        frame = latest.assign(**{TIME: latest[TIME].astype("datetime64[us]").astype(str)})
        with sqlite3.connect(self.path) as con:
            defs = ", ".join(f'"{c}" REAL' for c in cols)
            con.execute(f'CREATE TABLE IF NOT EXISTS {table} ("{ENTITY}" TEXT PRIMARY KEY, '
                        f'"{TIME}" TEXT NOT NULL, {defs})')
            names = ", ".join(f'"{c}"' for c in [ENTITY, TIME, *cols])
            marks = ", ".join("?" for _ in range(len(cols) + 2))
            updates = ", ".join(f'"{c}" = excluded."{c}"' for c in [TIME, *cols])
            before = con.total_changes
            con.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT(\"{ENTITY}\") "
                f"DO UPDATE SET {updates} WHERE excluded.\"{TIME}\" >= {table}.\"{TIME}\"",
                frame[[ENTITY, TIME, *cols]].itertuples(index=False, name=None),
            )
            return con.total_changes - before

    def get(self, group: str, entity_ids: list[str]) -> pd.DataFrame:
        """The stored rows of the given entities (missing ones are absent)."""
        marks = ", ".join("?" for _ in entity_ids)
        with sqlite3.connect(self.path) as con:
            return pd.read_sql_query(
                f'SELECT * FROM {_ident(group)} WHERE "{ENTITY}" IN ({marks})', con,
                params=entity_ids)

    def count(self, group: str) -> int:
        with sqlite3.connect(self.path) as con:
            return int(con.execute(f"SELECT COUNT(*) FROM {_ident(group)}").fetchone()[0])


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not a valid feature group name: {name!r}")
    return f'"{name}"'

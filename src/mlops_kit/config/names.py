"""Column names: the header a source file has, and the safe name the kit uses for it.

A real CSV header may hold spaces, slashes, dots, dashes, parentheses, a leading digit or
non-ASCII letters (`a/b (mg)`, `2nd visit`, `Größe`). Inside the lake, the features, the
model and every cloud catalog a column goes by its name: ASCII letters, digits and `_`, not
starting with a digit, which Athena/Glue, BigQuery, Parquet, XGBoost and Python all accept.
A name already so is kept as written (`Age`); another header gets its safe name, lower case
(`safe_name`, docs/config.md#column-names). Names are unique without regard to case, since
Glue and BigQuery fold it. A column may also declare its name (`name:`) beside its header
(`source:`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Container, Iterable, Mapping, Sequence

SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")  # a name the kit takes as it is
MAX_LENGTH = 64


# Columns the kit adds itself: the raw zone's row numbers and its partition. No column may
# be named so (a header that is one is declared with `source:` and another name).
RESERVED = ("_source_row", "ingest_date")


class HeaderClash(ValueError):
    """Two headers of one file or row that name the same column."""


def is_safe(name: str) -> bool:
    """Whether `name` is a column name as the kit uses it (letter or `_`, then `[A-Za-z0-9_]`)."""
    return bool(SAFE.match(name))


def safe_name(source: str) -> str:
    """The safe name of a header, by one rule:

    1. Unicode NFKD, case-folded (lower case; `ß` -> `ss`), NFKD again, and the combining
       marks dropped (`é` -> `e`, `ö` -> `o`, `ﬁ` -> `fi`, `№` -> `no`);
    2. every run of other characters than `a-z`, `0-9` becomes one `_`; `_` at either end
       is stripped;
    3. a name that starts with a digit gets the prefix `c_`;
    4. at most 64 characters (cut, trailing `_` stripped);
    5. a header with no ASCII letter or digit left (`日本`, `???`) is `c_` plus the first
       8 hex digits of the SHA-256 of its UTF-8 bytes.

    `a/b (mg)` -> `a_b_mg`, `2nd visit` -> `c_2nd_visit`, `Größe` -> `grosse`,
    `x.y` -> `x_y`, `(paren)` -> `paren`.
    """
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", source).casefold())
    ascii_only = "".join(ch for ch in folded if not unicodedata.combining(ch))
    name = re.sub(r"[^a-z0-9]+", "_", ascii_only).strip("_")
    if not name:
        return "c_" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    if name[0].isdigit():
        name = "c_" + name
    return name[:MAX_LENGTH].rstrip("_")


def unique_names(headers: Iterable[str]) -> list[str]:
    """The name of each header, made unique in order: a safe header stays as it is (as a
    declared `name:` does), another gets `safe_name`; a name already taken gets `_2`, `_3`,
    ... as does another header (a name must not be another column's header: the config
    refuses it). For a generator such as `init --from`, which then declares each `name:`."""
    out: list[str] = []
    taken: set[str] = set()
    headers = list(headers)
    others = set(headers)
    for header in headers:
        base = header if is_safe(header) else safe_name(header)
        name, n = base, 1
        while (name.lower() in taken or name in RESERVED
               or (name != header and name in others)):
            n += 1
            name = f"{base[:MAX_LENGTH - len(str(n)) - 1]}_{n}"
        taken.add(name.lower())
        out.append(name)
    return out


def check_columns(pairs: Sequence[tuple[str, str]]) -> None:
    """Refuse schema columns (`(header, name)` pairs) whose mapping is not one to one:
    two columns with one header or one name, or a name that is another column's header.
    ValueError names both headers and the fix."""
    by_name: dict[str, str] = {}
    by_header: dict[str, str] = {}
    for header, name in pairs:
        if name in RESERVED:
            raise ValueError(f"column {header!r} has the name {name!r}, which the kit reserves "
                             "for its own bookkeeping (row numbers, the raw partition); declare "
                             f"`source: {header}` with another `name:`")
        if header in by_header:
            raise ValueError(f"duplicate column names: two columns read the header {header!r}; "
                             "list each column once")
        if name.lower() in by_name:
            first = by_name[name.lower()]
            raise ValueError(
                f"columns {first!r} and {header!r} both get the name {name!r} (safe-name "
                "rule, docs/config.md#column-names; names differing only in case are one "
                "name to Glue and BigQuery); declare another `name:` for one of them")
        by_name[name.lower()], by_header[header] = header, name
    for header, name in pairs:
        other = by_header.get(name)
        if other is not None and other != name:
            raise ValueError(
                f"column {header!r} has the name {name!r}, which is the header of another "
                f"column (named {other!r}); a header and a name must not be confused: "
                "declare another `name:`")


def map_headers(headers: Sequence[str], aliases: Mapping[str, str], *,
                safe_extras: bool = False, only: Container[str] | None = None) -> list[str]:
    """The column name of each header: a column's header (`aliases`: header -> name) gives
    its name; any other header (a safe name already, or a column the schema does not list)
    stays as it is, or gets `safe_name` with `safe_extras`. HeaderClash when two headers
    reach one name (say, a column's header and its name both); with `only`, only for the names
    in it (a reader that ignores other columns does not mind their clashes)."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for header in headers:
        name = aliases.get(header, header)
        if safe_extras and name == header and not is_safe(header):
            name = safe_name(header)
        if name in seen and (only is None or name in only):
            raise HeaderClash(f"headers {seen[name]!r} and {header!r} both name the column "
                              f"{name!r}; keep one of them")
        seen[name] = header
        out.append(name)
    return out

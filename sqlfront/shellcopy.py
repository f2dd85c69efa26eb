"""``\\copy``: bulk load a CSV file into a table, or write a table out as CSV.

``\\copy TABLE [(col, ...)] FROM 'file.csv' [WITH HEADER]`` reads and checks the whole file
first (a malformed line is reported by its line number and nothing is sent), then sends the
rows with ``executemany``, which packs them into large requests; each request is one Raft
entry that applies all its rows or none. An empty field is NULL.
``\\copy TABLE TO 'file.csv' [WITH HEADER]`` writes the table (NULL as an empty field).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from .driver import Connection


class CopyError(Exception):
    """Reported as the meta-command's error; nothing was loaded."""


@dataclasses.dataclass(frozen=True)
class CopySpec:
    table: str
    columns: tuple[str, ...]
    direction: str  # "FROM" or "TO"
    path: str
    header: bool


def parse_copy(args: Sequence[str]) -> CopySpec:
    """Parse ``\\copy`` arguments (already split like a shell).

    >>> parse_copy(["users", "FROM", "u.csv", "WITH", "HEADER"])
    CopySpec(table='users', columns=(), direction='FROM', path='u.csv', header=True)
    >>> parse_copy(["users(id,", "name)", "TO", "out.csv"]).columns
    ('id', 'name')
    """
    words = list(args)
    direction_at = next(
        (i for i, w in enumerate(words) if w.upper() in ("FROM", "TO") and i > 0), None
    )
    if direction_at is None or direction_at + 1 >= len(words):
        raise CopyError("usage: \\copy TABLE [(col, ...)] {FROM|TO} 'file.csv' [WITH HEADER]")
    target = " ".join(words[:direction_at])
    table, _, cols = target.partition("(")
    columns = tuple(c.strip() for c in cols.rstrip(") ").split(",") if c.strip())
    rest = [w.upper() for w in words[direction_at + 2 :]]
    if rest not in ([], ["WITH", "HEADER"], ["HEADER"], ["WITH", "CSV", "HEADER"], ["CSV"]):
        raise CopyError(f"\\copy: unexpected {' '.join(words[direction_at + 2 :])!r}")
    return CopySpec(
        table=table.strip(),
        columns=columns,
        direction=words[direction_at].upper(),
        path=os.path.expanduser(words[direction_at + 1]),
        header="HEADER" in rest,
    )


def _progress(out: TextIO | None, label: str, done: int, total: int) -> None:
    if out is None:
        return
    width = 30
    filled = width if total <= 0 else min(width, width * done // total)
    out.write(f"\r{label} [{'#' * filled}{'-' * (width - filled)}] {done:,}/{total:,}")
    out.flush()


def copy_from(
    conn: Connection,
    spec: CopySpec,
    table_columns: Sequence[str],
    progress: TextIO | None,
) -> int:
    """Load ``spec.path`` into ``spec.table``; returns the number of rows loaded."""
    try:
        with open(spec.path, newline="", encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
    except OSError as exc:
        raise CopyError(f"\\copy: cannot read {spec.path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CopyError(f"\\copy: {spec.path} is not UTF-8 text: {exc}") from None
    reader = csv.reader(lines, strict=True)
    rows: list[tuple[str | None, ...]] = []
    columns = list(spec.columns)
    started = time.monotonic()
    try:
        for record in reader:
            if spec.header and reader.line_num == 1 and not rows:
                if not columns:
                    columns = [c.strip() for c in record]
                continue
            if not columns:
                columns = list(table_columns)
            if len(record) != len(columns):
                raise CopyError(
                    f"\\copy: line {reader.line_num}: expected {len(columns)} fields, "
                    f"found {len(record)}; nothing was loaded"
                )
            rows.append(tuple(v if v != "" else None for v in record))
            if len(rows) % 20_000 == 0:
                _progress(progress, "reading", len(rows), len(lines))
    except csv.Error as exc:
        raise CopyError(f"\\copy: line {reader.line_num}: {exc}; nothing was loaded") from None
    unknown = [c for c in columns if c.lower() not in {t.lower() for t in table_columns}]
    if unknown:
        raise CopyError(f"\\copy: table {spec.table} has no column {', '.join(unknown)}")
    _progress(progress, "reading", len(rows), len(rows))
    if progress is not None:
        progress.write("\n")
    if not rows:
        return 0
    quoted = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    sql = f'INSERT INTO "{spec.table}" ({quoted}) VALUES ({marks})'
    cur = conn.cursor()
    chunk = 50_000
    loaded = 0
    for start in range(0, len(rows), chunk):
        cur.executemany(sql, rows[start : start + chunk])
        loaded += len(rows[start : start + chunk])
        _progress(progress, "loading", loaded, len(rows))
    if progress is not None:
        rate = loaded / max(time.monotonic() - started, 1e-9)
        progress.write(f"\n{loaded:,} rows in {time.monotonic() - started:.1f} s ({rate:,.0f}/s)\n")
    return loaded


def copy_to(conn: Connection, spec: CopySpec) -> int:
    cols = ", ".join(f'"{c}"' for c in spec.columns) if spec.columns else "*"
    cur = conn.execute(f'SELECT {cols} FROM "{spec.table}"')
    names = [d[0] for d in cur.description or ()]
    count = 0
    try:
        with open(spec.path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if spec.header:
                writer.writerow(names)
            for row in cur.fetchall():
                writer.writerow(
                    ["" if v is None else (v.hex() if isinstance(v, bytes) else v) for v in row]
                )
                count += 1
    except OSError as exc:
        raise CopyError(f"\\copy: cannot write {spec.path}: {exc.strerror or exc}") from None
    return count


def run_copy(
    conn: Connection,
    args: Sequence[str],
    table_columns: Callable[[str], list[str] | None],
    progress: TextIO | None = None,
) -> str:
    """Run one ``\\copy``; returns the status line (``COPY n``)."""
    spec = parse_copy(args)
    cols = table_columns(spec.table)
    if cols is None:
        raise CopyError(f'\\copy: did not find any table named "{spec.table}"')
    if spec.direction == "FROM":
        n = copy_from(conn, spec, cols, progress)
    else:
        n = copy_to(conn, spec)
    return f"COPY {n}"


__all__ = ["CopyError", "CopySpec", "copy_from", "copy_to", "parse_copy", "run_copy"]

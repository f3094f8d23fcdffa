"""A statement compiled once for the database in use, run through the driver's executemany with plain
tuples.

SQLAlchemy's own path builds a cache key by walking the whole statement on every execute, then runs
each value through the column's bind processor by name. For the writes the usage writer does on every
batch (the request log's INSERT, the rollup's upsert with its ~90 columns) that walk costs more than
the write itself; compiling once and keeping the bind processors in column order leaves only the
values to convert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import FromClause
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert

__all__ = ["PositionalPlan"]


class PositionalPlan:
    """`statement` (an INSERT into `table`, with or without an upsert clause) compiled for `dialect`
    with one bind per name in `names`. `sql` is None under a named paramstyle: the caller then uses
    SQLAlchemy's own path."""

    def __init__(self, statement: Insert, table: FromClause, dialect: Dialect, names: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        order = compiled.positiontup
        self.sql: str | None = str(compiled) if order else None
        self.order: list[str] = list(order or ())
        columns = table.columns
        self._processors = [
            columns[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.order
        ]
        # for `tuples`: where each bind's value sits in a row given in `names` order, and the few
        # binds that need converting (most of the rollup's ~90 columns are plain integers)
        self._positions = [list(names).index(name) for name in self.order]
        self._in_order = self._positions == list(range(len(self._positions)))
        self._converted = [
            (bind, process) for bind, process in enumerate(self._processors) if process is not None
        ]

    def rows(self, items: Iterable[Any], value: Callable[[Any, str], object]) -> list[tuple[object, ...]]:
        """One tuple per item, `value(item, name)` for each bind in the statement's order, converted."""
        pairs = list(zip(self.order, self._processors, strict=True))
        rows = []
        for item in items:
            values = []
            for name, process in pairs:
                found = value(item, name)
                values.append(found if process is None or found is None else process(found))
            rows.append(tuple(values))
        return rows

    def tuples(self, rows: Iterable[Sequence[object]]) -> list[tuple[object, ...]]:
        """One tuple per row, each row's values given in the `names` order, converted."""
        positions, converted = self._positions, self._converted
        out = []
        for row in rows:
            values = list(row) if self._in_order else [row[position] for position in positions]
            for bind, process in converted:
                if values[bind] is not None:
                    values[bind] = process(values[bind])
            out.append(tuple(values))
        return out

"""The connection a unit of work runs on, and the statements prepared for it.

SQLAlchemy's execution of a Core statement (an execution context, parameter
and result processing, a cursor result) costs tens of microseconds of Python,
several times what SQLite needs to run the statement, and a rotation runs
four. So the statements of the hot paths are `Prepared`: on SQLite each is
compiled once per set of parameter names and run on the pysqlite connection
itself. Its parameters go through the bind processors of SQLAlchemy's own
SQLite dialect, so what is stored is exactly what Core would store, and its
rows come back converted as Core converts them. On PostgreSQL, and for every
statement that is not prepared, `Tx` runs the statement through Core.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, DateTime, Dialect
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import JSON, Boolean, TypeEngine

_Converter = Callable[[Any], Any]
#: How many parameter-name sets of one statement keep their compiled form.
#: An UPDATE compiles once per set of columns it changes; callers choose the
#: set, so the cache must not grow without bound.
_MAX_COMPILED = 64

_EMPTY_JSON: dict[str, Callable[[], Any]] = {"[]": list, "{}": dict}


def _json(text: str) -> Any:
    # Most JSON columns hold an empty list or object; skip the parser for them.
    empty = _EMPTY_JSON.get(text)
    return empty() if empty is not None else json.loads(text)


def sqlite_converter(column_type: TypeEngine[Any]) -> _Converter | None:
    """How to read back a value that SQLAlchemy's SQLite dialect stores as text
    (JSON, DateTime) or as an integer (Boolean); None where none is needed.

    These do what the dialect's result processors do, faster: its DateTime
    parser is a regular expression, `fromisoformat` reads the same text.
    """
    if isinstance(column_type, JSON):
        return _json
    if isinstance(column_type, DateTime):
        return dt.datetime.fromisoformat
    if isinstance(column_type, Boolean):
        return bool
    return None


@dataclasses.dataclass(frozen=True)
class _Compiled:
    sql: str
    #: The parameter names in the order of the SQL's `?`, each with the bind
    #: processor of its type.
    binds: tuple[tuple[str, _Converter | None], ...]
    #: The values the statement itself fixes, such as `id == "x"`.
    fixed: Mapping[str, Any]
    #: (position, converter) of the columns of a returned row that need one.
    converters: tuple[tuple[int, _Converter], ...]

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        parameters = []
        for name, process in self.binds:
            value = values[name] if name in values else self.fixed[name]
            # Like Core, a processor sees None too: JSON stores it as `null`.
            parameters.append(value if process is None else process(value))
        return parameters

    def row(self, raw: Sequence[Any]) -> list[Any]:
        values = list(raw)
        for index, convert in self.converters:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        return values


class Prepared:
    """A Core statement that a hot path runs on every call."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[frozenset[str], _Compiled] = {}

    def __repr__(self) -> str:
        return f"Prepared({str(self.statement)!r})"

    def _for_sqlite(self, dialect: Dialect, names: Iterable[str]) -> _Compiled:
        key = frozenset(names)
        found = self._compiled.get(key)
        if found is None:
            found = _compile(self.statement, dialect, key)
            if len(self._compiled) < _MAX_COMPILED:
                self._compiled[key] = found
        return found

    def run_sqlite(
        self, driver: sqlite3.Connection, dialect: Dialect, params: Mapping[str, Any]
    ) -> tuple[sqlite3.Cursor, Callable[[Sequence[Any]], list[Any]]]:
        """Run the statement on a pysqlite connection; return its cursor and
        the function that converts a row it returns."""
        compiled = self._for_sqlite(dialect, params)
        return driver.execute(compiled.sql, compiled.parameters(params)), compiled.row

    def first_sqlite(
        self, driver: sqlite3.Connection, dialect: Dialect, params: Mapping[str, Any]
    ) -> list[Any] | None:
        """The first row the statement returns on a pysqlite connection."""
        cursor, convert = self.run_sqlite(driver, dialect, params)
        raw = cursor.fetchone()
        return None if raw is None else convert(raw)


def _datetime_text(value: dt.datetime | None) -> str | None:
    # The text SQLAlchemy's SQLite DATETIME stores for a naive datetime,
    # `2025-01-30 14:52:26.912000`, at a fifth of the cost of its processor.
    return None if value is None else value.isoformat(" ", "microseconds")


def sqlite_binder(column_type: TypeEngine[Any], dialect: Dialect) -> _Converter | None:
    """How SQLAlchemy's SQLite dialect turns a value of this type into a
    parameter; None where it passes the value as it is."""
    if isinstance(column_type, DateTime):
        return _datetime_text
    processor: _Converter | None = column_type.dialect_impl(dialect).bind_processor(
        dialect
    )
    return processor


def _compile(
    statement: Executable, dialect: Dialect, names: frozenset[str]
) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=sorted(names))  # type: ignore[attr-defined]
    order = compiled.positiontup or ()
    binds = tuple(
        (name, sqlite_binder(compiled.binds[name].type, dialect)) for name in order
    )
    fixed = {
        name: compiled.binds[name].value
        for name in order
        if name not in names and compiled.binds[name].value is not None
    }
    selected = getattr(statement, "selected_columns", ())
    converters = tuple(
        (index, convert)
        for index, column in enumerate(selected)
        if (convert := sqlite_converter(column.type)) is not None
    )
    return _Compiled(str(compiled), binds, fixed, converters)


class Tx:
    """One transaction (or, for `Database.query`, one read) of a unit of work.

    `conn` is the Core connection, for whatever the methods here do not cover.
    """

    def __init__(self, conn: Connection, driver: sqlite3.Connection | None) -> None:
        self.conn = conn
        self._driver = driver

    @property
    def driver(self) -> sqlite3.Connection:
        """The pysqlite connection under `conn`, on SQLite."""
        assert self._driver is not None, "not a SQLite transaction"
        return self._driver

    def first(
        self, statement: Prepared | Executable, params: Mapping[str, Any]
    ) -> Sequence[Any] | None:
        """The first row the statement returns, or None."""
        if self._driver is not None and isinstance(statement, Prepared):
            return statement.first_sqlite(self._driver, self.conn.dialect, params)
        return self.conn.execute(_core(statement), params).first()

    def rows(
        self, statement: Prepared | Executable, params: Mapping[str, Any] | None = None
    ) -> list[Sequence[Any]]:
        """Every row the statement returns."""
        if self._driver is not None and isinstance(statement, Prepared):
            cursor, convert = statement.run_sqlite(
                self._driver, self.conn.dialect, params or {}
            )
            return [convert(raw) for raw in cursor.fetchall()]
        return list(self.conn.execute(_core(statement), params))

    def scalar(
        self, statement: Prepared | Executable, params: Mapping[str, Any] | None = None
    ) -> Any:
        """The first column of the first row, or None."""
        row = self.first(statement, params or {})
        return None if row is None else row[0]

    def execute(
        self, statement: Prepared | Executable, params: Mapping[str, Any] | None = None
    ) -> int:
        """Run a statement that returns no rows; return how many rows it hit."""
        if self._driver is not None and isinstance(statement, Prepared):
            cursor, _ = statement.run_sqlite(
                self._driver, self.conn.dialect, params or {}
            )
            return cursor.rowcount
        result = self.conn.execute(_core(statement), params)
        return int(getattr(result, "rowcount", 0) or 0)


def _core(statement: Prepared | Executable) -> Executable:
    return statement.statement if isinstance(statement, Prepared) else statement

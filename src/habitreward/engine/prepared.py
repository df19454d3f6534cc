"""Hot-path queries turned into SQL once per database, then run with new values.

Peewee builds a query's SQL anew every time it runs. For the handful of statements
every habit completion and every webhook update runs, building them took more CPU
than SQLite took to run them (about a third of the server's time per update). A
:class:`Prepared` query is built once per database with :class:`Slot` placeholders
where the values go; a run fills the slots, converting each value with the field
conversion peewee would have used, and the rows become the usual model instances
(filled directly, :class:`_ModelRows`; other row types through peewee's own reader).

Only for queries whose *shape* does not depend on the values (no ``IN`` lists of
varying length, no ``== None``); everything else stays plain peewee.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import peewee


class _Hole:
    """A parameter position left open in compiled SQL."""

    __slots__ = ("index", "converter")

    def __init__(self, index: int, converter: Callable[[Any], Any] | None):
        self.index = index
        self.converter = converter


class Slot(peewee.Node):
    """The ``index``-th value of a run goes here.

    In a comparison (``HabitLog.user == Slot(0)``) the value is converted like
    peewee converts the right-hand side (the field's ``db_value``); elsewhere pass
    the ``converter`` (for an INSERT, the column's ``db_value``).
    """

    def __init__(self, index: int, converter: Callable[[Any], Any] | None = None):
        super().__init__()
        self.index = index
        self.converter = converter

    def __sql__(self, ctx: peewee.Context) -> peewee.Context:
        # converter=False: keep the hole itself as the parameter, unconverted.
        return ctx.value(_Hole(self.index, self.converter or ctx.state.converter), converter=False)


#: What a peewee cursor wrapper holds about one run rather than about the query's columns.
_PER_RUN = frozenset({"cursor", "count", "index", "initialized", "populated", "row_cache"})


class _Compiled:
    __slots__ = ("sql", "params", "holes", "query", "reader_state", "rows_reader")

    def __init__(self, sql: str, params: list[Any], holes: list[tuple[int, _Hole]], query: Any, flat: bool):
        self.sql, self.params, self.holes, self.query = sql, params, holes, query
        # peewee works out how to turn the columns into models on each run (from the cursor's
        # description, which is the same for the same SQL): kept after the first run.
        self.reader_state: dict[str, Any] | None = None
        self.rows_reader: _ModelRows | _TupleRows | None = None
        if _reads_models(query, flat):
            self.rows_reader = _ModelRows(query)
        elif _reads_tuples(query):
            self.rows_reader = _TupleRows(query)

    def reader(self, cursor: Any) -> Any:
        if self.rows_reader is not None:
            return self.rows_reader.read(cursor)
        wrapper = self.query._get_cursor_wrapper(cursor)  # noqa: SLF001 - peewee's own row reader
        if self.reader_state is not None:
            wrapper.__dict__.update(self.reader_state)
            wrapper.initialized = True
        elif hasattr(wrapper, "__dict__"):
            wrapper.initialize()
            wrapper.initialized = True
            self.reader_state = {k: v for k, v in wrapper.__dict__.items() if k not in _PER_RUN}
        return wrapper

    def bind(self, values: Sequence[Any]) -> list[Any]:
        params = list(self.params)
        for position, hole in self.holes:
            value = values[hole.index]
            params[position] = hole.converter(value) if hole.converter is not None and value is not None else value
        return params


def _reads_models(query: Any, flat: bool) -> bool:
    """Whether peewee would give ``query``'s rows as plain instances of its model (a SELECT
    from one table, default row type), or ``flat`` asks for that despite its joins."""
    if not isinstance(query, peewee.ModelSelect):
        return False
    if (query._row_type or query.default_row_type) != peewee.ROW.MODEL:  # noqa: SLF001
        return False
    return flat or (len(query._from_list) == 1 and not query._joins)  # noqa: SLF001


def _reads_tuples(query: Any) -> bool:
    return isinstance(query, peewee.ModelSelect) and query._row_type == peewee.ROW.TUPLE  # noqa: SLF001


class _TupleRows:
    """Rows of a ``.tuples()`` model SELECT: the cursor's tuples, each column converted as
    peewee converts it (most need nothing: then the tuples are the cursor's own)."""

    __slots__ = ("model", "select", "converters")

    def __init__(self, query: Any):
        self.model = query.model
        self.select = query._returning  # noqa: SLF001
        self.converters: list[tuple[int, Any]] | None = None

    def read(self, cursor: Any) -> list[tuple]:
        rows = cursor.fetchall()
        if not rows:
            return []
        if self.converters is None:
            wrapper = peewee.ModelTupleCursorWrapper(cursor, self.model, self.select)
            wrapper.initialize()
            self.converters = [(i, c) for i, c in enumerate(wrapper.converters) if c is not None]
        if not self.converters:
            return [tuple(row) for row in rows]
        found = []
        for row in rows:
            values = list(row)
            for i, convert in self.converters:
                values[i] = convert(values[i])
            found.append(tuple(values))
        return found


class _ModelRows:
    """Rows of a model SELECT built as peewee builds them, minus its per-field work.

    peewee makes each row a keyword dict and passes it through ``Model.__init__``,
    which sets every field through its descriptor, marks it dirty and then clears
    the marks; on the hot path that was most of reading a row. Here each row's
    ``__data__`` is filled directly (one ``dict(zip(...))`` of the row), with the same
    conversions (``python_value``) peewee chose for each column, except those that give
    back what the driver gave (integer and text columns, :func:`_read_as_is`: about 2% of
    a completion's instructions); a selected column that is not one of the model's
    own fields (an alias, a subquery, a joined table's column) becomes an attribute
    of the instance under its name, as peewee does for a single-table SELECT.
    """

    __slots__ = ("model", "select", "plan")

    def __init__(self, query: Any):
        self.model = query.model
        self.select = query._returning  # noqa: SLF001
        self.plan: tuple[Any, ...] | None = None

    def _make_plan(self, cursor: Any) -> tuple[tuple[str, ...], Callable[[Any], Any], list[tuple[int, str, Any]],
                                               list[tuple[int, str, Any]]]:
        wrapper = peewee.ModelObjectCursorWrapper(cursor, self.model, self.select, self.model)
        wrapper.initialize()  # peewee's own reading of the cursor's columns
        own, converted, other = [], [], []
        for index, (field, name, converter) in enumerate(
                zip(wrapper.fields, wrapper.unique_columns, wrapper.converters)):
            if isinstance(field, peewee.Field) and field.model is self.model and name == field.name:
                own.append((index, field.name))
                if converter is not None and not _read_as_is(field):
                    converted.append((index, field.name, converter))
            else:
                other.append((index, name, converter))
        positions = [index for index, _ in own]
        # The own columns as a tuple (itemgetter of a single index gives the bare value).
        pick = operator.itemgetter(*positions) if len(positions) > 1 else lambda row: tuple(row[i] for i in positions)
        return tuple(name for _, name in own), pick, converted, other

    def read(self, cursor: Any) -> list[Any]:
        rows = cursor.fetchall()
        if not rows:
            return []
        if self.plan is None:
            self.plan = self._make_plan(cursor)
        names, pick, converted, other = self.plan
        model, new = self.model, self.model.__new__
        found = []
        for row in rows:
            instance = new(model)
            instance.__data__ = data = dict(zip(names, pick(row)))
            for i, name, convert in converted:
                data[name] = convert(row[i])
            instance._dirty = set()
            instance.__rel__ = {}
            for i, name, convert in other:
                setattr(instance, name, row[i] if convert is None else convert(row[i]))
            found.append(instance)
        return found


#: Conversions that give back what SQLite's and PostgreSQL's drivers return for these
#: columns already (an int for an integer column, a str for a text one): skipped on read.
_AS_IS = (peewee.IntegerField.adapt, peewee._StringField.adapt)  # noqa: SLF001


def _read_as_is(field: peewee.Field) -> bool:
    if isinstance(field, peewee.ForeignKeyField):
        field = field.rel_field
    kind = type(field)
    return kind.python_value is peewee.Field.python_value and kind.adapt in _AS_IS


def loaded(model: type[peewee.Model], data: dict[str, Any]) -> peewee.Model:
    """An instance of ``model`` holding ``data`` (field name: Python value) as a row read
    from the database would: nothing marked dirty, no default filled in."""
    instance = model.__new__(model)
    instance.__data__ = data
    instance._dirty = set()
    instance.__rel__ = {}
    return instance


class Prepared:
    """A query built by ``build(*slots)``, compiled once per database.

    ``build`` receives one :class:`Slot` per value and returns the peewee query::

        LATEST = Prepared(lambda user, habit: HabitLog.select().where(
            (HabitLog.user == user) & (HabitLog.habit == habit)).order_by(HabitLog.id.desc()).limit(1))
        log = LATEST.first(db, user.id, habit.id)

    ``flat=True``: a SELECT with joins gives instances of its model alone, every column
    that is not one of the model's own fields (select the joined ones under aliases)
    an attribute of that instance, instead of peewee's graph of joined instances.
    """

    def __init__(self, build: Callable[..., Any], arity: int, *, flat: bool = False):
        self.build = build
        self.arity = arity
        self.flat = flat
        self._compiled: weakref.WeakKeyDictionary[peewee.Database, _Compiled] = weakref.WeakKeyDictionary()

    def compiled(self, db: peewee.Database) -> _Compiled:
        found = self._compiled.get(db)
        if found is None:
            query = self.build(*(Slot(i) for i in range(self.arity)))
            if isinstance(query, peewee.Insert) and db.returning_clause and query._returning is None:
                # What peewee adds when it runs an INSERT on PostgreSQL: the new row's key.
                primary_key = query.model._meta.primary_key
                query = query.returning(primary_key)
            sql, params = db.get_sql_context().sql(query).query()
            holes = [(position, p) for position, p in enumerate(params) if isinstance(p, _Hole)]
            if sorted({h.index for _, h in holes}) != list(range(self.arity)):
                raise ValueError("every slot of a prepared query must appear in its SQL")
            found = self._compiled[db] = _Compiled(sql, params, holes, query, self.flat)
            register = getattr(db, "register_statement", None)  # PostgreSQL: prepared on the server
            if register is not None:
                register(sql)
        return found

    def cursor(self, db: peewee.Database, *values: Any) -> Any:
        """Run it; the DB-API cursor."""
        return self._run(db, values)[1]

    def _bound(self, db: peewee.Database, values: Sequence[Any]) -> tuple[_Compiled, list[Any]]:
        if len(values) != self.arity:
            raise TypeError(f"this query takes {self.arity} values, got {len(values)}")
        compiled = self.compiled(db)
        return compiled, compiled.bind(values)

    def _run(self, db: peewee.Database, values: Sequence[Any]) -> tuple[_Compiled, Any]:
        compiled, params = self._bound(db, values)
        return compiled, db.execute_sql(compiled.sql, params)

    def rows(self, db: peewee.Database, *values: Any) -> Iterable[Any]:
        """Run a SELECT; its rows as peewee would give them (model instances by default)."""
        compiled, cursor = self._run(db, values)
        return compiled.reader(cursor)

    def first(self, db: peewee.Database, *values: Any) -> Any:
        """Run a SELECT; its first row, or None."""
        for row in self.rows(db, *values):
            return row
        return None

    def insert(self, db: peewee.Database, *values: Any) -> Any:
        """Run an INSERT; the new row's primary key (None when ON CONFLICT skipped it)."""
        cursor = self.cursor(db, *values)
        if db.returning_clause:
            row = cursor.fetchone()
            return row[0] if row else None
        return cursor.lastrowid if cursor.rowcount else None

    def write(self, db: peewee.Database, *values: Any) -> int:
        """Run an UPDATE, DELETE or INSERT; the number of rows it changed."""
        return db.rows_affected(self.cursor(db, *values))

    def write_at_commit(self, db: peewee.Database, *values: Any) -> None:
        """An UPDATE, DELETE or INSERT whose row count nobody reads: sent with the open
        transaction's COMMIT where the database can (``db.write_at_commit``: PostgreSQL,
        one round trip fewer), else run now."""
        queue = getattr(db, "write_at_commit", None)
        if queue is not None:
            compiled, params = self._bound(db, values)
            if queue(compiled.sql, tuple(params)):
                return
        self.write(db, *values)


def prepared_insert(model: type[peewee.Model], fields: Sequence[peewee.Field], *,
                    on_conflict_ignore: bool = False,
                    skip_if_exists: Sequence[peewee.Field] = ()) -> Prepared:
    """``model.insert`` of exactly ``fields`` (values in that order), compiled once.

    ``on_conflict_ignore``: any conflict skips the row. ``skip_if_exists``: a row with the
    same values of these (unique) columns skips it (``ON CONFLICT (...) DO NOTHING``);
    other constraint errors still raise. Every field with a default must be listed: a
    default left out would be frozen into the SQL at its first value.
    """
    listed = set(fields)
    missing = [f.name for f in model._meta.sorted_fields
               if f.default is not None and f not in listed and not f.primary_key]
    if missing:
        raise ValueError(f"prepared insert into {model.__name__} must list {', '.join(missing)}")

    def build(*slots: Slot) -> Any:
        query = model.insert({f: Slot(s.index, f.db_value) for f, s in zip(fields, slots)})
        if skip_if_exists:
            return query.on_conflict(conflict_target=list(skip_if_exists), action="NOTHING")
        return query.on_conflict_ignore() if on_conflict_ignore else query

    return Prepared(build, len(fields))


class PreparedShapes:
    """Prepared queries whose SQL depends on how many values each ``IN`` list holds:
    ``build(*groups)`` receives one tuple of slots per list, and each shape (the
    lengths) is compiled once. The first ``keep`` shapes are kept; rarer ones are
    compiled for each run.
    """

    def __init__(self, build: Callable[..., Any], *, keep: int = 64):
        self._build = build
        self._keep = keep
        self._by_shape: dict[tuple[int, ...], Prepared] = {}

    def shape(self, *counts: int) -> Prepared:
        found = self._by_shape.get(counts)
        if found is None:
            def build(*slots: Slot) -> Any:
                groups, start = [], 0
                for count in counts:
                    groups.append(slots[start:start + count])
                    start += count
                return self._build(*groups)

            found = Prepared(build, sum(counts))
            if len(self._by_shape) < self._keep:
                self._by_shape[counts] = found
        return found

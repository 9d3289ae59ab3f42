"""Spark column expressions written as SQL text: the subset of ``pyspark.sql.functions`` and of
``Column`` that the engine's checks use (``rule_columns``, ``nfkc``, ``columns``, ``engine``), same
names, same meaning.

Why: building a check as ``pyspark.sql.Column`` objects is a call into the JVM per function and per
operator. The checks of one feed took ~9,400 such calls (1.4 s), all sixteen feeds 20-25 s per run,
for a date of a few hundred rows. Here an expression is a Python string, built without the JVM; the
JVM parses each column once (``select``: one call per frame). The text is Spark SQL's own: every
function below is the SQL function of the same name, every operator the SQL operator the Column
operator stands for, so an expression means what the ``functions`` form meant (the unit tests of
``rule_columns``, ``nfkc`` and ``columns`` compare them with the Python definitions on real Spark).

A Python ``str`` given to a function is a literal (``lit``), never a column name: columns come only
from ``col``. Every composite is parenthesised, so precedence is never in question.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

_lambda_names = itertools.count()


def _string(value: str) -> str:
    """A SQL string literal: backslash and quote escaped, control characters as ``\\uXXXX``
    escapes (Spark's ``unescapeSQLString`` reads them back); every other character as itself (an
    escape would make the plan's text six times longer: ``nfkc``'s maps are thousands of them)."""
    out = []
    for ch in value:
        o = ord(ch)
        if ch in "\\'":
            out.append("\\" + ch)
        elif o < 0x20 or 0x7F <= o < 0xA0:
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def sql(value) -> str:
    """The SQL text of an expression or of a Python literal."""
    if isinstance(value, E):
        return value.sql
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value >= 0 else f"({value})"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bytes):
        return "X'" + value.hex().upper() + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


class E:
    """An expression, as SQL text."""

    __slots__ = ("sql",)

    def __init__(self, text: str):
        self.sql = text

    def __repr__(self) -> str:
        return f"E({self.sql[:80]!r})"

    def __bool__(self):
        raise TypeError("an expression has no truth value: use & | ~")

    __hash__ = None  # type: ignore[assignment]  # == builds an expression

    def _op(self, op: str, other) -> E:
        return E(f"({self.sql} {op} {sql(other)})")

    def _rop(self, op: str, other) -> E:
        return E(f"({sql(other)} {op} {self.sql})")

    def __and__(self, o):
        return self._op("AND", o)

    def __rand__(self, o):
        return self._rop("AND", o)

    def __or__(self, o):
        return self._op("OR", o)

    def __ror__(self, o):
        return self._rop("OR", o)

    def __invert__(self):
        return E(f"(NOT {self.sql})")

    def __eq__(self, o):
        return self._op("=", o)

    def __ne__(self, o):
        return self._op("!=", o)

    def __lt__(self, o):
        return self._op("<", o)

    def __le__(self, o):
        return self._op("<=", o)

    def __gt__(self, o):
        return self._op(">", o)

    def __ge__(self, o):
        return self._op(">=", o)

    def __add__(self, o):
        return self._op("+", o)

    def __radd__(self, o):
        return self._rop("+", o)

    def __sub__(self, o):
        return self._op("-", o)

    def __rsub__(self, o):
        return self._rop("-", o)

    def __mul__(self, o):
        return self._op("*", o)

    def __rmul__(self, o):
        return self._rop("*", o)

    def __truediv__(self, o):
        return self._op("/", o)

    def __mod__(self, o):
        return self._op("%", o)

    def __neg__(self):
        return E(f"(- {self.sql})")

    def isNull(self) -> E:
        return E(f"({self.sql} IS NULL)")

    def isNotNull(self) -> E:
        return E(f"({self.sql} IS NOT NULL)")

    def isin(self, *values) -> E:
        """Column.isin: the values, or one list or tuple of them."""
        if len(values) == 1 and isinstance(values[0], (list, tuple, set, frozenset)):
            values = tuple(values[0])
        items = [sql(v) for v in values]
        return E(f"({self.sql} IN ({', '.join(items)}))") if items else E("false")

    def rlike(self, pattern: str) -> E:
        return E(f"({self.sql} RLIKE {sql(pattern)})")

    def between(self, low, high) -> E:
        return E(f"({self.sql} BETWEEN {sql(low)} AND {sql(high)})")

    def cast(self, type_name: str) -> E:
        return E(f"CAST({self.sql} AS {type_name})")

    def try_cast(self, type_name: str) -> E:
        return E(f"TRY_CAST({self.sql} AS {type_name})")

    def startswith(self, prefix) -> E:
        return call("startswith", self, prefix)

    def endswith(self, suffix) -> E:
        return call("endswith", self, suffix)

    def column(self) -> Column:
        """The expression as a pyspark Column (one call into the JVM)."""
        return F.expr(self.sql)

    def alias(self, name: str) -> Column:
        return F.expr(self.sql).alias(name)


class When(E):
    """``when(...).when(...).otherwise(...)``: SQL's CASE."""

    __slots__ = ("branches",)

    def __init__(self, branches: list[tuple[str, str]], default: str | None = None):
        self.branches = branches
        body = " ".join(f"WHEN {c} THEN {v}" for c, v in branches)
        super().__init__(f"(CASE {body}{'' if default is None else ' ELSE ' + default} END)")

    def when(self, condition, value) -> When:
        return When([*self.branches, (sql(condition), sql(value))])

    def otherwise(self, value) -> E:
        return E(When(self.branches, sql(value)).sql)


def call(name: str, *args) -> E:
    return E(f"{name}({', '.join(sql(a) for a in args)})")


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> E:
    return E(quote(name))


def lit(value) -> E:
    return E(sql(value))


def when(condition, value) -> When:
    return When([(sql(condition), sql(value))])


def _lambda(fn: Callable[[E], E]) -> str:
    name = f"_lv{next(_lambda_names)}"
    return f"{name} -> {sql(fn(E(name)))}"


def let(value, fn: Callable[[E], E]) -> E:
    """``fn`` of ``value`` with ``value`` written once, however often ``fn`` uses it (a lambda's
    variable: the text of a long expression is not repeated, nor, at run time, its evaluation)."""
    return E(f"element_at(transform(array({sql(value)}), {_lambda(fn)}), 1)")


def interpreted(value: E) -> E:
    """``value``, evaluated by Spark's interpreter instead of compiled: the body of a higher-order
    function's lambda is never code-generated. For a branch only odd values take (a general path
    behind a fast one): its generated code would cost seconds of compiling, per query, and never
    pay that back."""
    return E(f"element_at(transform(array(0), {_lambda(lambda _: value)}), 1)")


def filter(array: E, fn: Callable[[E], E]) -> E:
    return E(f"filter({sql(array)}, {_lambda(fn)})")


def transform(array: E, fn: Callable[[E], E]) -> E:
    return E(f"transform({sql(array)}, {_lambda(fn)})")


def named_struct(fields: Iterable[tuple[str, E]]) -> E:
    return call("named_struct", *(x for name, value in fields for x in (name, value)))


def to_json(value: E, options: dict[str, str] | None = None) -> E:
    if not options:
        return call("to_json", value)
    return call("to_json", value, E(call("map", *(x for kv in options.items() for x in kv)).sql))


def create_map(*items) -> E:
    return call("map", *items)


def empty_strings() -> E:
    """An empty array of strings."""
    return E("CAST(array() AS ARRAY<STRING>)")


def null_string() -> E:
    return E("CAST(NULL AS STRING)")


def _fn(name: str) -> Callable[..., E]:
    def f(*args) -> E:
        return call(name, *args)

    f.__name__ = name
    f.__doc__ = f"SQL ``{name}``."
    return f


# the SQL functions of the same name (pyspark.sql.functions' meaning, literals for str arguments)
array = _fn("array")
array_join = _fn("array_join")
btrim = _fn("btrim")
coalesce = _fn("coalesce")
concat = _fn("concat")
convert_timezone = _fn("convert_timezone")
date_format = _fn("date_format")
element_at = _fn("element_at")
encode = _fn("encode")
floor = _fn("floor")
format_string = _fn("format_string")
greatest = _fn("greatest")
instr = _fn("instr")
least = _fn("least")
length = _fn("length")
lpad = _fn("lpad")
make_dt_interval = _fn("make_dt_interval")
make_timestamp_ntz = _fn("make_timestamp_ntz")
nullif = _fn("nullif")
octet_length = _fn("octet_length")
pmod = _fn("pmod")
position = _fn("position")
regexp_extract = _fn("regexp_extract")
regexp_replace = _fn("regexp_replace")
repeat = _fn("repeat")
replace = _fn("replace")
rpad = _fn("rpad")
sha2 = _fn("sha2")
size = _fn("size")
split = _fn("split")
substr = _fn("substr")
substring = _fn("substring")
translate = _fn("translate")
unhex = _fn("unhex")
upper = _fn("upper")


def select(df: DataFrame, columns: dict[str, E | str]) -> DataFrame:
    """``df.select`` of named expressions, parsed by the JVM in one call (a ``str``: a column of
    ``df`` by name)."""
    return df.selectExpr(*(f"{quote(v) if isinstance(v, str) else v.sql} AS {quote(k)}" for k, v in columns.items()))

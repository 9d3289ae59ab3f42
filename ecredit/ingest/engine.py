"""The row checks of ``quality.md`` in the engine (issue 16): the parser hands Spark each row's
values as sent, and every rule, normalisation and derived column is a Spark column expression.

The parser (``parse.iter_rows``, Python) decodes and splits the rows and finds the MALFORMED ones;
it yields per row only its file, its physical line, and its trimmed values (null markers null) in
the feed's column order, a personal name or phone already as asterisks (``raw_rows``). From those
``checked`` computes, per feed and delivery date, what ``checks.check_sent`` computes in Python:

- the values the rules judge (``checks.as_sent``): identifiers through ``nfkc.normalise_identifier``
  (``ids.normalise``), dates, months, timestamps, numbers and district codes through
  ``nfkc.normalise_value`` (``checks._nfkc``), and ``_identifier``;
- each rule of ``checks.rules_for`` as ``rule_columns.column_ok`` (``checks.value_ok``), hence the
  sorted reason codes;
- the values stored (``checks._normalised``, by ``columns``): dates ISO, timestamps in UTC with
  their Shanghai date, numbers plain; a value that failed its rule as sent;
- the warnings (a retired district), the operator key (the USCC, else ``NP-`` + HMAC of the ID
  number: ``columns.np_key``), the record key's string (``columns.key_string``);
- the masked payload of a row that is quarantined or warned (``checks.masked_payload``: the values
  as sent under the department's names, ID numbers and personal data as asterisks), as JSON.

The Python definitions stay: ``checks`` is the rules' one definition (the GX suites' pandas engine
runs it), and ``tests/reference_ingest.py`` keeps the former per-row Python ingest as the reference
``tests/unit/test_engine_ingest.py`` compares this with, row for row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from ecredit.core import checks
from ecredit.core.feeds import (
    DATE,
    DECIMAL,
    DISTRICT,
    ID_NO,
    INT,
    PII,
    RETIRED_DISTRICTS,
    SCORE,
    TIMESTAMP,
    USCC,
    Feed,
)
from ecredit.ingest import columns, nfkc, parse
from ecredit.ingest import sqlexpr as F
from ecredit.ingest.sqlexpr import E
from ecredit.quality import rule_columns

FILE_NO = "_file_no"  # the file's index in its (feed, date) group
MALFORMED_PAYLOAD = "_malformed"  # the masked payload (with its detail) of a MALFORMED row, else null


def raw_schema(feed: Feed) -> T.StructType:
    """What the parser hands Spark for one feed: the file's index, the physical line, the masked
    payload of a MALFORMED row, and every column of the feed as sent (personal data as asterisks)."""
    return T.StructType(
        [
            T.StructField(FILE_NO, T.IntegerType(), False),
            T.StructField("source_line", T.LongType(), False),
            T.StructField(MALFORMED_PAYLOAD, T.StringType(), True),
        ]
        + [T.StructField(c.name, T.StringType(), True) for c in feed.columns]
    )


def _stars(v: str | None) -> str | None:
    return None if v is None else "*" * len(v)


def raw_rows(feed: Feed, path: str, file_no: int, part: parse.Slice | None = None) -> Iterator[tuple]:
    """Every data row of one file (or of a slice of it) as a tuple of ``raw_schema(feed)``. Runs
    on the executors (or in the driver, for a small input). Personal names and phones leave as
    asterisks of their length: only the masked payload needs them."""
    names = [c.name for c in feed.columns]
    pii = [i for i, c in enumerate(feed.columns) if c.kind == PII]
    none = (None,) * len(names)
    with open(path, "rb") as stream:
        for raw in parse.iter_rows(stream, feed, part):
            if raw.values is None:
                masked = checks.masked_payload(feed, raw.fields, None, raw.header)
                masked["_detail"] = raw.malformed
                yield (file_no, raw.line, json.dumps(masked, ensure_ascii=False), *none)
                continue
            values = [raw.values[n] for n in names]
            for i in pii:
                values[i] = _stars(values[i])
            yield (file_no, raw.line, None, *values)


def _any(flags: list[E]) -> E:
    out: E = F.lit(False)
    for f in flags:
        out = out | f
    return out


def checked(raw: DataFrame, feed: Feed, delivery_date: dt.date, pii_key: str, wide: list[str]) -> DataFrame:
    """The rows of one feed's files of one delivery date (``raw_schema``), checked: ``dept``,
    ``source_line``, ``operator_key``, ``natural_person``, ``key_str``, ``reasons``, ``warnings``,
    ``payload``, the ``wide`` columns (the feed's normalised values; the other feeds' null),
    ``as_sent`` (a map, null for a MALFORMED row) and ``_file_no``. Three projections, each column
    computed once: the values as sent, each rule's verdict, what is stored."""
    # 1. the values the rules judge (checks.as_sent)
    sent: dict[str, E] = {}
    for c in feed.columns:
        if c.kind == PII:
            continue
        v = F.col(c.name)
        if c.kind in (USCC, ID_NO):
            sent[c.name] = nfkc.normalise_identifier(v)
        elif c.kind in checks.NFKC_KINDS:
            sent[c.name] = nfkc.normalise_value(v)
        else:
            sent[c.name] = v
    keep = {n: n for n in (FILE_NO, "source_line", MALFORMED_PAYLOAD)}
    first = F.select(
        raw,
        {**keep, **{"_r_" + c.name: c.name for c in feed.columns}, **{"_s_" + n: v for n, v in sent.items()}},
    )
    # checks.as_sent: the USCC, else the ID number (a feed without either: null)
    ids_sent = [F.col("_s_" + n) for n in ("uscc", "id_no") if n in sent]
    identifier = F.coalesce(*ids_sent) if ids_sent else F.null_string()
    names = [n for n in sent] + [checks.IDENTIFIER]
    rules = [r for r in checks.rules_for(feed) if r.column != checks.DUPLICATE_NOT_LAST]
    # 2. each rule's verdict, once
    second = F.select(
        first,
        {
            **{c: c for c in first.columns},
            "_s_" + checks.IDENTIFIER: identifier,
            **{
                f"_ok{i}": rule_columns.column_ok(
                    r, identifier if r.column == checks.IDENTIFIER else F.col("_s_" + r.column), delivery_date
                )
                for i, r in enumerate(rules)
            },
        },
    )
    failed = [~F.col(f"_ok{i}") for i in range(len(rules))]
    reasons = F.filter(
        F.array(
            *(
                F.when(_any([failed[i] for i, r in enumerate(rules) if r.code == code]), code)
                for code in sorted({r.code for r in rules})
            )
        ),
        lambda x: x.isNotNull(),
    )
    # 3. the values stored (checks._normalised), the warnings, the keys
    stored: dict[str, E] = {}
    warnings: list[E] = []
    for c in feed.columns:
        if c.kind in (PII, ID_NO):
            continue
        v = F.col("_s_" + c.name)
        ok = v.isNotNull() & ~_any([failed[i] for i, r in enumerate(rules) if r.column == c.name])
        if c.kind == DATE:
            stored[c.name] = F.when(ok, columns.iso_date(v, feed.date_format)).otherwise(v)
        elif c.kind == TIMESTAMP:
            stored[c.name] = F.when(ok, columns.utc_timestamp(v)).otherwise(v)
            stored[c.name + "_date"] = F.when(ok, columns.shanghai_date(v))
        elif c.kind in (DECIMAL, SCORE, INT):
            stored[c.name] = F.when(ok, columns.plain_number(v, c.kind)).otherwise(v)
        else:
            stored[c.name] = v
        if c.kind == DISTRICT:
            warnings.append(F.when(ok & v.isin(RETIRED_DISTRICTS), checks.RETIRED_DISTRICT))
    bad_uscc = _any([failed[i] for i, r in enumerate(rules) if r.code == checks.BAD_USCC])
    bad_id = _any([failed[i] for i, r in enumerate(rules) if r.code == checks.BAD_ID_NO])
    uscc = F.col("_s_uscc") if "uscc" in sent else F.null_string()
    id_no = F.col("_s_id_no") if "id_no" in sent else F.null_string()
    by_id = uscc.isNull() & id_no.isNotNull() & ~bad_id
    operator_key = F.when(uscc.isNotNull() & ~bad_uscc, uscc).when(by_id, columns.np_key(id_no, pii_key))
    warned = F.filter(F.array(*warnings), lambda x: x.isNotNull()) if warnings else F.empty_strings()
    third = F.select(
        second,
        {
            **keep,
            "_reasons": reasons,
            "_warnings": warned,
            "_operator_key": operator_key,
            "_natural": by_id,
            **{"_v_" + n: v for n, v in stored.items()},
            **{"_s_" + n: "_s_" + n for n in names},
            **{"_r_" + c.name: "_r_" + c.name for c in feed.columns},
        },
    )
    # 4. the row as written
    values = {n: F.col("_v_" + n) for n in stored}
    malformed = F.col(MALFORMED_PAYLOAD).isNotNull()
    listed = (F.size(F.col("_reasons")) > 0) | (F.size(F.col("_warnings")) > 0)
    # the masked payload of a row that is listed (quarantined or warned): the values as sent,
    # under the department's names, ID numbers as asterisks (personal data came as asterisks)
    masked = F.to_json(
        F.named_struct(
            (c.source, F.repeat("*", F.length(F.col("_r_" + c.name))) if c.kind == ID_NO else F.col("_r_" + c.name))
            for c in feed.columns
        ),
        {"ignoreNullFields": "false"},
    )
    as_sent = F.create_map(*(x for n in names for x in (n, F.col("_s_" + n))))

    def parsed(value: E, if_malformed=None) -> E:
        return F.when(malformed, if_malformed).otherwise(value)

    return F.select(
        third,
        {
            "dept": F.lit(feed.dept),
            "source_line": "source_line",
            "operator_key": parsed(F.col("_operator_key")),
            "natural_person": parsed(F.col("_natural"), False),
            "key_str": parsed(columns.key_string(feed, values, F.col("_operator_key"))),
            "reasons": parsed(F.col("_reasons"), F.array(checks.MALFORMED)),
            "warnings": parsed(F.col("_warnings"), F.empty_strings()),
            "payload": F.when(malformed, F.col(MALFORMED_PAYLOAD)).when(listed, masked),
            **{n: parsed(values[n]) if n in values else F.null_string() for n in wide},
            checks.AS_SENT: parsed(as_sent),
            FILE_NO: FILE_NO,
        },
    )

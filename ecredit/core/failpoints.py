"""Failpoints: named places where the fault-injection tests (``tests/integration/test_faults.py``)
crash a stage on purpose.

``hit(name)`` does nothing unless the environment variable ``CREDIT_FAILPOINT`` equals ``name``;
then the process kills itself with SIGKILL at that point: no ``finally``, no ``atexit``, no
rollback, as when the OOM killer, an operator's ``kill -9`` or a power cut ends a job. Under
spark-submit the killed process is the Python driver; its JVM sees the driver die and exits.
Never set ``CREDIT_FAILPOINT`` outside tests.

The failpoints: ``ingest.rows_written`` (the parsed rows are in the lake, no done-marker yet),
``publish.staged`` (inside publish's transaction: on PostgreSQL every table's rows copied into it,
nothing committed; on the embedded default every table staged, nothing swapped),
``publish.swapping`` (inside the transaction, at its last statement on PostgreSQL; on the embedded
default after the first table is swapped), ``publish.committed`` (the transaction committed, the
success not yet recorded in ``pipeline_run``; tested in ``tests/integration/test_published_past.py``).
"""

from __future__ import annotations

import os
import signal

ENV = "CREDIT_FAILPOINT"


def hit(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

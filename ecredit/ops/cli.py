"""The ``ecredit`` command line.

ecredit generate --out DIR --operators N --dates D1,D2,... --seed S [--dirty-rate R]
ecredit run --date D [--full]        the DAG for D, in-process (Airflow's test runner); --full folds every delivery again
ecredit backfill --from D1 --to D2   the DAG for each date in order
ecredit ui                           Airflow (api-server, scheduler, dag-processor, triggerer)
ecredit demo                         generate, run a few dates, print a summary
ecredit verify-plan --date D [--version N]   re-run the inspection draw of D (a version) from the published tables
ecredit migrate [--url URL]          apply the warehouse migrations (sql/migrations), roles included
ecredit scan-pii [--data-dir DIR]    search the warehouse, outbox, lake and Airflow for personal data
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path


def _dates(text: str) -> list[dt.date]:
    try:
        return [dt.date.fromisoformat(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"dates must be YYYY-MM-DD separated by commas ({e})") from None


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _version(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a version is a whole number from 1, not {text!r}")
    return int(text)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_generate(args) -> int:
    from ecredit.generate import generate

    t0 = time.time()
    summary = generate(Path(args.out), args.operators, args.dates, args.seed, args.dirty_rate, progress=_progress)
    print(f"generated deliveries for {len(args.dates)} date(s) in {args.out} in {time.time() - t0:.1f} s")
    if isinstance(summary, dict) and summary.get("dirty"):
        print("dirty rows injected:", ", ".join(f"{k} {v}" for k, v in sorted(summary["dirty"].items())))
    return 0


def _check_settings(warehouse: bool = False) -> int | None:
    from ecredit.core import rules, settings

    try:
        cfg = settings.load(check_landing=True)
        rules.load(cfg.rules_path)  # the whole rules file (RulesError is a SettingError)
        if warehouse:  # reachable and migrated, before any task starts
            from ecredit.warehouse import publish

            publish.connect(cfg).dispose()
    except settings.SettingError as e:
        print(f"ecredit: {e}", file=sys.stderr)
        return 2
    return None


def cmd_run(args) -> int:
    bad = _check_settings(warehouse=True)
    if bad:
        return bad
    from ecredit.airflow import env as airflow_env
    from ecredit.airflow import runner

    airflow_env.prepare_airflow_env(migrate=False)  # AIRFLOW_HOME, so the log file's place; migrated in the run
    log_file = runner.log_file_path("run")
    print(f"ecredit run {args.date}: Airflow, Spark and GX logs in {log_file}", flush=True)
    with runner.output_to_log_file(log_file) as console:
        ok = runner.run_dag_for_date(args.date.isoformat(), console=console, full=args.full)
    print(f"ecredit run {args.date}: {'success' if ok else 'FAILED'}" + ("" if ok else f"; see {log_file}"))
    return 0 if ok else 1


def cmd_backfill(args) -> int:
    if args.to_date < args.from_date:
        print("ecredit: --to must not be before --from", file=sys.stderr)
        return 2
    bad = _check_settings(warehouse=True)
    if bad:
        return bad
    from ecredit.airflow import env as airflow_env
    from ecredit.airflow import runner

    airflow_env.prepare_airflow_env(migrate=False)
    log_file = runner.log_file_path("backfill")
    print(f"ecredit backfill {args.from_date}..{args.to_date}: Airflow, Spark and GX logs in {log_file}", flush=True)
    with runner.output_to_log_file(log_file) as console:
        ok = runner.backfill(args.from_date, args.to_date, console=console)
    print(
        f"ecredit backfill {args.from_date}..{args.to_date}: {'success' if ok else 'FAILED'}"
        + ("" if ok else f"; see {log_file}")
    )
    return 0 if ok else 1


def cmd_ui(args) -> int:
    bad = _check_settings()
    if bad:
        return bad
    from ecredit.airflow import env as airflow_env
    from ecredit.airflow import ui

    airflow_env.prepare_airflow_env()
    return ui.start_ui(port=args.port)


def cmd_demo(args) -> int:
    data = Path(args.data_dir).resolve()
    os.environ["CREDIT_DATA_DIR"] = str(data)
    for var in ("CREDIT_LANDING_DIR", "CREDIT_LAKE_DIR", "CREDIT_OUTBOX_DIR", "CREDIT_WAREHOUSE_URL"):
        os.environ.pop(var, None)
    import shutil

    for sub in ("landing", "lake", "outbox", "warehouse.db"):
        p = data / sub
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    from ecredit import generate as generate_mod
    from ecredit.airflow import env as airflow_env
    from ecredit.airflow import runner

    t0 = time.time()
    airflow_env.prepare_airflow_env(migrate=False)
    log_file = runner.log_file_path("demo")
    print(f"demo: Airflow, Spark and GX logs in {log_file}", flush=True)
    with runner.output_to_log_file(log_file) as console:
        console.line(f"demo: generating {args.operators} operators' deliveries for {', '.join(map(str, args.dates))}")
        generate_mod.generate(
            data / "landing",
            args.operators,
            args.dates,
            args.seed,
            args.dirty_rate,
            progress=runner.GenerationProgress(console, args.dates),
        )
        airflow_env.prepare_airflow_env()
        for i, d in enumerate(args.dates):
            console.line(f"demo: running the DAG for {d}")
            if not runner.run_dag_for_date(d.isoformat(), console=console):
                console.line(f"demo: the run of {d} FAILED; see {log_file}")
                return 1
            console.bar(i + 1, len(args.dates), "dates")
    from ecredit.core import settings as settings_mod
    from ecredit.outputs import report

    print(report.summary(args.dates[-1]))
    print(f"run report: {report.report_path(settings_mod.load(), args.dates[-1]).as_uri()}")
    print(f"demo finished in {time.time() - t0:.0f} s")
    return 0


def cmd_verify_plan(args) -> int:
    from ecredit.core import settings
    from ecredit.scoring import draw

    try:
        return draw.main_verify(args.date.isoformat(), settings.load().warehouse_url, args.version)
    except settings.SettingError as e:
        print(f"ecredit: {e}", file=sys.stderr)
        return 2


def cmd_migrate(args) -> int:
    from ecredit.core import settings
    from ecredit.warehouse import migrations
    from ecredit.warehouse import schema as warehouse

    try:
        url = args.url or settings.load().warehouse_url
        eng = warehouse.engine_for(url)
        done = migrations.migrate(eng)
    except settings.SettingError as e:
        print(f"ecredit: {e}", file=sys.stderr)
        return 2
    except migrations.MigrationError as e:
        print(f"ecredit: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - an unreachable server, a role without the rights
        print(
            f"ecredit: the warehouse at {eng.url.render_as_string(hide_password=True)} cannot be migrated: "
            f"{str(getattr(e, 'orig', e)).strip()}",
            file=sys.stderr,
        )
        return 1
    print("applied: " + (", ".join(done) if done else "nothing (the schema is up to date)"))
    return 0


def cmd_scan_pii(args) -> int:
    from ecredit.ops import scan_pii

    return scan_pii.run(args.data_dir, args.also)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ecredit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write department deliveries (feeds.md)")
    g.add_argument("--out", required=True, help="landing folder to write")
    g.add_argument("--operators", type=int, required=True)
    g.add_argument("--dates", type=_dates, required=True, help="D1,D2,... (the first is the history load)")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--dirty-rate", type=float, default=0.0, help="fraction of rows made dirty (quality.md)")
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("run", help="run the DAG for one date, in-process")
    r.add_argument("--date", type=_date, required=True)
    r.add_argument(
        "--full",
        action="store_true",
        help="fold every applied delivery dated <= D again, not from the last checkpoint (after a rules or key change it happens by itself)",
    )
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("backfill", help="run the DAG for each date of a range, in order")
    b.add_argument("--from", dest="from_date", type=_date, required=True)
    b.add_argument("--to", dest="to_date", type=_date, required=True)
    b.set_defaults(func=cmd_backfill)

    u = sub.add_parser("ui", help="start Airflow with the project's DAGs")
    u.add_argument("--port", type=int, default=8080)
    u.set_defaults(func=cmd_ui)

    d = sub.add_parser("demo", help="generate deliveries, run the DAG for a few dates, print a summary")
    d.add_argument("--data-dir", default="data")
    d.add_argument("--operators", type=int, default=2000)
    d.add_argument("--dates", type=_dates, default=_dates("2026-11-01,2026-11-02,2026-11-03"))
    d.add_argument("--seed", type=int, default=20200710)
    d.add_argument("--dirty-rate", type=float, default=0.01)
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("migrate", help="bring the warehouse's schema up to date (sql/migrations), roles included")
    m.add_argument("--url", help="an administrator's SQLAlchemy URL (default: CREDIT_WAREHOUSE_URL)")
    m.set_defaults(func=cmd_migrate)

    v = sub.add_parser("verify-plan", help="re-run the inspection draw of D from the published tables")
    v.add_argument("--date", type=_date, required=True)
    v.add_argument("--version", type=_version, help="the version of D's draw to check (default: the one in force)")
    v.set_defaults(func=cmd_verify_plan)

    s = sub.add_parser(
        "scan-pii",
        help="search the warehouse, outbox, lake, Airflow logs and metadata DB for "
        "personal data and the secrets (exit 1 on any hit)",
    )
    s.add_argument("--data-dir", help="the parent of landing, lake, outbox and warehouse.db (CREDIT_DATA_DIR)")
    s.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="FILE",
        help="a further text file to search, e.g. a captured console (repeatable)",
    )
    s.set_defaults(func=cmd_scan_pii)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "operators", 1) is not None and getattr(args, "operators", 1) < 1:
        print("ecredit: --operators must be at least 1", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

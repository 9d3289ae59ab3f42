"""Alembic's environment for the warehouse (decision 93).

The database: the engine handed over by ``ecredit.warehouse.migrations`` (``ecredit migrate``, the
pipeline), else ``alembic -x url=<SQLAlchemy URL>``, else ``sqlalchemy.url`` of alembic.ini if set,
else the project's setting ``CREDIT_WAREHOUSE_URL`` (``ecredit.core.settings``; default: the
embedded ``<CREDIT_DATA_DIR>/warehouse.db``). Before anything runs, ``migrations.prepare`` creates
the ledger, adopts a database of the old runner and applies the checksum guard; then each revision
runs in its own transaction (SQLite included: see ``migrations.migration_engine``).
"""

from logging.config import fileConfig

from alembic import context

from ecredit.warehouse import migrations

config = context.config
if config.config_file_name is not None and not config.attributes.get("engine"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url():
    x = context.get_x_argument(as_dictionary=True)
    if x.get("url"):
        return x["url"]
    if config.attributes.get("url"):
        return config.attributes["url"]
    if config.get_main_option("sqlalchemy.url"):
        return config.get_main_option("sqlalchemy.url")
    from ecredit.core import settings

    return settings.load().warehouse_url


def run_migrations_offline() -> None:
    raise migrations.MigrationError(
        "offline (--sql) mode is not offered: the SQL files under sql/migrations/ are "
        "the scripts; run them with `alembic upgrade` against the database"
    )


def run_migrations_online() -> None:
    given = config.attributes.get("engine")
    if given is not None and given.dialect.name != "sqlite":
        engine = given  # the caller's engine (its pool, its connect arguments)
    else:
        engine = migrations.migration_engine(given.url if given is not None else _url())
    folder = config.attributes.get("sql_dir") or migrations.MIGRATIONS_DIR
    try:
        with engine.connect() as connection:
            migrations.prepare(connection, context.script, folder)
            context.configure(connection=connection, transaction_per_migration=True, transactional_ddl=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if engine is not given:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

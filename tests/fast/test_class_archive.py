"""The class-data archive of spark-submit's JVMs (decision 118, ``ecredit.spark.class_archive``): the
option a job gets, the dump's claim and its move into place. The real JVMs writing and mapping it:
tests/integration/test_end_to_end.py."""

from __future__ import annotations

import os
import time

import pytest

from ecredit import spark as spark_mod
from ecredit.core import settings as settings_mod


def test_the_first_job_dumps_and_a_successful_dump_becomes_the_archive(tmp_path):
    cache = tmp_path / "jvm"
    key = spark_mod.class_archive_key()
    assert key is not None and len(key) == 16
    option, dump = spark_mod.class_archive(cache)
    assert dump is not None and dump.parent == cache and dump.name.endswith(".part")
    assert option == f"-XX:ArchiveClassesAtExit={dump}"
    assert dump.exists()  # claimed while the JVM runs
    # a second job while the first dumps: no option, no second dump
    assert spark_mod.class_archive(cache) == ("", None)
    dump.write_bytes(b"\0" * 64)  # what the JVM writes at its exit
    spark_mod.keep_class_archive(dump, succeeded=True)
    archive = cache / f"spark-classes-{key}.jsa"
    assert sorted(p.name for p in cache.iterdir()) == [archive.name]
    assert spark_mod.class_archive(cache) == (f"-XX:SharedArchiveFile={archive}", None)


def test_a_failed_or_empty_dump_is_deleted(tmp_path):
    for succeeded, content in ((False, b"\0" * 64), (True, b"")):
        option, dump = spark_mod.class_archive(tmp_path)
        assert dump is not None and option.startswith("-XX:ArchiveClassesAtExit=")
        dump.write_bytes(content)
        spark_mod.keep_class_archive(dump, succeeded)
        assert list(tmp_path.iterdir()) == []


def test_a_dump_left_by_a_killed_job_does_not_stop_the_next(tmp_path):
    _, left = spark_mod.class_archive(tmp_path)
    assert left is not None
    old = time.time() - spark_mod.DUMP_STALE_S - 60
    os.utime(left, (old, old))
    option, dump = spark_mod.class_archive(tmp_path)
    assert dump is not None and dump != left and not left.exists()
    assert option == f"-XX:ArchiveClassesAtExit={dump}"


def test_no_archive_without_a_cache_folder_or_with_a_space_in_its_path(tmp_path):
    assert spark_mod.class_archive(None) == ("", None)
    assert spark_mod.class_archive(tmp_path / "a b") == ("", None)  # Spark splits the options on spaces
    assert not (tmp_path / "a b").exists()


def test_the_key_changes_with_spark_s_jars(tmp_path, monkeypatch):
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "a.jar").write_bytes(b"1")
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    one = spark_mod.class_archive_key()
    (jars / "a.jar").write_bytes(b"12")
    two = spark_mod.class_archive_key()
    assert one and two and one != two


def test_a_retry_s_options_hold_one_archive_option():
    opts = "-XX:TieredStopAtLevel=1 -XX:ArchiveClassesAtExit=/c/x.part"
    assert spark_mod.with_java_option(opts, "-XX:SharedArchiveFile=/c/a.jsa") == (
        "-XX:TieredStopAtLevel=1 -XX:SharedArchiveFile=/c/a.jsa"
    )
    assert spark_mod.with_java_option(opts, "") == "-XX:TieredStopAtLevel=1"
    assert spark_mod.with_java_option("", "-XX:SharedArchiveFile=/c/a.jsa") == "-XX:SharedArchiveFile=/c/a.jsa"


def test_the_setting(tmp_path):
    base = {"CREDIT_DATA_DIR": str(tmp_path), "HOME": str(tmp_path / "home")}
    assert settings_mod.load({**base}).jvm_cache_dir == tmp_path / "home" / ".cache" / "ecredit" / "jvm"
    xdg = settings_mod.load({**base, "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert xdg.jvm_cache_dir == tmp_path / "xdg" / "ecredit" / "jvm"
    assert settings_mod.load({**base, "CREDIT_JVM_CACHE_DIR": "off"}).jvm_cache_dir is None
    chosen = settings_mod.load({**base, "CREDIT_JVM_CACHE_DIR": str(tmp_path / "c")})
    assert chosen.jvm_cache_dir == tmp_path / "c"
    assert settings_mod.load(chosen.as_env()).jvm_cache_dir == tmp_path / "c"  # to spark-submit's child
    assert settings_mod.load({**base, "CREDIT_JVM_CACHE_DIR": "off"}).as_env()["CREDIT_JVM_CACHE_DIR"] == "off"
    (tmp_path / "file").write_text("x")
    with pytest.raises(settings_mod.SettingError, match="CREDIT_JVM_CACHE_DIR"):
        settings_mod.load({**base, "CREDIT_JVM_CACHE_DIR": str(tmp_path / "file")})

"""Shared entry-point plumbing for the spark-submit applications: arguments, logging, the path."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys

# spark-submit runs this file directly: make the repository importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--date", required=True, type=dt.date.fromisoformat, help="run date D (YYYY-MM-DD)")
    p.add_argument(
        "--full",
        nargs="?",
        const="true",
        default="false",
        choices=["true", "false"],
        help="fold every applied delivery again instead of starting from a checkpoint (`--full` or `--full true`)",
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = p.parse_args()
    args.full = args.full == "true"
    return args

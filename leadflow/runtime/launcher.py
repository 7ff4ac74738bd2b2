"""Start one stream worker: `python -m services.<name> [--web-port N]`.

Order matters: topics and indexes exist before the first record is consumed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import faust

from leadflow.runtime.admin import ensure_topics
from leadflow.runtime.settings import WorkerSettings
from leadflow.runtime.worker import run

S = TypeVar("S", bound=WorkerSettings)


def launch(
    *,
    settings_class: type[S],
    prepare_store: Callable[[S], Awaitable[None]],
    bootstrap: Callable[[S], faust.App],
) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--web-port", type=int, default=None)
    args = parser.parse_args()
    overrides = {"web_port": args.web_port} if args.web_port else {}
    settings = settings_class(**overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ensure_topics(
        settings.kafka_bootstrap,
        prefix=settings.topic_prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )
    asyncio.run(prepare_store(settings))
    run(bootstrap(settings), settings)

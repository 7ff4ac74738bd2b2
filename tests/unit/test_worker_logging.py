"""A worker's log level is what its settings say, whatever Faust's terminal spinner would do."""

from __future__ import annotations

import logging

import faust
import pytest
from faust.worker import Worker

from leadflow.runtime.worker import quiet_worker


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def _root_level_after_setup(worker) -> int:
    worker._setup_logging()  # what execute_from_commandline does first
    return logging.getLogger().level


def test_faust_s_own_worker_turns_the_root_logger_to_debug_at_warning(root_logging, tmp_path):
    # The reason for quiet_worker: if Faust ever stops doing this, the subclass can go.
    app = faust.App("logging-probe", store="memory://", datadir=str(tmp_path))
    assert _root_level_after_setup(Worker(app, loglevel="WARNING")) == logging.DEBUG


@pytest.mark.parametrize("level", ["WARNING", "ERROR", "INFO"])
def test_a_leadflow_worker_s_root_logger_stays_at_its_level(root_logging, tmp_path, level):
    app = faust.App("logging-probe", store="memory://", datadir=str(tmp_path))
    assert _root_level_after_setup(quiet_worker(app, level)) == logging.getLevelName(level)
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)

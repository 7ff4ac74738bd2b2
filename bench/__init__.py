"""Benchmarks (`make bench`); each prints its figures and the machine they were measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """The machine line every benchmark prints first."""
    return (f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} "
            f"{platform.python_version()}, {Path('/proc/meminfo').read_text().split()[1]} kB RAM")

"""The house style is part of the build: ruff (lint + format) and mypy (strict on the cores)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import IN_CI, REPO_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def _require(module: str) -> None:
    if shutil.which(module) is None and _run(sys.executable, "-m", module, "--version").returncode:
        if IN_CI:
            pytest.fail(f"{module} is not installed (pip install -e '.[dev]')")
        pytest.skip(f"{module} is not installed")


def test_ruff_lint() -> None:
    _require("ruff")
    done = _run(sys.executable, "-m", "ruff", "check", "--output-format", "concise", "src", "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format() -> None:
    _require("ruff")
    done = _run(sys.executable, "-m", "ruff", "format", "--check", "src", "tests")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy() -> None:
    _require("mypy")
    # pyproject.toml: the whole package typed, the protocol cores --strict.
    done = _run(sys.executable, "-m", "mypy")
    assert done.returncode == 0, done.stdout + done.stderr

"""The `crawl` sub-command: how it plugs into the main parser and what it accepts."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from h2books.client.cli import build_parser, cmd_crawl, main_crawl, register


def test_register_adds_crawl_with_its_handler() -> None:
    parser = argparse.ArgumentParser(prog="h2books")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["crawl", "https://localhost:8443"])
    assert args.handler is cmd_crawl
    assert args.url == "https://localhost:8443"
    assert args.http2 is True
    assert (args.concurrency, args.connections, args.chunked) == (100, 1, False)
    assert (args.timeout, args.request_timeout) == (30.0, 10.0)
    assert (args.cacert, args.insecure, args.json) == (None, False, False)


def test_options() -> None:
    args = build_parser().parse_args(
        [
            "http://h",
            "--http1",
            "--concurrency",
            "7",
            "--chunked",
            "--connections",
            "3",
            "--cacert",
            "/ca.pem",
            "--insecure",
            "--timeout",
            "0",
            "--request-timeout",
            "2.5",
            "--json",
        ]
    )
    assert args.http2 is False
    assert (args.concurrency, args.chunked, args.connections) == (7, True, 3)
    assert args.cacert == Path("/ca.pem") and args.insecure and args.json
    assert args.timeout is None  # 0 = no limit
    assert args.request_timeout == 2.5


@pytest.mark.parametrize(
    "argv",
    [
        ["http://h", "--http1", "--http2"],
        ["http://h", "--concurrency", "0"],
        ["http://h", "--connections", "many"],
        ["http://h", "--timeout", "-1"],
        ["http://h", "--books", "0"],
        [],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == 2


def test_bad_url_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_crawl(["ftp://h"]) == 1
    err = capsys.readouterr().err
    assert err == "h2books crawl: error: invalid URL 'ftp://h': the scheme must be http or https\n"

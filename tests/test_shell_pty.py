"""System tests of the interactive shell: a real pseudo-terminal types into ``atlasql sql``
connected to a real 3-node cluster, and the tests assert on what the terminal shows.

``TERM=dumb`` makes prompt_toolkit print plain text (the prompt, then each typed character)
with no cursor movement, so the screen is a readable stream. In that mode a completion is
echoed only by its last character, so TAB completion is checked by what the completed
statement does (``\\d us<TAB>`` must describe ``users``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

PROMPT = "atlasql> "
TIMEOUT = 10


@pytest.fixture
def cluster(module_cluster: Any) -> Any:
    return module_cluster


def wait_raw(child: pexpect.spawn) -> None:
    """Wait until the prompt has put the terminal in raw mode (echo off).

    Keys sent earlier reach a terminal still in line mode, where ^C is a signal and ^D is
    end-of-file rather than keys for the prompt.
    """
    assert child.waitnoecho(timeout=TIMEOUT), "the prompt never took the terminal"


def wait_cooked(child: pexpect.spawn) -> None:
    """Wait until the prompt has handed the terminal back (echo on): a statement is running."""
    deadline = time.monotonic() + TIMEOUT
    while not child.getecho():
        assert time.monotonic() < deadline, "the prompt never released the terminal"
        time.sleep(0.01)


@pytest.fixture
def spawn_shell(cluster: Any, tmp_path: Path) -> Iterator[Any]:
    """Start ``atlasql sql --host n1`` in a 40x120 pseudo-terminal; yields a factory."""
    children: list[pexpect.spawn] = []

    def start(**extra_env: str) -> pexpect.spawn:
        env = dict(os.environ, TERM="dumb", HOME=str(tmp_path), ATLASQL_PAGER="off")
        env.update(extra_env)
        child = pexpect.spawn(
            sys.executable,
            ["-m", "sqlfront.cli", "sql", "--host", cluster.addr(1)],
            env=env,
            cwd=str(Path(__file__).resolve().parent.parent),
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(40, 120),
        )
        children.append(child)
        child.expect_exact("# Connected to atlasql")
        child.expect_exact(PROMPT)
        wait_raw(child)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def run(child: pexpect.spawn, line: str, *expected: str) -> str:
    """Type ``line`` + Enter, wait for each expected text in order, then for the next prompt;
    returns everything printed after the line."""
    child.sendline(line)
    seen = ""
    for text in expected:
        child.expect_exact(text)
        seen += child.before + text
    child.expect_exact(PROMPT)
    wait_raw(child)
    return seen + child.before


def test_interactive_session_statements_meta_commands_completion_and_exit(
    spawn_shell: Any,
) -> None:
    child = spawn_shell()
    run(
        child,
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);",
        "CREATE TABLE",
    )
    run(child, "CREATE INDEX users_name ON users(name);", "CREATE INDEX")

    # A statement over two lines runs once, when the ';' arrives.
    child.sendline("INSERT INTO users VALUES (1, 'ada', NULL),")
    child.sendline("  (2, 'grace', 'compilers');")
    child.expect_exact("INSERT 2")
    child.expect_exact(PROMPT)
    assert "ERROR" not in child.before
    wait_raw(child)

    screen = run(child, "SELECT id, name, note FROM users ORDER BY id;", "(2 rows)")
    assert " 1 | ada   | NULL" in screen
    assert " 2 | grace | compilers" in screen

    screen = run(child, "\\dt", "List of tables", "(1 row)")
    assert "users" in screen

    screen = run(child, "\\d users", 'Table "users"', "Ranges:", "leader n")
    assert "INTEGER" in screen and "not null" in screen
    assert '"users_name" (name)' in screen
    assert "replicas n1, n2, n3" in screen

    # TAB completes the table name from the live catalog (refreshed after the CREATE).
    child.send("SELECT name FROM us\t")
    child.expect_exact("s")
    screen = run(child, " WHERE id = 2;", "(1 row)")
    assert "grace" in screen and "ERROR" not in screen
    child.send("\\d us\t")
    run(child, "", 'Table "users"', "Primary key: (id)")

    run(child, "\\x", "Expanded display is on.")
    screen = run(child, "SELECT id, name FROM users WHERE id = 1;", "-[ RECORD 1 ]")
    assert "id   | 1" in screen and "name | ada" in screen
    run(child, "\\x", "Expanded display is off.")

    run(child, "\\timing", "Timing is on.")
    run(child, "SELECT count(*) FROM users;", "(1 row)", "Time: ", " ms")

    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_clears_the_line_and_stops_waiting_for_a_slow_statement(
    spawn_shell: Any,
) -> None:
    child = spawn_shell()
    child.send("SELECT 'half typed")
    child.expect_exact("half typed")
    child.sendintr()
    child.expect_exact(PROMPT)
    screen = run(child, "SELECT 40 + 2 AS answer;", "(1 row)")
    assert "42" in screen and "half typed" not in screen and "ERROR" not in screen

    # A statement that takes seconds on the server: Ctrl-C returns to the prompt at once.
    # ^C is sent once the prompt has handed the terminal back; if it still reaches the prompt
    # as it closes (the line is dropped and a new prompt shows), type the statement again.
    for _attempt in range(5):
        child.sendline(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) "
            "SELECT count(*) FROM c;"
        )
        child.expect_exact("FROM c;")
        child.expect_exact("\n")  # written after the prompt restored the terminal and SIGINT
        wait_cooked(child)
        child.sendintr()
        outcome = child.expect_exact(["may still complete on the server", "(1 row)", PROMPT])
        assert outcome != 1, "the statement ran to completion: Ctrl-C did not cancel it"
        if outcome == 0:
            break
        wait_raw(child)  # ^C reached the prompt as it closed: the line was dropped
    else:
        raise AssertionError("Ctrl-C never arrived while the statement was running")
    child.expect_exact(PROMPT)
    wait_raw(child)
    screen = run(child, "SELECT 7 * 6 AS again;", "(1 row)")
    assert "42" in screen

    child.sendline("\\q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_long_results_go_through_the_pager_only_when_enabled(spawn_shell: Any) -> None:
    child = spawn_shell(ATLASQL_PAGER="sed -e s/^/paged:/")
    query = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 60) "
        "SELECT x FROM c;"
    )
    screen = run(child, query, "paged:(60 rows)")
    assert "paged: 60\r\n" in screen
    run(child, "\\pset pager off", "Pager usage is off.")
    screen = run(child, query, "(60 rows)")
    assert "paged:" not in screen
    child.sendeof()
    child.expect(pexpect.EOF)


def test_prompt_marks_an_open_transaction(spawn_shell: Any) -> None:
    child = spawn_shell()
    run(child, "CREATE TABLE tx(k INTEGER PRIMARY KEY, v TEXT);", "CREATE TABLE")
    child.sendline("BEGIN;")
    child.expect_exact("atlasql*> ")  # as psql's =*>
    wait_raw(child)
    child.sendline("INSERT INTO tx VALUES (1, 'a');")
    child.expect_exact("INSERT 1")
    child.expect_exact("atlasql*> ")
    wait_raw(child)
    run(child, "COMMIT;", "COMMIT")
    screen = run(child, "SELECT v FROM tx;", "(1 row)")
    assert " a\r\n" in screen
    child.sendeof()
    child.expect(pexpect.EOF)


def test_meta_commands_work_in_e_and_piped_stdin(cluster: Any) -> None:
    base = [sys.executable, "-m", "sqlfront.cli", "sql", "--host", cluster.addr(2)]
    res = subprocess.run(
        [
            *base,
            "-e",
            "CREATE TABLE piped(id INTEGER PRIMARY KEY, v TEXT)",
            "-e",
            "\\dt",
            "-e",
            "\\ranges piped",
            "-e",
            "\\nodes",
            "-e",
            "\\regions",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "List of tables" in res.stdout and " piped      |" in res.stdout
    assert "List of ranges" in res.stdout and "n1, n2, n3" in res.stdout
    assert "region=local,zone=z1" in res.stdout
    assert " local  | z1, z2, z3 |     3 |" in res.stdout

    piped = (
        "\\set null <null>\nINSERT INTO piped VALUES (1, NULL);\nSELECT v FROM piped;\n"
        "\\d nope\nSELECT 2;\n"
    )
    res = subprocess.run(base, input=piped, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "<null>" in res.stdout
    assert 'Did not find any table named "nope"' in res.stderr
    assert " 2\n" not in res.stdout
    res = subprocess.run(
        [*base, "--on-error", "continue"], input=piped, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert res.stdout.rstrip().endswith("(1 row)") and " 2\n" in res.stdout


def test_demo_without_e_opens_the_interactive_shell(tmp_path: Path) -> None:
    """The README's second set-up command, `atlasql demo`, as a new user types it."""
    env = dict(os.environ, TERM="dumb", HOME=str(tmp_path), ATLASQL_PAGER="off")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sqlfront.cli", "demo"],
        env=env,
        cwd=str(Path(__file__).resolve().parent.parent),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 120),
    )
    try:
        child.expect_exact("# atlasql demo: 3 nodes", timeout=60)
        child.expect_exact(PROMPT)
        wait_raw(child)
        out = run(child, "SELECT 40 + 2 AS answer;", "answer", "42", "(1 row)")
        assert "42" in out
        child.sendline("\\q")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)

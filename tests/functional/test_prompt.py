"""The `:` prompt and the `/` filter line under Pilot: one row that shows what is typed,
completion, history, errors in the line; and keys typed in a burst (the key gate on, as
in a real terminal) reaching the screen or input they were meant for, in order."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.widgets import Input, Static

from tests.helpers import console_app, job, make_config, pilot_until, ready
from tui.screens.dialogs import CommandLineScreen
from tui.screens.fanout import FanOutScreen
from tui.screens.overview import OverviewScreen

CONFIG = make_config(job("heartbeat", "echo ok"), job("backup-db", "true"))


def status(app) -> str:
    return str(app.screen.query_one(".prompt--status", Static).render())


async def test_the_prompt_completes_recalls_and_says_errors_in_its_line(tmp_path: Path):
    app = console_app(CONFIG, tmp_path / "state")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("colon", *"run hea", "tab")
        field = app.screen.query_one("#command", Input)
        assert field.value == "run heartbeat" and field.region.height == 1
        assert "run a job now" in status(app)
        await pilot.press("enter")
        await pilot_until(pilot, lambda: not isinstance(app.screen, CommandLineScreen),
                          "the prompt closed")
        await pilot.press("colon", "up")
        assert app.screen.query_one("#command", Input).value == "run heartbeat"
        await pilot.press("escape", "colon", *"run nope", "enter")
        assert isinstance(app.screen, CommandLineScreen)  # open, to fix the line
        assert "no job named 'nope'" in status(app)
        # a bad duration too: the line stays open (a toast closed it, and the keys typed
        # next went to the screen's bindings)
        await pilot.press("escape", "colon", *"silence heartbeat forever", "enter")
        assert isinstance(app.screen, CommandLineScreen)
        assert "bad duration 'forever'" in status(app)
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)
    history = tmp_path / "state" / "console_history"
    assert history.read_text() == "run heartbeat\n"
    assert history.stat().st_mode & 0o777 == 0o600


async def test_the_filter_line_counts_what_matches(tmp_path: Path):
    app = console_app(CONFIG, tmp_path / "state")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("2", "slash", *"heart")
        field = app.screen.query_one("#filter", Input)
        assert field.value == "heart" and field.region.height == 1
        await pilot_until(pilot, lambda: status(app) == "1 of 2", "the count")
        await pilot.press("left_parenthesis")
        await pilot_until(pilot, lambda: "bad regex" in status(app), "the error")


async def test_keys_typed_in_a_burst_arrive_in_order(tmp_path: Path):
    app = console_app(CONFIG, tmp_path / "state")
    app.key_gate = True  # as with a real terminal

    def burst(*keys: tuple[str, str]) -> None:
        for key, char in keys:
            app._driver.send_message(events.Key(key, char))  # noqa: SLF001

    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        burst(("colon", ":"), *((c, c) for c in "run"), ("space", " "), ("h", "h"))
        await pilot_until(pilot, lambda: isinstance(app.screen, CommandLineScreen) and
                          app.screen.query_one("#command", Input).value == "run h",
                          "every key in the prompt")
        burst(("escape", "\x1b"), ("6", "6"), ("n", "n"), ("asterisk", "*"))

        def pattern() -> str | None:
            screen = app.screen
            if isinstance(screen, FanOutScreen) and screen.query("#pattern"):
                return screen.query_one("#pattern", Input).value
            return None

        await pilot_until(pilot, lambda: pattern() == "*", "`n *` in the pattern field")


async def test_free_text_after_dashes_and_durations_complete(tmp_path: Path):
    """The command after `--` completes from the commands fanned out before (spaces
    and all), a bare number of a duration from its units; Tab again takes the next."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "console_history").write_text(
        "fanout @db -- df -h /var\nrun heartbeat\nfanout @web -- uptime -p\n")
    app = console_app(CONFIG, state)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("colon", *"fanout web01 -- up", "tab")
        field = app.screen.query_one("#command", Input)
        assert field.value == "fanout web01 -- uptime -p"
        await pilot.press(*["backspace"] * len("uptime -p"), "tab")  # every one: in turn
        assert field.value == "fanout web01 -- uptime -p"
        await pilot.press("tab")
        assert field.value == "fanout web01 -- df -h /var"
        await pilot.press("escape", "colon", *"silence heartbeat 45", "tab")
        field = app.screen.query_one("#command", Input)
        assert field.value == "silence heartbeat 45m"
        await pilot.press("tab")
        assert field.value == "silence heartbeat 45h"

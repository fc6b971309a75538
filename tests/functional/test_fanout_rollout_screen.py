"""A rolling fan-out in the console, through Pilot: options typed before `--`, each
host's batch on the grid, the canary batch asking before the rest goes (yes goes on, no
cancels the rest), and a sudo password asked in a field that shows nothing of it."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from tests.fanout_console import finished, open_screen, type_into
from tests.helpers import keys, pilot_until
from tui.screens.dialogs import ConfirmScreen
from tui.screens.fanout_rollout import PasswordScreen, parse_typed
from tui.widgets.common import NavTable


def batches(screen: Any) -> dict[str, str]:
    table = screen.query_one(NavTable)
    labels = [str(c.label) for c in table.columns.values()]
    assert labels[:3] == ["HOST", "BATCH", "STATE"]
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1])
            for i in range(table.row_count)}


async def asked(pilot: Any, start: str) -> ConfirmScreen:
    await pilot_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen)
                      and pilot.app.screen.question.startswith(start), f"asked: {start}")
    return pilot.app.screen


async def test_a_canary_asks_before_the_rest_goes(fanout_app) -> None:
    make, k, known = fanout_app
    app = make()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        await type_into(pilot, "pattern", "app[1-3]")
        await type_into(pilot, "command", "--serial 1,50% --max-fail 1 -- echo hi")
        await pilot.press("enter")
        confirm = await asked(pilot, "Run `echo hi` on 3 hosts")
        assert "(--serial 1,50% --max-fail 1)" in confirm.question
        await pilot.press("y")
        held = await asked(pilot, "Canary of fan-out #")
        assert held.question.endswith("1 of 1 ok. Go on with the other 2 hosts "
                                      "(2 more batches)?")
        rec = app.engine.fanouts.get(screen.fanout_id)
        assert rec["rollout"]["held"] and rec["hosts"]["app2"]["state"] == "pending"
        await pilot.press("y")
        assert await finished(pilot, screen) == {"app1": "ok", "app2": "ok", "app3": "ok"}
        assert batches(screen) == {"app1": "1/3", "app2": "2/3", "app3": "3/3"}


async def test_no_to_the_canary_cancels_the_rest(fanout_app) -> None:
    make, k, known = fanout_app
    app = make()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        await type_into(pilot, "pattern", "app[1-3]")
        await type_into(pilot, "command", "--serial 1,1 -- echo hi")
        await pilot.press("enter", "y")
        await asked(pilot, "Canary of fan-out #")
        await pilot.press("n")
        got = await finished(pilot, screen)
        assert got == {"app1": "ok", "app2": "cancelled", "app3": "cancelled"}
        audit = [r["action"] for r in __import__("core.audit", fromlist=["AuditLog"])
                 .AuditLog(app.engine.state_dir).read()]
        assert audit == ["fan-out", "cancel fan-out"]


async def test_a_password_is_asked_and_shown_nowhere(fanout_app) -> None:
    secret = "pw-console-7f3a"
    make, k, known = fanout_app
    app = make()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        await type_into(pilot, "pattern", "app1")
        await type_into(pilot, "command", "--become -K -- id -un")
        await pilot.press("enter", "y")
        await pilot_until(pilot, lambda: isinstance(app.screen, PasswordScreen), "asked")
        await pilot.press(*keys(secret))
        field = app.screen.query_one("#become-password", Input)
        assert field.password and field.value == secret
        assert secret not in app.export_screenshot()  # dots, not the password
        await pilot.press("enter")
        got = await finished(pilot, screen)
        assert got == {"app1": "ok"}  # root here: sudo reads no password, and runs it
        assert app.engine.fanouts.output(screen.fanout_id, "app1").strip() == "root"
        assert secret not in app.export_screenshot()
        first = screen.fanout_id
        await pilot.press("r")  # a rerun asks for the password again: it was not kept
        await asked(pilot, "Re-run `id -un` on the 1 ok host")
        await pilot.press("y")
        await pilot_until(pilot, lambda: isinstance(app.screen, PasswordScreen), "asked")
        await pilot.press(*keys(secret), "enter")
        await pilot_until(pilot, lambda: screen.fanout_id != first, "the rerun")
        assert await finished(pilot, screen) == {"app1": "ok"}
    for path in app.engine.state_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_typed_options_are_checked_in_one_line() -> None:
    t = parse_typed("--serial 1,25% --max-fail 2 --pause-between 5s --become app -- ls -l")
    assert (t.command, t.serial, t.max_fail, t.pause_between, t.become) == (
        "ls -l", "1,25%", "2", "5s", "app")
    assert t.params()["hold_canary"] is True
    assert parse_typed("uptime").params() == {}
    for text, said in (("--serial 0 -- ls", "--serial: 0 must be at least 1"),
                       ("--frobnicate -- ls", "unknown option '--frobnicate'"),
                       ("--serial 2 ls", "options go before `--`"),
                       ("--become 'a b' -- ls", "--become: invalid user name 'a b'")):
        try:
            parse_typed(text)
        except ValueError as e:
            assert said in str(e) and "\n" not in str(e)
        else:
            raise AssertionError(f"{text!r} was taken")

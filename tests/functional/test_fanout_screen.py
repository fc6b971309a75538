"""The fan-out screen through Pilot, against in-process SSH servers on loopback."""

from __future__ import annotations

from textual.widgets import Input, Log, Static

from tests.fanout_console import finished, grid, open_screen, type_into
from tests.helpers import keys, pilot_until
from tui.screens.dialogs import ConfirmScreen
from tui.screens.fanout_results import GatheredScreen, HostOutputScreen, PastFanOutsScreen
from tui.widgets.common import NavTable


async def test_pattern_count_confirm_grid_output_and_gathered(fanout_app) -> None:
    make, k, known = fanout_app
    app = make()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        assert isinstance(screen.focused, NavTable)  # the grid: number keys still switch
        await pilot.press("n")
        assert screen.focused is screen.query_one("#pattern", Input)
        await pilot.press("escape")
        assert isinstance(screen.focused, NavTable)
        label = screen.query_one("#resolved", Static)
        await type_into(pilot, "pattern", "@nope")
        assert "unknown group '@nope'" in str(label.render())
        await type_into(pilot, "pattern", "@app")
        assert str(label.render()) == "4 hosts: app[1-4]"
        await type_into(pilot, "command", "echo same; echo err >&2")
        await pilot.press("enter")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen) and not confirm.strong
        assert confirm.question == "Run `echo same; echo err >&2` on 4 hosts?"
        await pilot.press("y")
        states = await finished(pilot, screen)
        assert states == {"app1": "ok", "app2": "ok", "app3": "ok", "app4": "unreachable"}
        summary = str(screen.query_one("#summary", Static).render())
        assert "1 unreachable · 3 ok   finished" in summary

        table = screen.query_one(NavTable)
        table.focus()
        table.move_cursor(row=[str(table.get_row_at(i)[0])
                               for i in range(table.row_count)].index("app2"))
        await pilot.press("enter")
        await pilot_until(pilot, lambda: isinstance(app.screen, HostOutputScreen)
                          and len(app.screen.query_one(Log).lines) >= 2, "app2's output")
        out = app.screen
        assert isinstance(out, HostOutputScreen) and out.host == "app2"
        assert out.query_one(Log).lines == ["same", "err"]
        await pilot.press("escape")
        await pilot.press("b")
        await pilot_until(pilot, lambda: isinstance(app.screen, GatheredScreen)
                          and app.screen.query_one(Log).lines, "the gathered output")
        gathered = app.screen
        assert isinstance(gathered, GatheredScreen)
        lines = gathered.query_one(Log).lines
        assert lines[:3] == ["── app[1-3] (3)", "  same", "  err"]
        assert lines[lines.index("── app4 (1)  unreachable: connection refused") + 1] == \
            "  (no output)"
        await pilot.press("escape")


async def test_destructive_commands_need_yes_typed(fanout_app) -> None:
    make, k, known = fanout_app
    app = make()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        await type_into(pilot, "pattern", "app1")
        await type_into(pilot, "command", "rm -rf /tmp/fleetdeck-test-nothing-here")
        await pilot.press("enter")
        await pilot.pause()
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen) and confirm.strong
        assert confirm.question.startswith("DESTRUCTIVE? Run `rm -rf")
        await pilot.press("y")  # a key alone is not enough
        await pilot.pause()
        assert app.screen is confirm
        await pilot.press("backspace", *keys("yes"), "enter")
        assert await finished(pilot, screen) == {"app1": "ok"}


async def test_rerun_a_class_cancel_one_host_and_browse_past(fanout_app) -> None:
    make, k, known = fanout_app
    app = make()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        app.execute("fanout app[1-2] -- sleep 30")
        await pilot.pause()
        assert screen.query_one("#command", Input).value == "sleep 30"
        await pilot.press("enter")
        await pilot.press("y")
        await pilot_until(pilot, lambda: grid(screen).get("app1") == "running", "app1 running")
        first = screen.fanout_id
        table = screen.query_one(NavTable)
        table.focus()
        row = [str(table.get_row_at(i)[0]) for i in range(table.row_count)].index("app1")
        table.move_cursor(row=row)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot_until(pilot, lambda: grid(screen).get("app1") == "cancelled", "app1 cancelled")
        assert grid(screen)["app2"] == "running"  # the batch goes on
        app.engine.fanouts.cancel_host(first, "app2")
        await finished(pilot, screen)

        # re-run the cancelled class: both hosts, as a new fan-out that names its origin
        await pilot.press("r")
        assert "on the 2 cancelled hosts" in app.screen.question
        await pilot.press("y")
        await pilot.pause()
        second = screen.fanout_id
        assert second != first
        assert app.engine.fanouts.get(second)["rerun_of"] == first
        app.engine.fanouts.cancel(second)
        await finished(pilot, screen)

        await pilot.press("p")
        await pilot_until(pilot, lambda: isinstance(app.screen, PastFanOutsScreen)
                          and app.screen.table.row_count == 2, "the two past fan-outs")
        past = app.screen
        assert isinstance(past, PastFanOutsScreen)
        ids = [str(past.table.get_row_at(i)[0]) for i in range(past.table.row_count)]
        assert ids == [f"#{second}", f"#{first}"]
        past.table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen and screen.fanout_id == first


async def test_R_reruns_every_host_not_ok_as_one_new_fanout(fanout_app) -> None:
    """Right after a fan-out, R asks to re-run the hosts that did not end ok, whatever
    row the cursor is on, and says how many of each class; host-key refusals stay out."""
    make, k, known = fanout_app
    app = make()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        # app1 fails, app2 and app3 succeed, app4 is unreachable, new1's key is unknown
        app.execute(f"fanout app[1-4],new1 -- test $TEST_SERVER_PORT != "
                    f"{app.engine.config.hosts['app1'].port}")
        await pilot.pause()
        await pilot.press("enter", "y")
        got = await finished(pilot, screen)
        assert got == {"app1": "failed", "app2": "ok", "app3": "ok", "app4": "unreachable",
                       "new1": "host_key_unknown"}
        first = screen.fanout_id
        await pilot.press("R")
        await pilot_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked")
        assert app.screen.question.endswith("on the 2 hosts not ok of 5?")
        assert app.screen.detail == "1 failed, 1 unreachable; left out: 1 host_key_unknown"
        await pilot.press("y")
        await pilot_until(pilot, lambda: screen.fanout_id != first, "the new fan-out")
        second = app.engine.fanouts.get(screen.fanout_id)
        assert second["rerun_of"] == first and sorted(second["hosts"]) == ["app1", "app4"]
        await finished(pilot, screen)


async def test_trusting_an_unknown_host_key_after_seeing_it(fanout_app) -> None:
    make, k, known = fanout_app
    app = make()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        before = known.read_text()
        app.execute("fanout new1 -- echo hello")
        await pilot.press("enter", "y")
        assert await finished(pilot, screen) == {"new1": "host_key_unknown"}
        fp = app.engine.fanouts.get(screen.fanout_id)["hosts"]["new1"]["fingerprint"]
        assert fp.startswith("ssh-ed25519 SHA256:")
        await pilot.press("t")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        # the person sees what they trust, and the CA way for a fleet with host certificates
        assert confirm.detail.startswith(f"new1: {fp}\n")
        assert "fleetdeck trust-ca" in confirm.detail
        await pilot.press("y")
        assert await finished(pilot, screen) == {"new1": "ok"}
        added = known.read_text()[len(before):]
        assert added.startswith("[127.0.0.1]:") and "ssh-ed25519" in added
        from core.audit import AuditLog

        audit = AuditLog(app.engine.state_dir).read()
        assert [(r["action"], r["targets"], r["via"]) for r in audit] == [
            ("fan-out", ["new1"], "console"), ("trust host key", ["new1"], "console"),
            ("fan-out rerun", ["new1"], "console")]
        assert audit[1]["detail"] == fp


async def test_a_read_only_console_cannot_fan_out(fanout_app) -> None:
    make, k, known = fanout_app
    app = make(read_only=True)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_screen(pilot, k, known)
        await type_into(pilot, "pattern", "app1")
        await type_into(pilot, "command", "true")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen  # no confirmation, nothing started
        assert app.engine.fanouts.list() == []

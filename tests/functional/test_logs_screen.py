"""The Logs screen through Pilot: real files followed, merged, filtered, paused."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from core.fleetconfig import Config
from core.jobs.config import EngineSettings
from core.logs.monitor import LogMonitor
from core.logs.sources import SourceSpec
from core.remote.config import Host
from tests.helpers import NOW, console_app, has_open, log_config, pilot_until, ready
from tui.app import FleetdeckApp
from tui.screens.logs import LogsScreen


def texts(screen: LogsScreen) -> list[str]:
    return [text for _src, _lvl, text in screen.shown]


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


async def test_logs_screen_merges_filters_pauses_and_jumps(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("")
    b.write_text("")
    sources = {"api": SourceSpec("api", path=str(a), colour="cyan"),
               "db": SourceSpec("db", path=str(b))}
    cfg = Config(path=None, hosts={"local": Host("local")}, jobs={},
                 engine=EngineSettings(), sources=sources)
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert isinstance(app.engine.logs, LogMonitor)  # the console attached it
        app.engine.logs.poll = 0.05
        await pilot.press("8")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        # followed from their ends (tail -F -n0) once open: what is written next is shown
        await pilot_until(pilot, lambda: has_open(a) and has_open(b), "both files followed")
        append(a, "INFO api started\nERROR api: upstream refused\n")
        append(b, "db: checkpoint done\n")
        await pilot_until(pilot, lambda: len(screen.shown) == 3, "three lines merged")
        assert {(s, lvl) for s, lvl, _t in screen.shown} == {
            ("api", "info"), ("api", "error"), ("db", None)}
        stats = str(screen.query_one("#sources", Static).render())
        assert "api" in stats and "1 error" in stats
        await pilot_until(pilot, lambda: "1 line " in str(
            screen.query_one("#sources", Static).render()), "db's one line, said so")

        await pilot.press("slash", "r", "e", "f", "u", "s", "e", "d", "enter")
        assert texts(screen) == ["ERROR api: upstream refused"]
        await pilot.press("slash")
        screen.query_one("#filter").value = "!api"
        await pilot.press("enter")
        assert texts(screen) == ["db: checkpoint done"]
        await pilot.press("escape")  # clears the filter
        assert len(screen.shown) == 3

        await pilot.press("space")  # paused: lines are held, not lost
        append(a, "WARN api slow\n")
        await pilot_until(pilot, lambda: len(screen.held) == 1, "a held line")
        assert len(screen.shown) == 3
        assert "1 new lines held" in str(screen.query_one("#paused", Static).render())
        await pilot.press("space")
        assert texts(screen)[-1] == "WARN api slow" and not screen.held

        view = screen.view
        await pilot.press("e")
        assert int(view.scroll_y) <= 1  # the error line is the second one
        await pilot.press("E")
        assert not view.auto_scroll


async def test_logs_screen_without_sources_says_how(tmp_path: Path) -> None:
    cfg = Config(path=None, hosts={"local": Host("local")}, jobs={}, engine=EngineSettings())
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        app.execute("logs")
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen)
        assert "No log sources configured" in str(
            app.screen.query_one("#sources", Static).render())


def seeded(tmp_path: Path) -> FleetdeckApp:
    """A real monitor with no loops, fed fixed lines at fixed times."""
    sources = {"api": SourceSpec("api", path="/var/log/api.log", colour="cyan"),
               "db": SourceSpec("db", path="/var/log/db.log", colour="magenta")}
    cfg = Config(path=None, hosts={"local": Host("local")}, jobs={}, engine=EngineSettings())
    app = console_app(cfg, tmp_path / "state", clock=lambda: NOW)
    mon = LogMonitor(sources, {})
    mon.configure(sources, {})
    mon.engine = app.engine
    for k in range(60):
        at = NOW - 600 + k * 10
        mon.ingest("api", [b"INFO GET /api/items 200 12ms"] + [
            b"ERROR upstream refused"] * (k % 5), at=at)
        mon.ingest("db", [b"LOG:  checkpoint complete", b"WARNING: slow query 812 ms"], at=at)
    app.seeded = mon  # added once the engine runs: never started, only read
    return app


def test_logs_snapshot(snap_compare, tmp_path) -> None:
    async def run_before(pilot) -> None:
        app = await ready(pilot)
        app.engine.add_service(app.seeded)
        await pilot.press("8")

        def drawn() -> bool:  # the view writes its lines once it knows its size
            screen = app.screen
            return isinstance(screen, LogsScreen) and bool(screen.shown) and \
                len(screen.view.lines) == len(screen.shown)

        await pilot_until(pilot, drawn, "the view to show the monitor's lines")
        await pilot.pause()

    assert snap_compare(seeded(tmp_path), terminal_size=(120, 30), run_before=run_before)


async def test_lines_read_at_first_show_are_not_shown_again_by_their_event(
        tmp_path: Path) -> None:
    """The Logs screen's first show reads what the monitor holds; the event carrying some
    of those lines may still be on its way, and must not show them twice."""
    from core.events import LogLines

    cfg = log_config(tmp_path / "a.log")
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        monitor = app.engine.logs
        monitor.ingest("api", [b"INFO one", b"INFO two"])  # held, its event not sent yet
        held = monitor.recent("api")
        await pilot.press("8")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        assert texts(screen) == ["INFO one", "INFO two"]
        later = (held[-1][0] + 1, "info", "INFO three")
        screen.engine_events([LogLines("api", [*held, later], 0)])
        assert texts(screen) == ["INFO one", "INFO two", "INFO three"]


async def test_sources_are_merged_by_the_lines_own_timestamps(tmp_path: Path) -> None:
    """What the monitor held when the screen first shows (each source read in one
    block, so one arrival time each) and each later batch of blocks interleave by the
    lines' own times, as in lnav; a line without one stays after its predecessor."""
    from core.events import LogLines

    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("")
    b.write_text("")
    cfg = Config(path=None, hosts={"local": Host("local")}, jobs={}, engine=EngineSettings(),
                 sources={"api": SourceSpec("api", path=str(a)),
                          "db": SourceSpec("db", path=str(b))})
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        monitor = app.engine.logs
        monitor.ingest("db", [b"2026-03-01T12:00:02Z INFO db two",
                              b"2026-03-01T12:00:04Z INFO db four", b"  continued"], at=NOW)
        monitor.ingest("api", [b"2026-03-01T13:00:01+01:00 INFO api one",
                               b"2026-03-01T12:00:03Z INFO api three"], at=NOW + 1)
        await pilot.press("8")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        assert texts(screen) == ["2026-03-01T13:00:01+01:00 INFO api one",
                                 "2026-03-01T12:00:02Z INFO db two",
                                 "2026-03-01T12:00:03Z INFO api three",
                                 "2026-03-01T12:00:04Z INFO db four", "  continued"]
        screen.engine_events([
            LogLines("api", [(NOW + 5, "info", "2026-03-01 12:00:07.250Z api: six")], 0),
            LogLines("db", [(NOW + 5, "info", "[01/Mar/2026:12:00:06 +0000] db five")], 0)])
        assert texts(screen)[-2:] == ["[01/Mar/2026:12:00:06 +0000] db five",
                                      "2026-03-01 12:00:07.250Z api: six"]


async def test_a_flood_is_kept_but_only_the_page_shown_is_drawn(tmp_path: Path) -> None:
    """5,000 lines, some hostile (escape sequences, a bell, a carriage return): all are
    kept, following the end; only the lines of the page on screen are drawn, and none
    draws an escape or a control character."""
    from core.events import LogLines

    cfg = log_config(tmp_path / "a.log")
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("8")
        await pilot_until(pilot, lambda: isinstance(app.screen, LogsScreen), "Logs")
        screen = app.screen
        lines = [(1.0 + i, "info", f"50%\rline {i} \x1b[31mred\x1b[0m \x07 done")
                 for i in range(5000)]
        screen.engine_events([LogLines("api", lines, 0)])
        await pilot.pause()
        view = screen.view
        assert len(view.lines) == 5000
        await pilot_until(pilot, lambda: view.scroll_y == view.max_scroll_y > 0, "the end")
        drawn = "".join(view.render_line(y).text for y in range(view.size.height))
        assert "line 4999 red \ufffd done" in drawn  # a progress line: its last state
        assert not any(ord(c) < 32 for c in drawn)
        assert len(view._strips) <= 2 * view.size.height  # the page, not the flood


async def test_lines_an_event_brought_are_not_shown_again(tmp_path: Path) -> None:
    """Lines that came by an event (before the first show read the monitor, or after)
    are not shown again by the first show or by a later event carrying them."""
    from core.events import LogLines

    app = console_app(log_config(tmp_path / "a.log"), tmp_path / "state")
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("8")
        await pilot_until(pilot, lambda: isinstance(app.screen, LogsScreen), "Logs")
        screen = app.screen
        one, two = (10.0, "info", "INFO one"), (11.0, "info", "INFO two")
        screen.engine_events([LogLines("api", [one, two], 0)])
        screen.engine_events([LogLines("api", [one, two, (12.0, "info", "INFO three")], 0)])
        assert texts(screen) == ["INFO one", "INFO two", "INFO three"]


async def test_scrolling_up_stops_following_and_end_follows_again(tmp_path: Path) -> None:
    """As less and lnav: a page up keeps the view where the person reads while lines
    come (it jumped back to the newest lines within seconds); End follows again."""
    from core.events import LogLines

    app = console_app(log_config(tmp_path / "a.log"), tmp_path / "state")
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("8")
        await pilot_until(pilot, lambda: isinstance(app.screen, LogsScreen), "Logs")
        screen, n = app.screen, iter(range(10**6))

        def more(count: int) -> None:
            screen.engine_events([LogLines("api", [(1.0 + i, "info", f"line {i}")
                                                   for i in [next(n) for _ in range(count)]],
                                           0)])

        more(300)
        view = screen.view
        await pilot_until(pilot, lambda: view.scroll_y == view.max_scroll_y > 0, "the end")
        await pilot.press("pageup")
        await pilot_until(pilot, lambda: view.scroll_y < view.max_scroll_y, "scrolled up")
        reading = view.scroll_y
        more(50)
        await pilot.pause()
        assert view.scroll_y == reading and view.max_scroll_y > reading
        await pilot.press("end")
        await pilot_until(pilot, lambda: view.scroll_y == view.max_scroll_y, "the end again")
        more(50)
        await pilot_until(pilot, lambda: view.scroll_y == view.max_scroll_y, "following")

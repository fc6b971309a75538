"""LogView in a tiny real App, driven by the Pilot, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from tests.helpers import pilot_until
from tui.widgets.log_search import SearchPrompt
from tui.widgets.log_view import LogView

SIZE = (80, 24)


class LogApp(App[None]):
    def __init__(self, path: Path | None, follow: bool = True) -> None:
        super().__init__()
        self.path = path
        self.follow = follow
        self.cursor_moves: list[int] = []
        self.follow_changes: list[bool] = []

    def compose(self) -> ComposeResult:
        yield LogView(self.path, follow=self.follow, id="log")

    def on_mount(self) -> None:
        self.query_one(LogView).focus()

    def on_log_view_cursor_moved(self, message: LogView.CursorMoved) -> None:
        self.cursor_moves.append(message.line)

    def on_log_view_follow_changed(self, message: LogView.FollowChanged) -> None:
        self.follow_changes.append(message.follow)


def write_lines(path: Path, lines: list[str], mode: str = "w") -> None:
    with path.open(mode) as f:
        f.writelines(line + "\n" for line in lines)


def screen_lines(view: LogView) -> list[str]:
    return [view.render_line(y).text.rstrip()
            for y in range(view.scrollable_content_region.height)]


async def settle(app: App[None], pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "run.log"
    lines = []
    for i in range(200):
        if i in (30, 120, 150):
            lines.append(f"12:00:{i % 60:02d} ERROR step {i} failed")
        elif i == 60:
            lines.append(f"12:00:{i % 60:02d} WARN step {i} slow")
        else:
            lines.append(f"12:00:{i % 60:02d} INFO step {i} ok")
    lines.append("[fleetdeck] exit code 1")
    write_lines(path, lines)
    return path


async def test_opens_on_the_last_page_when_following(log: Path):
    app = LogApp(log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(LogView)
        assert view.line_count == 201
        assert view.follow
        assert view.cursor_line == 200
        shown = screen_lines(view)
        assert shown[-1] == "[fleetdeck] exit code 1"
        assert shown[-2].endswith("INFO step 199 ok")


async def test_without_follow_opens_at_the_top(log: Path):
    app = LogApp(log, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(LogView)
        assert view.cursor_line == 0
        assert screen_lines(view)[0] == "12:00:00 INFO step 0 ok"


async def test_moving_up_stops_following_and_f_toggles(log: Path):
    app = LogApp(log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(LogView)
        await pilot.press("k")
        assert not view.follow
        assert view.cursor_line == 199
        await pilot.press("up", "up")
        assert view.cursor_line == 197
        await pilot.press("f")
        assert view.follow and view.cursor_line == 200
        await pilot.press("f")
        assert not view.follow
        await pilot.press("g")
        await pilot.pause()
        assert view.cursor_line == 0 and view.scroll_offset.y == 0
        assert screen_lines(view)[0] == "12:00:00 INFO step 0 ok"
        await pilot.press("j", "j", "pagedown")
        assert view.cursor_line == 2 + view.scrollable_content_region.height
        await pilot.press("G")
        await pilot.pause()
        assert view.follow and view.cursor_line == 200
        assert screen_lines(view)[-1] == "[fleetdeck] exit code 1"
        await pilot.pause()
        assert app.follow_changes == [False, True, False, True]
        assert app.cursor_moves[-1] == 200


async def test_search_and_next_previous_match(log: Path):
    app = LogApp(log, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(LogView)
        await pilot.press("slash")
        assert isinstance(app.screen, SearchPrompt)
        await pilot.press(*"STEP 1[0-9]0 ", "enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, SearchPrompt)
        assert view.search.text == "STEP 1[0-9]0 "
        assert view.cursor_line == 100  # case-insensitive, from the cursor on
        assert "step 100" in screen_lines(view)[view.cursor_line - view.scroll_offset.y]
        await pilot.press("n")
        await settle(app, pilot)
        assert view.cursor_line == 110
        await pilot.press("N", "N")
        await settle(app, pilot)
        assert view.cursor_line == 190  # wrapped around backwards from 100
        await pilot.press("n")
        await settle(app, pilot)
        assert view.cursor_line == 100  # and forwards again


async def test_bad_regex_is_told_not_a_crash(log: Path):
    app = LogApp(log, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(LogView)
        await pilot.press("slash", "[", "enter")
        await settle(app, pilot)
        assert view.search.text == ""
        messages = [n.message for n in app._notifications]
        assert any(m.startswith("bad search pattern '['") for m in messages)
        await pilot.press("n")
        assert view.cursor_line == 0
        await pilot.press("slash", *"step", "escape")
        await pilot.pause()
        assert view.search.text == ""  # cancelled


async def test_error_jumps(log: Path):
    app = LogApp(log, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(LogView)
        for expected in (30, 120, 150, 150):
            await pilot.press("e")
            await settle(app, pilot)
            assert view.cursor_line == expected
        await pilot.press("E")
        await settle(app, pilot)
        assert view.cursor_line == 120
        await pilot.press("G", "E")
        await settle(app, pilot)
        assert view.cursor_line == 150
        assert not view.follow  # a jump stops following
        top = view.scroll_offset.y
        assert "ERROR step 150" in screen_lines(view)[150 - top]


async def test_growing_file_is_followed(tmp_path: Path):
    path = tmp_path / "live.log"  # not there yet
    app = LogApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(LogView)
        assert view.line_count == 0
        assert "waiting for output" in screen_lines(view)[0]
        write_lines(path, [f"line {i}" for i in range(5)])
        assert view.refresh_file() == 5
        await pilot.pause()
        assert screen_lines(view)[:5] == [f"line {i}" for i in range(5)]
        write_lines(path, [f"line {i}" for i in range(5, 100)], "a")
        with path.open("a") as f:
            f.write("half a li")
        view.refresh_file()
        await pilot.pause()
        assert screen_lines(view)[-1] == "half a li"
        with path.open("a") as f:
            f.write("ne\nlast\n")
        view.refresh_file()
        await pilot.pause()
        assert screen_lines(view)[-2:] == ["half a line", "last"]
        assert view.cursor_line == 101
        assert view.refresh_file() == 0  # nothing new
        # not following: new lines do not move the page
        await pilot.press("k")
        top = view.scroll_offset.y
        write_lines(path, ["more"], "a")
        view.refresh_file()
        await pilot.pause()
        assert view.scroll_offset.y == top and view.line_count == 103
        await pilot.press("G")
        await pilot.pause()
        assert screen_lines(view)[-1] == "more"


async def test_truncated_file_starts_over(log: Path):
    app = LogApp(log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(LogView)
        write_lines(log, ["fresh start"])
        view.refresh_file()
        await pilot.pause()
        assert view.line_count == 1
        assert screen_lines(view)[0] == "fresh start"


async def test_million_line_file_opens_and_G_shows_the_last_line(tmp_path: Path):
    path = tmp_path / "big.log"
    with path.open("w") as f:
        for i in range(1_000_000):
            f.write(f"{i:07d} INFO payload line\n")
    app = LogApp(path, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await pilot.pause()
        assert app.focused is view  # keys still reach the view while it indexes
        # a big file is indexed in slices, between screen updates
        await pilot_until(pilot, lambda: not view.indexing, "the file indexed")
        assert view.line_count == 1_000_000
        assert screen_lines(view)[0] == "0000000 INFO payload line"
        await pilot.press("G")
        await pilot.pause()
        assert view.cursor_line == 999_999
        assert screen_lines(view)[-1] == "0999999 INFO payload line"
        await pilot.press("slash", *"^0500000", "enter")
        await settle(app, pilot)
        assert view.cursor_line == 500_000  # wrapped from the end


def test_snapshot_80x24(snap_compare, tmp_path: Path):
    path = tmp_path / "snap.log"
    write_lines(path, [
        "2026-11-22 12:00:00 INFO  starting backup of app",
        "2026-11-22 12:00:01 DEBUG connecting to db01:5432",
        "2026-11-22 12:00:02 INFO  dumping 14 tables",
        "2026-11-22 12:00:05 WARN  table events is 9.1 GB, this will be slow",
        "2026-11-22 12:00:09 INFO  table users done",
        "2026-11-22 12:00:12 ERROR table events: connection reset by peer",
        "Traceback (most recent call last):",
        '  File "dump.py", line 88, in dump_table',
        "ConnectionResetError: [Errno 104] Connection reset by peer",
        "2026-11-22 12:00:13 INFO  retrying events in 5s",
        "2026-11-22 12:00:18 INFO  table events done",
        "[fleetdeck] exit code 1 after 18.2s",
    ])

    async def run_before(pilot) -> None:
        view = pilot.app.query_one(LogView)
        view.search.set("events", jump=False)
        await pilot.press("g", "e")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(LogApp(path, follow=False), terminal_size=SIZE, run_before=run_before)


def test_every_binding_has_an_id_and_hjkl_only_move():
    for binding in [*LogView.BINDINGS, *SearchPrompt.BINDINGS]:
        assert binding.id and binding.id.startswith("log."), binding
    motions = {"cursor_down", "cursor_up", "scroll_left", "scroll_right"}
    for binding in LogView.BINDINGS:
        keys = set(binding.key.split(","))
        if keys & {"h", "j", "k", "l"}:
            assert binding.action in motions

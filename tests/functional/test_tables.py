"""Tables that fit (columns by priority, free text cut, wide mode, sort by column, rows
changed in place), screens that catch up on what they missed while hidden, the preview
pane, and the alert detail's keys."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult

from tests.helpers import console_app, has_open, job, log_config, make_config, pilot_until, ready
from tui.screens.alerts import AlertDetailScreen, AlertsScreen, SilenceScreen
from tui.screens.jobs import JobsScreen
from tui.screens.logs import LogsScreen
from tui.screens.run_log import RunLogScreen
from tui.screens.runs import RunsScreen
from tui.widgets.preview import Preview
from tui.widgets.table import Column, FleetTable, SortText

COLUMNS = (Column("id", "ID", 1, "I"), Column("name", "NAME", 1, "N"),
           Column("exit", "EXIT", 5, "X"), Column("started", "STARTED", 4, "A"),
           Column("reason", "REASON", 3, shrink=True))
REASON = "the SSH connection closed under it while the command was still running"


def rows() -> list[tuple[str, tuple[Text, ...]]]:
    # STARTED as a screen shows it: today's as a time, an older one with its date; the
    # text order ("09…" < "Nov…" < "-") is not the time order (Nov 28, then today, then none)
    return [
        ("a", (Text("#3"), Text("alpha"), Text("0"), SortText("09:15:02", 2_000.0),
               Text("exit code 0"))),
        ("b", (Text("#10"), Text("bravo"), Text("23"), SortText("Nov 28 14:00", 1_000.0),
               Text(REASON))),
        ("c", (Text("#9"), Text("charlie"), Text("-"), SortText("-", None), Text(""))),
    ]


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield FleetTable(COLUMNS, id="t")

    def on_mount(self) -> None:
        self.query_one(FleetTable).show(rows())


def labels(table: FleetTable) -> list[str]:
    return [str(c.label) for c in table.ordered_columns]


def order(table: FleetTable) -> list[str]:
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


async def test_columns_give_way_by_priority_and_wide_keeps_them_all():
    app = TableApp()
    async with app.run_test(size=(45, 10)) as pilot:
        table = app.query_one(FleetTable)
        await pilot.pause()
        # 45 columns: the reason is cut with an ellipsis first, then EXIT (least
        # important) goes as a whole column; ID and NAME (priority 1) always stay
        assert labels(table) == ["ID", "NAME", "STARTED", "REASON"]
        cut = str(table.get_row("b")[3])
        assert cut.endswith("…") and REASON.startswith(cut[:-1]) and len(cut) >= 12
        assert table.hidden_columns == ["EXIT"]

        table.toggle_wide()  # w: every column, whole, scrolled sideways
        await pilot.pause()
        assert labels(table) == ["ID", "NAME", "EXIT", "STARTED", "REASON"]
        assert str(table.get_row("b")[4]) == REASON
        assert table.virtual_size.width > table.size.width
        table.toggle_wide()

        await pilot.resize_terminal(160, 10)
        await pilot_until(pilot, lambda: len(labels(table)) == 5, "every column at 160")
        assert str(table.get_row("b")[4]) == REASON


async def test_one_long_name_is_cut_rather_than_hiding_every_other_column():
    long = "nightly-" + "-".join(["reindex"] * 14)  # a generated name, 119 characters
    app = TableApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(FleetTable)
        table.show([(*rows()[0][:1], (Text("#3"), Text(long), *rows()[0][1][2:])),
                    *rows()[1:]])
        await pilot.pause()
        assert labels(table) == ["ID", "NAME", "EXIT", "STARTED", "REASON"]
        name = str(table.get_row("a")[1])
        assert name.endswith("…") and long.startswith(name[:-1]) and len(name) >= 24
        assert str(table.get_row("b")[1]) == "bravo"  # a short name stays whole
        table.toggle_wide()  # w: the whole name
        await pilot.pause()
        assert str(table.get_row("a")[1]) == long


async def test_sort_by_a_column_puts_times_in_time_order_and_numbers_by_value():
    app = TableApp()
    async with app.run_test(size=(160, 10)) as pilot:
        table = app.query_one(FleetTable)
        await pilot.pause()
        assert order(table) == ["alpha", "bravo", "charlie"]  # as given
        table.sort_by("started")
        assert order(table) == ["bravo", "alpha", "charlie"]  # Nov 28, today, none last
        assert labels(table)[3] == "STARTED▲"
        table.sort_by("started")
        assert order(table) == ["charlie", "alpha", "bravo"]
        table.sort_by("started")  # a third time: the order given
        assert order(table) == ["alpha", "bravo", "charlie"] and "STARTED" in labels(table)
        table.sort_by("id")  # #3 < #9 < #10 as numbers, not as text
        assert order(table) == ["alpha", "charlie", "bravo"]


async def test_rows_change_in_place_and_the_cursor_stays_on_its_row():
    app = TableApp()
    async with app.run_test(size=(160, 10)) as pilot:
        table = app.query_one(FleetTable)
        await pilot.pause()
        table.move_cursor(row=1)
        assert table.selected_key() == "b"
        new = rows()
        new[1] = ("b", (*new[1][1][:2], Text("1"), *new[1][1][3:]))  # b's exit changed
        new.insert(0, ("z", (Text("#11"), Text("zulu"), Text("0"), SortText("10:00:00", 3e3),
                             Text(""))))  # a new row on top
        del new[3]  # c is gone
        table.show(new)
        await pilot.pause()
        assert order(table) == ["zulu", "alpha", "bravo"]
        assert str(table.get_row("b")[2]) == "1"
        assert table.selected_key() == "b"  # the cursor followed its row


async def test_columns_follow_their_widest_cell_measuring_each_column_once(monkeypatch):
    """500 jobs finishing at once changed 500 rows: DataTable's own update_width measured
    the whole column again for each cell that got narrower, seconds of a frozen console."""
    from textual.widgets import _data_table

    measured = [0]
    real = _data_table.measure

    def counting(*args, **kw):
        measured[0] += 1
        return real(*args, **kw)

    monkeypatch.setattr(_data_table, "measure", counting)

    def many(reason: str) -> list[tuple[str, tuple[Text, ...]]]:
        return [(f"r{i}", (Text(f"#{i}"), Text(f"job{i}"), Text("0"), SortText("-", None),
                           Text(reason if i else reason + "!"))) for i in range(300)]

    app = TableApp()
    async with app.run_test(size=(200, 10)) as pilot:
        table = app.query_one(FleetTable)
        table.wide = True
        table.show(many(REASON))
        await pilot.pause()
        reason = table.columns[_data_table.ColumnKey("reason")]
        assert reason.content_width == len(REASON) + 1
        measured[0] = 0
        table.show(many("short"))  # every row narrower at once
        await pilot.pause()
        assert reason.content_width == len("short!")
        assert measured[0] < 300, f"{measured[0]} cells measured for 300 changed rows"
        table.show([*many("short")[:-1], ("r299", (Text("#299"), Text("job299"), Text("0"),
                                                   SortText("-", None), Text(REASON)))])
        await pilot.pause()
        assert reason.content_width == len(REASON)  # one cell grew: the column follows
        assert table.virtual_size.width >= sum(c.get_render_width(table)
                                               for c in table.ordered_columns)


async def test_runs_screen_catches_up_on_runs_it_missed_without_reading_history(tmp_path):
    cfg = make_config(job("hello", "echo hi"))
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        await pilot.press("4")
        await pilot_until(pilot, lambda: isinstance(app.screen, RunsScreen), "runs")
        runs = app.screen
        await pilot.press("2")
        await pilot_until(pilot, lambda: isinstance(app.screen, JobsScreen), "jobs")
        reads: list[dict] = []
        list_runs = app.engine.list_runs

        def counted(**query):
            reads.append(query)
            return list_runs(**query)

        app.engine.list_runs = counted
        await app.engine.run_job("hello", actor=app.actor)
        await pilot_until(pilot, lambda: runs.stale and runs._missed, "the run missed")  # noqa: SLF001
        await pilot.pause(0.3)
        await pilot.press("4")
        await pilot_until(pilot, lambda: runs.table.row_count == 1 and "succeeded" in
                          str(runs.table.get_row_at(0)[3]), "the run on the Runs screen")
        assert [q for q in reads if q.get("limit") == 500] == []  # no page of history read


async def test_logs_screen_shows_lines_that_came_while_it_was_hidden(tmp_path: Path):
    log = tmp_path / "app.log"
    cfg = log_config(log, "app")
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        app.engine.logs.poll = 0.05
        await pilot.press("8")
        await pilot_until(pilot, lambda: isinstance(app.screen, LogsScreen), "logs")
        logs = app.screen
        await pilot_until(pilot, lambda: has_open(log), "the file followed")
        with open(log, "a") as f:
            f.write("INFO before\n")
        await pilot_until(pilot, lambda: len(logs.shown) == 1, "the first line")
        await pilot.press("1")
        await pilot_until(pilot, lambda: app.screen is not logs, "another screen")
        with open(log, "a") as f:
            f.write("".join(f"INFO while hidden {i}\n" for i in range(5)))
        await pilot_until(pilot, lambda: logs._missed, "lines kept while hidden")  # noqa: SLF001
        await pilot.press("8")
        await pilot_until(pilot, lambda: len(logs.shown) == 6, "every line, no gap")
        assert [t for _s, _l, t in logs.shown][-1] == "INFO while hidden 4"


async def test_the_preview_pane_shows_the_runs_output_beside_or_below(tmp_path):
    cfg = make_config(job("hello", "echo preview-line-1; echo preview-line-2"))
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(160, 30)) as pilot:
        await ready(pilot)
        await app.engine.run_job("hello", actor=app.actor)
        await pilot_until(pilot, lambda: app.engine.list_runs(limit=1)[0]["state"]
                          == "succeeded", "the run done")
        await pilot.press("4")
        await pilot_until(pilot, lambda: isinstance(app.screen, RunsScreen), "runs")
        screen = app.screen
        pane = screen.query_one(Preview)

        def shown() -> str:
            return str(pane.query_one("#preview-text").render())

        await pilot_until(pilot, lambda: "preview-line-2" in shown(), "the output, beside")
        assert "hello on local" in shown() and pane.has_class("-beside")
        await pilot.press("v")  # off
        await pilot_until(pilot, lambda: not pane.display, "the pane hidden")

        await pilot.resize_terminal(80, 24)  # narrow: below the table, hidden until asked
        screen.preview_open = None
        screen._layout_preview()  # noqa: SLF001
        await pilot.pause()
        assert not pane.display
        await pilot.press("v")
        await pilot_until(pilot, lambda: pane.display and pane.has_class("-below")
                          and "preview-line-2" in shown(), "the pane below the table")


async def test_alert_detail_acks_silences_and_opens_the_run(tmp_path):
    cfg = make_config(job("bad", "echo broken; exit 3", alert_on=("failed",)))
    app = console_app(cfg, tmp_path / "state")
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        await app.engine.run_job("bad", actor=app.actor)
        manager = app.engine.alerts
        await pilot_until(pilot, lambda: len(manager.list_alerts()) == 1, "a job alert")
        await pilot.press("7")
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertsScreen)
                          and app.screen.table.row_count == 1, "the alert listed")
        await pilot.press("enter")
        await pilot_until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "detail")
        detail = app.screen
        await pilot.press("a")
        await pilot_until(pilot, lambda: manager.list_alerts()[0]["status"] == "acknowledged",
                          "acknowledged")
        await pilot_until(pilot, lambda: detail.alert["status"] == "acknowledged"
                          and detail.alert["acked_by"], "the detail follows")
        assert not detail.check_action("ack", ())  # no longer offered
        await pilot.press("s")
        await pilot_until(pilot, lambda: isinstance(app.screen, SilenceScreen), "silence asked")
        await pilot.press("escape")
        await pilot_until(pilot, lambda: app.screen is detail, "back on the detail")
        run_id = app.engine.list_runs(limit=1)[0]["id"]
        assert detail.run_id() == run_id
        await pilot.press("o")
        await pilot_until(pilot, lambda: isinstance(app.screen, RunLogScreen)
                          and app.screen.run["id"] == run_id, "the run's output")


def test_a_check_alert_names_no_run():
    alert = {"id": 1, "status": "firing", "detail": "HTTP 500 in 31 ms", "history": [
        {"detail": "opened", "at": time.time()}], "source": "http", "target": "web1"}
    assert AlertDetailScreen(alert, time.time()).run_id() is None

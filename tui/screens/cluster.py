"""Cluster: the nodes on the cluster's Redis, as `fleetdeck cluster status` shows them,
read again every two seconds while shown: which node leads and in what term, each
node's runs of the shared work against its capacity, its last heartbeat. Enter lists
the runs that ran on the selected node."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual import work
from textual.binding import Binding

from tui.palette import style
from tui.screens.base import TableScreen
from tui.screens.cells import age_cell, plain

EVERY = 2.0  # seconds between two reads of Redis while shown
STALE = 5.0  # a heartbeat older than this is shown as a node that stopped answering


class ClusterScreen(TableScreen):
    TITLE_TEXT = "Cluster"
    COLUMNS = (("node", "NODE"), ("role", "ROLE"), ("running", "RUNNING"),
               ("capacity", "CAPACITY"), ("heartbeat", "HEARTBEAT"), ("host", "HOST"),
               ("pid", "PID"))
    BINDINGS = [Binding("enter", "open", "Its runs", id="cluster.open")]

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(EVERY, self.refresh_data)

    def refresh_data(self) -> None:
        super().refresh_data()
        cfg = getattr(self.fleet.engine.config, "cluster", None)
        if cfg is not None:
            self._read(cfg)

    @work(exclusive=True, group="cluster")
    async def _read(self, cfg: Any) -> None:
        from core.cluster.redisstore import ClusterError, read_status

        try:
            view = await read_status(cfg)
        except ClusterError as e:
            self.TITLE_TEXT = f"Cluster · {e}"
            self.update_status()
            return
        self.show(view)

    def show(self, view: dict[str, Any]) -> None:
        """The status as rows (also what a test hands it)."""
        now = self.now()
        leader = view.get("leader")
        rows = []
        for n in view.get("nodes") or []:
            beat = n.get("heartbeat")
            quiet = beat is None or now - beat > STALE
            role = Text("leader", style="bold") if n["node"] == leader else Text("standby")
            if quiet:
                role = Text("not answering", style=style("error"))
            rows.append((n["node"], (Text(n["node"], style="bold"), role,
                                     plain(n.get("running")), plain(n.get("capacity")),
                                     age_cell(beat, now), plain(n.get("host")),
                                     plain(n.get("pid"))),
                         f"{n['node']} {role.plain} {n.get('host') or ''}"))
        self.set_rows(rows)
        self.TITLE_TEXT = (f"Cluster · leader {leader} (term {view.get('term')})" if leader
                           else "Cluster · no leader")
        self.update_status()

    def action_open(self) -> None:
        """The Runs screen, filtered to the runs that ran on the selected node."""
        key = self.table.selected_key()
        if not key:
            return
        self.app.pop_screen()
        self.fleet.cmd_runs()
        runs = self.app.screen
        if hasattr(runs, "filter_to"):
            runs.filter_to(f"@{re.escape(key)}(\\s|$)")

    def on_data_table_row_selected(self, event: Any) -> None:
        self.action_open()

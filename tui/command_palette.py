"""The palette (ctrl+p) searches the app's data, not only its commands: firing alerts
(open, ack), jobs (run, history, pause, resume), hosts (their health), recent runs (their
output) and fan-outs, beside the `:` commands. What it offers is read once when the
palette opens (a few indexed reads), never on each key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui import commands as cmds
from tui.fmt import severity_word

Entry = tuple[str, str, Callable[[], Any]]
RECENT_RUNS = 30
RECENT_FANOUTS = 10


def entries(app: Any) -> list[Entry]:
    """Every palette line: (title, help, what it does)."""
    acts = not getattr(app, "read_only", False)  # a read-only console offers no action
    out: list[Entry] = [(f":{c.name}", c.help, lambda c=c: app.execute(c.name))
                        for c in cmds.COMMANDS if not c.args and (acts or not c.acts)]
    if not app.engine_ready:
        return out
    engine = app.engine
    if engine.has_service("alerts"):
        for a in engine.list_alerts():
            what = f"#{a['id']} {a['what']}"
            out.append((f"alert {what}", f"{a['status']}, {severity_word(a)}: "
                        f"{a.get('detail') or 'open it'}",
                        lambda i=a["id"]: app.open_alert(i)))
            if a["status"] == "firing" and acts:
                out.append((f":ack {what}", "acknowledge: no more reminders",
                            lambda i=a["id"]: app.execute(f"ack {i}")))
    for info in engine.list_jobs():
        job = info["name"]
        out.append((f":runs {job}", "history of this job",
                    lambda j=job: app.execute(f"runs {j}")))
        if not acts:
            continue
        out.append((f":run {job}", "run this job now", lambda j=job: app.execute(f"run {j}")))
        if info["paused"]:  # the one that applies: resume a paused job, pause another
            out.append((f":resume {job}", "schedule it again",
                        lambda j=job: app.execute(f"resume {j}")))
        else:
            out.append((f":pause {job}", "stop scheduling it",
                        lambda j=job: app.execute(f"pause {j}")))
    for host in engine.config.hosts:
        out.append((f"host {host}", "its checks, trends and recent runs",
                    lambda h=host: _open_host(app, h)))
    for r in engine.list_runs(limit=RECENT_RUNS):
        out.append((f"run #{r['id']} {r['job']}@{r['host']} {r['state']}",
                    r.get("reason") or "open its output",
                    lambda i=r["id"]: app.execute(f"log {i}")))
    if engine.has_service("fanouts"):
        for f in engine.fanout_list(RECENT_FANOUTS):
            out.append((f"fan-out #{f['id']} {f['pattern']} -- {f['command']}",
                        "show its hosts and output", lambda i=f["id"]: _open_fanout(app, i)))
    return out


def _open_host(app: Any, host: str) -> None:
    from tui.screens.hosts import HostDetailScreen

    app.push_screen(HostDetailScreen(host))


def _open_fanout(app: Any, fanout_id: int) -> None:
    app.switch_mode("fanout")
    app.call_after_refresh(lambda: app.screen.show_fanout(fanout_id))


class FleetProvider(Provider):
    """Commands and the app's data, searched by fuzzy match on the title."""

    async def startup(self) -> None:
        self._entries = entries(self.app)

    async def discover(self) -> Hits:
        for title, help_text, cb in self._entries:
            yield DiscoveryHit(title, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, cb in self._entries:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), cb, help=help_text)

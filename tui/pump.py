"""The console's event pump (mixed into FleetdeckApp): engine events, collected as they
come and handed to the screens a few times a second, never one widget write per event.

The screen shown gets them (`engine_events`); the screens of the other modes get them as
missed (`missed_events`) and catch up when shown again (tui/screens/base.py). Once the
first screen shows data, the other screens are built in the background, so a first key
press shows a screen already drawn.
"""

from __future__ import annotations

from typing import Any

from textual.geometry import Region
from textual.widgets import DataTable

from core.events import AlertChanged, EngineNotice, Event, OutputLine
from core.heap import freeze_long_lived
from tui.alert_actions import ring_for
from tui.screens.base import FleetScreen

FLUSH_INTERVAL = 0.1  # seconds between event batches reaching the screen
PREWARM = ("jobs", "runs", "hosts", "alerts", "logs", "fanout", "queue", "audit")
PREWARM_AFTER, PREWARM_EVERY = 1.0, 0.2  # s: after the first data, between screens


class EventPump:
    """The app's side of the engine's bus (its buffers are set in FleetdeckApp)."""

    _buffer: list[Event]
    _output_runs: set[int]
    _screen_stacks: dict[str, list[Any]]
    screen_stack: list[Any]
    screen: Any

    def _prewarm(self: Any) -> None:
        """Build the other screens in the background, one at a time, once the first one
        shows data: the first press of 2 or 4 then shows a screen already drawn instead
        of importing, styling and filling it (200-500 ms). Not under a test harness,
        where each test builds only what it looks at."""
        for mode in PREWARM:
            stack = self._screen_stacks.get(mode)
            if not stack:
                self._init_mode(mode)  # Textual's own first step of switch_mode
                self.set_timer(PREWARM_EVERY, self._prewarm)
                return
            screen = stack[-1]
            if isinstance(screen, FleetScreen) and screen.is_mounted and not screen.laid_out:
                # laid out at the terminal's size while hidden (Textual's step on a
                # screen's first show): its first show then only draws
                screen._refresh_layout(self.size)
                # and its tables' visible lines rendered into their caches: the first
                # show of Jobs, Runs or Hosts was the slowest key (45-68 ms against
                # 25-30), drawing every cell; now it draws from the cache
                for table in screen.query(DataTable):
                    width, height = table.size
                    if width and height:
                        table.render_lines(Region(0, 0, width, height))
                screen.laid_out = True
        freeze_long_lived()  # every screen built, the engine up: what lives, lives long


    def _on_engine_event(self, event: Event) -> None:
        # output lines are many and only say "there is more": keep which runs, not each line
        if isinstance(event, OutputLine):
            self._output_runs.add(event.run_id)
        else:
            self._buffer.append(event)

    def _flush_events(self: Any) -> None:
        if not self._buffer and not self._output_runs:
            return
        if not self.screen_stack:  # the console closing: no screen left to tell
            return
        events, self._buffer = self._buffer, []
        output, self._output_runs = self._output_runs, set()
        alerts_moved = any(isinstance(e, AlertChanged) for e in events)
        if alerts_moved and ring_for(events):
            self.bell()  # a new firing alert
        notices = [e for e in events if isinstance(e, EngineNotice)]
        for n in notices[-3:]:  # a reload rejected, a daemon lost: said on screen
            level = n.level
            if level in ("warning", "error") or "attached again" in n.message:
                self.notify(n.message, severity="error" if level == "error"
                            else "warning" if level == "warning" else "information",
                            timeout=8)
        shown = self._visible_screens()
        for screen in shown:
            if events:
                screen.engine_events(events)
            if alerts_moved or notices:
                screen.update_status()  # alert counts, attached / lost
            if output:
                screen.output_arrived(output)
        if events:  # the screens of other modes catch up when shown again
            for screen in self._hidden_screens(shown):
                screen.missed_events(events)
            top = self.screen
            if not isinstance(top, FleetScreen) and hasattr(top, "engine_events"):
                top.engine_events(events)  # a dialog that follows the engine (alert detail)

    def _visible_screens(self) -> list[FleetScreen]:
        """The screen shown, once it is mounted: one still being built (a mode's first
        show) is told what it missed like a hidden one, and reads its view when shown."""
        out: list[FleetScreen] = []
        for screen in self.screen_stack:
            if isinstance(screen, FleetScreen):
                out.append(screen)
        return out[-1:] if out and out[-1].is_mounted else []

    def _hidden_screens(self, shown: list[FleetScreen]) -> list[FleetScreen]:
        """The mounted screens of every mode, but the one shown."""
        out: list[FleetScreen] = []
        for stack in self._screen_stacks.values():  # Textual's screens, mode by mode
            out += [s for s in stack if isinstance(s, FleetScreen) and s not in shown]
        return out

    def _refresh_screen(self: Any) -> None:
        for screen in self._visible_screens():
            screen.refresh_data()

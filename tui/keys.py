"""Keys as typed, in order, to where they were meant to go.

Two things stood between a fast typist and the console:

- **Esc then a key, quickly, read as one Alt key.** A terminal sends Alt+1 as the two
  bytes ESC `1`, exactly what Esc followed by `1` within Textual's escape delay
  (`ESCDELAY`, 100 ms) sends. Textual's parser (`textual._xterm_parser.XTermParser`)
  waits that long after an ESC for more bytes, then reads ESC + a printable character
  as `alt+<key>`, and some pairs (ESC `1` … ESC `9`, ESC `0`) as the characters a macOS
  Option key makes (`¡`, `™`, …), which an input then inserts. The console binds no Alt
  key, so `ConsoleParser` reads ESC + a printable character as what vim and k9s read:
  Escape, then the key. The escape sequences of real keys (CSI `ESC [`, SS3 `ESC O`, …)
  are untouched: their second byte is an introducer, and the parser goes on reading.
- **Keys routed before their target exists.** Textual decides where a key goes (the
  focused widget, else the screen) when the app takes it from its queue. A key that opens
  a screen, switches one or moves the focus takes effect a few messages later, so the
  keys right behind it went to the old place, or to a screen with nothing focused yet
  (and were dropped). `KeyGate` hands the app one key at a time: the next key waits
  until the message queues of the app and of the screen on top are empty, so it is
  routed as it would have been had the person typed slowly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from textual import events
from textual._xterm_parser import XTermParser
from textual.drivers import linux_driver
from textual.message_pump import MessagePump

ESC = "\x1b"
# second bytes that begin a longer escape sequence (CSI, SS3, DCS, OSC, APC, PM, ST)
INTRODUCERS = frozenset("[O]P_^\\")
SETTLE_ROUNDS = 40  # at most this many passes over the queues per key
ROUND_TIMEOUT = 2.0  # a pump that does not answer in this long is busy: let keys go on
CATCH_UP_POLL = 0.01  # s between looks at a screen catching up
SWITCH_ACTION = "show("  # the app's action that shows a screen (1-9, tui/app.py)


class ConsoleParser(XTermParser):
    """Textual's terminal parser, with ESC + a printable character read as Escape then
    that key (never Alt, never an Option-key character)."""

    def _sequence_to_key_events(self, sequence: str,
                                alt: bool = False) -> Iterable[events.Key]:
        if alt:  # the parser gave up on a sequence and re-reads it with ESC as Alt
            yield events.Key("escape", ESC)
            yield from super()._sequence_to_key_events(sequence)
            return
        if (len(sequence) == 2 and sequence[0] == ESC and sequence[1].isprintable()
                and sequence[1] not in INTRODUCERS):
            yield events.Key("escape", ESC)
            yield from super()._sequence_to_key_events(sequence[1])
            return
        yield from super()._sequence_to_key_events(sequence)


class ConsoleDriver(linux_driver.LinuxDriver):
    """The Linux driver reading its input with `ConsoleParser`.

    LinuxDriver builds its parser from its module's name `XTermParser` inside the input
    thread, so that name points at ours while the thread runs."""

    def run_input_thread(self) -> None:
        linux_driver.XTermParser = ConsoleParser  # type: ignore[misc]
        try:
            super().run_input_thread()
        finally:
            linux_driver.XTermParser = XTermParser  # type: ignore[misc]


async def settle(app: Any, leaving: Callable[[], bool] = lambda: False) -> None:
    """Return once the app and every widget of its top screen have handled what was
    queued for them, and nothing new was queued meanwhile (a key's effects: a screen
    pushed and mounted, the focus moved). `leaving`: the next key switches to another
    screen, so it need not wait for this one to catch up on what it missed."""
    for _ in range(SETTLE_ROUNDS):
        try:
            screen = app.screen
        except Exception:
            return
        pumps: list[MessagePump] = [app, *screen.walk_children(with_self=True)]
        idle = screen.is_mounted and all(p._message_queue.empty() for p in pumps)  # noqa: SLF001
        if idle and app.screen is screen:
            if not getattr(screen, "catch_up_pending", False) or leaving():
                return
            # a screen shown again catches up on what it missed just after its first
            # frame: the next key acts on what it shows then, as a slower typist's would
            await asyncio.sleep(CATCH_UP_POLL)
            continue
        await _drain(pumps)


async def _drain(pumps: list[MessagePump]) -> None:
    """One pass: every pump reaches a marker queued behind what it has now."""
    loop = asyncio.get_running_loop()
    waits = []
    for pump in pumps:
        done = loop.create_future()
        if pump.call_later(lambda d=done: d.done() or d.set_result(None)):
            waits.append(done)
    if waits:
        await asyncio.wait(waits, timeout=ROUND_TIMEOUT)


class KeyGate:
    """An App mixin: keys reach the app one at a time, each once the last one's effects
    have settled (see the module's docstring). Under Pilot (headless) it is off unless a
    test turns it on: Pilot waits on the screen between keys itself."""

    key_gate: bool | None = None  # None: on with a real terminal

    def get_driver_class(self) -> Any:
        driver = super().get_driver_class()  # type: ignore[misc]
        return ConsoleDriver if driver is linux_driver.LinuxDriver else driver

    def _gate_on(self) -> bool:
        if self.key_gate is None:
            return not self.is_headless  # type: ignore[attr-defined]
        return self.key_gate

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key) or event.is_forwarded or not self._gate_on():
            await super().on_event(event)  # type: ignore[misc]
            return
        state = self.__dict__.setdefault("_key_gate_state", _GateState())
        if event in state.released:
            state.released.discard(event)
        elif state.busy or state.held:
            state.held.append(event)
            return
        state.busy = True
        await super().on_event(event)  # type: ignore[misc]
        state.task = asyncio.create_task(self._release_next(state))

    async def _release_next(self, state: _GateState) -> None:
        await settle(self, lambda: bool(state.held) and self._switches_screen(state.held[0]))
        if not state.held:
            state.busy = False
            return
        key = state.held.popleft()
        state.released.add(key)
        self.post_message(key)  # type: ignore[attr-defined]


    def _switches_screen(self, key: events.Key) -> bool:
        """Whether `key` is bound to showing another screen (`show(...)`), where what
        the screen shown now has yet to catch up on does not matter."""
        try:
            found = self.active_bindings.get(key.key)  # type: ignore[attr-defined]
        except Exception:  # no screen to ask (the app starting or ending): wait as usual
            return False
        action = found.binding.action if found is not None else ""
        return action.removeprefix("app.").startswith(SWITCH_ACTION)


class _GateState:
    """Keys waiting their turn, and whether one is in flight."""

    def __init__(self) -> None:
        self.held: deque[events.Key] = deque()
        self.released: set[events.Key] = set()
        self.busy = False
        self.task: asyncio.Task[None] | None = None


def key_clashes(bindings: Iterable[Any], keymap: Mapping[str, str]) -> list[str]:
    """Keys that [keys] made do two things on one screen (its bindings and the app's):
    Textual keeps one binding and the other has no key, without a word (its clash hook
    skips every binding with an id). Defaults that shadow each other on purpose (a
    screen's q over the app's) are not clashes: one side must have been remapped."""
    bindings = [b for b in bindings if getattr(b, "id", None) is not None]

    def by_key(keys: Mapping[str, str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for b in bindings:
            for key in keys.get(b.id, b.key).split(","):
                ids = out.setdefault(key.strip(), [])
                if b.id not in ids:
                    ids.append(b.id)
        return out

    before = {tuple(ids) for ids in by_key({}).values() if len(ids) > 1}  # the defaults'
    return [f"{key}: {' and '.join(ids)}" for key, ids in by_key(keymap).items()
            if len(ids) > 1 and tuple(ids) not in before and any(i in keymap for i in ids)]

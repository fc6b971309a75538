"""The console's terminal parser: Esc followed quickly by a key is Escape, then that key
(never an Alt key, never a macOS Option character), and real keys' escape sequences still
read as those keys."""

from __future__ import annotations

import pytest
from textual import events

from tui.keys import ConsoleParser


def keys(data: str) -> list[str]:
    parser = ConsoleParser()
    return [t.key for t in parser.feed(data) if isinstance(t, events.Key)]


@pytest.mark.parametrize(("data", "expected"), [
    ("\x1b1", ["escape", "1"]),  # Textual alone: "¡" (an Option-key character)
    ("\x1b9", ["escape", "9"]),
    ("\x1ba", ["escape", "a"]),  # Textual alone: alt+a, after the escape delay
    ("\x1b:", ["escape", "colon"]),
    ("\x1bq", ["escape", "q"]),
    ("\x1b1run", ["escape", "1", "r", "u", "n"]),
    ("\x1b\x1b1", ["escape", "escape", "1"]),
])
def test_esc_then_a_key_is_two_keys(data: str, expected: list[str]) -> None:
    assert keys(data) == expected


@pytest.mark.parametrize(("data", "expected"), [
    ("\x1b[A", ["up"]),
    ("\x1bOB", ["down"]),
    ("\x1b[5~", ["pageup"]),
    ("\x1b[1;5C", ["ctrl+right"]),
    ("\x1bOP", ["f1"]),
    ("ab", ["a", "b"]),
    ("\r", ["enter"]),
])
def test_real_keys_are_unchanged(data: str, expected: list[str]) -> None:
    assert keys(data) == expected


def test_a_sequence_given_up_on_is_escape_then_its_keys() -> None:
    """A sequence the parser cannot read is re-read with ESC as Alt: here it is Escape."""
    parser = ConsoleParser()
    out = list(parser._sequence_to_key_events("x", alt=True))  # noqa: SLF001
    assert [k.key for k in out] == ["escape", "x"]

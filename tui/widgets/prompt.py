"""One-line prompts at the bottom of the screen, as vi and k9s have them: the `:` command
line (completion, history, errors said in the line itself) and the `/` filter line (a
live count of what matches).

Both are a `PromptLine`: a prefix (`:` or `/`), a borderless input, and a status at the
right (a hint, a count, an error). Textual's Input draws a three-row box when focused;
these stay one row, so what is typed is always seen.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.suggester import Suggester
from textual.widgets import Input, Static

from tui import completion as comp


class LineInput(Input):
    """An input one row high, with no box, focused or not."""

    DEFAULT_CSS = """
    LineInput, LineInput:focus { border: none; height: 1; padding: 0; width: 1fr;
                                 background: $panel; background-tint: $foreground 0%; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(compact=True, **kw)


class PromptLine(Horizontal):
    """Prefix, input, status: one row docked at the bottom."""

    DEFAULT_CSS = """
    PromptLine { dock: bottom; height: 1; width: 100%; background: $panel; }
    PromptLine > .prompt--prefix { width: auto; padding: 0 0 0 1; color: $accent;
                                   text-style: bold; }
    PromptLine > .prompt--status { width: auto; max-width: 60%; height: 1; padding: 0 1;
                                   color: $text-muted; }
    PromptLine > .prompt--status.-error { color: $error; text-style: bold; }
    """

    def __init__(self, prefix: str, field: Input, **kw: Any) -> None:
        super().__init__(**kw)
        self.prefix = prefix
        self.field = field
        self._status = Static("", classes="prompt--status")

    def compose(self) -> ComposeResult:
        yield Static(self.prefix, classes="prompt--prefix")
        yield self.field
        yield self._status

    def say(self, text: str, *, error: bool = False) -> None:
        """Show `text` at the right of the line (an error in the error colour); said
        before the line is mounted (a busy machine), it shows once it is."""
        self._status.set_class(error, "-error")
        self._status.update(Text(text, no_wrap=True, overflow="ellipsis"))


class CommandSuggester(Suggester):
    """The dim completion after the cursor: the first word the last one can become."""

    def __init__(self, vocab: comp.Vocabulary) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.vocab = vocab

    async def get_suggestion(self, value: str) -> str | None:
        return comp.suggestion(value, self.vocab)


class CommandInput(LineInput):
    """The `:` line's input: Tab completes, Up and Down walk the history."""

    BINDINGS = [
        Binding("tab", "complete", "Complete", show=False, id="prompt.complete"),
        Binding("up", "older", "Older line", show=False, id="prompt.older"),
        Binding("down", "newer", "Newer line", show=False, id="prompt.newer"),
    ]

    def __init__(self, vocab: comp.Vocabulary, history: comp.History, **kw: Any) -> None:
        super().__init__(suggester=CommandSuggester(vocab), **kw)
        self.vocab = vocab
        self.history = history
        self._at = len(history.lines)  # the history line shown; len: the typed one
        self._typed = ""  # what was typed before walking the history (its prefix)
        self._cycle: tuple[str, str, tuple[str, ...], int] | None = None  # Tab in turn

    def action_complete(self) -> None:
        """Tab: the one match (and a space when more words follow), else the longest
        common start, else the next match in turn."""
        if self._cycle is not None and self.value == self._cycle[0]:
            _, head, found, i = self._cycle
            i = (i + 1) % len(found)
            self._set(head + found[i], cycle=(head, found, i))
            return
        c = comp.complete(self.value, self.vocab)
        head = self.value[:c.start]
        if len(c.candidates) == 1:
            self._set(head + c.candidates[0] + (" " if c.more else ""))
            return
        if not c.candidates:
            self.bell_or_say("nothing to complete")
            return
        common = comp.common_prefix([w.lower() for w in c.candidates])
        if len(common) > len(c.word) and all(w.startswith(common) for w in c.candidates):
            self._set(head + common)
        else:
            self._set(head + c.candidates[0], cycle=(head, c.candidates, 0))
        self._say_matches(c.candidates)

    def _set(self, value: str,
             cycle: tuple[str, tuple[str, ...], int] | None = None) -> None:
        self.value = value
        self.cursor_position = len(value)
        self._cycle = (value, *cycle) if cycle else None

    def _say_matches(self, found: tuple[str, ...]) -> None:
        line = self.parent
        if isinstance(line, PromptLine):
            line.say(" ".join(found[:12]) + (" …" if len(found) > 12 else ""))

    def bell_or_say(self, text: str) -> None:
        line = self.parent
        if isinstance(line, PromptLine):
            line.say(text)

    def action_older(self) -> None:
        if self._at == len(self.history.lines):
            self._typed = self.value
        found = self.history.older(self._at, self._typed)
        if found is not None:
            self._at = found
            self._set(self.history.lines[found])

    def action_newer(self) -> None:
        found = self.history.newer(self._at, self._typed)
        if found is None:
            self._at = len(self.history.lines)
            self._set(self._typed)
        else:
            self._at = found
            self._set(self.history.lines[found])

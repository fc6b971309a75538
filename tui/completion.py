"""The `:` prompt's knowledge: what a word can be completed to, whether a line can run,
and the lines typed before (kept in the state directory, 0600).

Plain data in, plain data out (no widgets), so it is tested without a terminal. The
words come from the console (`vocabulary`): job names, host names and groups, alert
ids, check names, run ids, themes; which word a command's argument takes is its name
in tui/commands.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui import commands as cmds

HISTORY_FILE = "console_history"
HISTORY_LINES = 500
DURATIONS = ("15m", "30m", "1h", "2h", "4h", "8h", "1d")
DURATION_UNITS = ("m", "h", "d", "s")
Vocabulary = Mapping[str, Sequence[str]]  # argument name -> the words it may be


@dataclass(frozen=True)
class Completion:
    """The word being typed: where it starts, and what it may become."""

    start: int  # offset of the word in the line
    word: str
    candidates: tuple[str, ...]
    more: bool  # the command takes more words after this one (Tab adds a space)


def _words(text: str) -> tuple[list[str], str]:
    """The finished words and the one being typed (empty after a space)."""
    parts = text.split()
    if not text or text[-1].isspace():
        return parts, ""
    return parts[:-1], parts[-1]


def complete(text: str, vocab: Vocabulary) -> Completion:
    """What the last word of `text` (a command line without its `:`) may complete to."""
    done, word = _words(text.lstrip())
    start = len(text) - len(word)
    if not done:
        names = [c.name for c in cmds.COMMANDS]
        found = _exact_first(tuple(n for n in names if n.startswith(word.lower())), word)
        takes = {c.name: bool(c.args or c.optional or c.rest) for c in cmds.COMMANDS}
        return Completion(start, word, found, len(found) == 1 and takes[found[0]])
    cmd = cmds.find(done[0])
    if cmd is not None and cmd.rest and "--" in done[1:]:
        return _complete_rest(text, vocab.get(cmd.rest, ()))
    if cmd is None or "--" in done[1:]:
        return Completion(start, word, (), False)
    slots = [*cmd.args, *cmd.optional]
    index = len(done) - 1
    if index >= len(slots):
        return Completion(start, word, (), False)
    low = word.lower()
    found = _exact_first(tuple(w for w in vocab.get(slots[index], ())
                               if w.lower().startswith(low)), word)
    if slots[index] == "duration" and word.isdigit():  # 45 -> 45m 45h 45d 45s
        found = tuple(dict.fromkeys([*(word + unit for unit in DURATION_UNITS), *found]))
    return Completion(start, word, found, index + 1 < len(cmd.args) or bool(cmd.rest))


def _exact_first(found: tuple[str, ...], word: str) -> tuple[str, ...]:
    """A word typed out in full comes first: `run` is run, then runs in turn (it went
    to `runs` at once, and `run` could not be had by Tab)."""
    exact = tuple(w for w in found if w.lower() == word.lower())
    return exact + tuple(w for w in found if w.lower() != word.lower()) if exact else found


def _complete_rest(text: str, lines: Sequence[str]) -> Completion:
    """The free text after `--` (a fan-out's command) as one word, spaces and all:
    completed from the commands run before, newest first, as a shell's history is."""
    dashes = re.search(r"(?<=\s)--(\s+|$)", text)  # the word `--`, not one holding it
    after = dashes.end() if dashes else len(text)
    typed = text[after:]
    found = tuple(line for line in lines if line.startswith(typed) and line != typed)
    return Completion(after, typed, found, False)


def suggestion(text: str, vocab: Vocabulary) -> str | None:
    """The whole line with its last word completed to the first candidate (shown dim
    after the cursor), or None."""
    c = complete(text, vocab)
    if not c.word or not c.candidates:
        return None
    return text[:c.start] + c.candidates[0]


def common_prefix(words: Sequence[str]) -> str:
    if not words:
        return ""
    first, last = min(words), max(words)
    n = 0
    while n < len(first) and n < len(last) and first[n] == last[n]:
        n += 1
    return first[:n]


def check(line: str, vocab: Vocabulary) -> str | None:
    """Why `line` cannot run, in the words the console uses, or None. Only what can be
    told before running it (names, ids, how many arguments); the engine says the rest."""
    try:
        cmd, args = cmds.parse(line)
    except cmds.CommandError as e:
        return str(e)
    for slot, value in zip([*cmd.args, *cmd.optional], args, strict=False):
        if value is None:
            continue
        if slot == "job" and value not in vocab.get("job", ()):
            return f"no job named {value!r}"
        if slot == "name" and cmd.name == "theme" and value not in vocab.get("name", ()):
            return f"no theme {value!r}; one of: {', '.join(vocab.get('name', ()))}"
        if slot in ("run", "alert"):
            try:
                (cmds.parse_run_id if slot == "run" else cmds.parse_alert_id)(value)
            except cmds.CommandError as e:
                return str(e)
        if slot == "duration":  # said in the line, which stays open to fix it
            from core.durations import DurationError, parse_duration

            try:
                parse_duration(value)
            except DurationError as e:
                return str(e)
    return None


def hint(text: str) -> str:
    """The usage and help of the command being typed (after its name), else ''."""
    done, word = _words(text.lstrip())
    name = done[0] if done else ""
    cmd = cmds.find(name) if name else None
    if cmd is None:
        return ""
    return f":{cmd.usage}  {cmd.help}"


def vocabulary(app: Any) -> dict[str, Sequence[str]]:
    """The words of this console, read when the prompt opens: jobs, hosts and groups,
    checks, alert ids, recent run ids, themes."""
    engine = app.engine
    config = engine.config
    jobs = sorted(config.jobs)
    hosts = sorted(config.hosts)
    groups = sorted({f"@{g}" for h in config.hosts.values() for g in getattr(h, "groups", ())})
    checks = sorted(getattr(config, "checks", {}) or {})
    alerts: list[str] = []
    runs: list[str] = []
    with contextlib.suppress(Exception):  # an engine still starting has none to offer
        alerts = [str(a["id"]) for a in engine.list_alerts()]
    if app.engine_ready:
        with contextlib.suppress(Exception):
            active = [str(r["id"]) for r in engine.queue()]
            recent = [str(r["id"]) for r in engine.list_runs(limit=20)]
            runs = list(dict.fromkeys(active + recent))
    themes = sorted(n for n in app.available_themes if not n.startswith("textual-")
                    and n not in ("ansi-dark", "ansi-light"))
    return {"job": jobs, "pattern": [*groups, *hosts], "alert": alerts, "run": runs,
            "target": [*checks, *hosts, *(f"#{a}" for a in alerts)],
            "duration": list(DURATIONS), "name": themes,
            "command": ReadLater(lambda: fanout_commands(app))}


class ReadLater(Sequence[str]):
    """Words read the first time they are asked for, then kept: the fan-outs' record is
    on disk, and most prompts never complete a command after `--`."""

    def __init__(self, read: Callable[[], list[str]]) -> None:
        self._read: Callable[[], list[str]] | None = read
        self._words: list[str] = []

    def _get(self) -> list[str]:
        if self._read is not None:
            self._words, self._read = self._read(), None
        return self._words

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())


def fanout_commands(app: Any) -> list[str]:
    """Commands fanned out before, newest first: the prompt's own history, then the
    recorded fan-outs (the CLI's and other consoles' too)."""
    said = [line.split("--", 1)[1].strip() for line in reversed(history_for(app).lines)
            if line.split(None, 1)[:1] == ["fanout"] and "--" in line]
    recorded: list[str] = []
    with contextlib.suppress(Exception):  # an engine without fan-outs has none to offer
        recorded = [str(f["command"]) for f in app.engine.fanout_list(limit=50)]
    return [c for c in dict.fromkeys([*said, *recorded]) if c]


class History:
    """Lines run from the prompt, oldest first; kept in `path` (0600) when there is one."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines: list[str] = []
        if path is not None:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                self.lines = [x for x in path.read_text().splitlines() if x.strip()]
        self.lines = self.lines[-HISTORY_LINES:]

    def add(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        if line in self.lines:
            self.lines.remove(line)  # once, as the newest
        self.lines.append(line)
        del self.lines[:-HISTORY_LINES]
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(OSError):  # a read-only state directory: this session's
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("".join(x + "\n" for x in self.lines))
            os.replace(tmp, self.path)

    def older(self, index: int, prefix: str) -> int | None:
        """The index of the newest line before `index` starting with `prefix`."""
        for i in range(min(index, len(self.lines)) - 1, -1, -1):
            if self.lines[i].startswith(prefix):
                return i
        return None

    def newer(self, index: int, prefix: str) -> int | None:
        for i in range(index + 1, len(self.lines)):
            if self.lines[i].startswith(prefix):
                return i
        return None


_histories: weakref.WeakKeyDictionary[Any, History] = weakref.WeakKeyDictionary()


def history_for(app: Any) -> History:
    """The console's one history, loaded once per session from its state directory."""
    found = _histories.get(app)
    if found is None:
        state = getattr(app.engine, "state_dir", None)
        path = Path(state) / HISTORY_FILE if state and Path(state).is_dir() else None
        found = _histories[app] = History(path)
    return found

"""Modal dialogs: the `:` command line, confirmations and the key help."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Input, Label, Static

from tui.commands import COMMANDS
from tui.palette import style
from tui.widgets.common import NavTable


class CommandLineScreen(ModalScreen[str | None]):
    """A one-line prompt at the bottom, like vi's and k9s's `:`: what is typed shows,
    Tab completes commands and their arguments, Up/Down recall earlier lines, and a line
    that cannot run says why in the line itself (the prompt stays open to fix it)."""

    DEFAULT_CSS = """
    CommandLineScreen { align: left bottom; background: $background 0%; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="command.cancel")]

    def compose(self) -> ComposeResult:
        from tui import completion as comp
        from tui.widgets.prompt import CommandInput, PromptLine

        self.vocab = comp.vocabulary(self.app)
        self.history = comp.history_for(self.app)
        field = CommandInput(self.vocab, self.history, id="command",
                             placeholder="command  (Tab completes, :help lists them)")
        yield PromptLine(":", field, id="prompt")

    def on_mount(self) -> None:
        self.query_one("#command", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        from tui.completion import hint
        from tui.widgets.prompt import PromptLine

        self.query_one(PromptLine).say(hint(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from tui.completion import check
        from tui.widgets.prompt import PromptLine

        event.stop()
        line = event.value.strip().removeprefix(":").strip()
        if not line:
            self.dismiss(None)
            return
        error = check(line, self.vocab)
        if error:
            self.query_one(PromptLine).say(error, error=True)
            return
        self.history.add(line)
        self.dismiss(line)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Destructive actions ask first; `y` confirms, anything else declines."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 60; max-width: 95%; height: auto; border: thick $error;
                               background: $surface; padding: 1 2; }
    ConfirmScreen #question { text-style: bold; }
    ConfirmScreen #keys { color: $text-muted; margin-top: 1; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "No", show=False, id="confirm.cancel"),
    ]

    def __init__(self, question: str, detail: str = "", *, strong: bool = False) -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.strong = strong  # a key is not enough: the person types "yes"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question), id="question")
            if self.detail:
                yield Label(Text(self.detail), id="detail")
            if self.strong:
                yield Input(placeholder='type "yes" and Enter to go ahead; Esc: no',
                            id="typed")
            else:
                yield Label("y: yes   n / Esc: no", id="keys")

    def on_mount(self) -> None:
        if self.strong:
            self.query_one("#typed", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "typed":
            event.stop()
            self.dismiss(event.value.strip().lower() == "yes")

    def action_answer(self, yes: bool) -> None:
        if self.strong and yes:
            return  # `y` alone does not confirm a strong question (and types into the box)
        self.dismiss(yes)


ACTION_WIDTH = 31  # the help's middle column: key descriptions fit, and 80 columns show IDs


class HelpScreen(ModalScreen[None]):
    """Every binding that works on the screen below, with its id for `[keys]` remapping:
    the screen's own first, then the global ones, Textual's generic widget keys last."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90%; max-width: 100; height: 90%; border: round $primary;
                            background: $surface; padding: 0 1; }
    HelpScreen #title { text-style: bold; height: 1; }
    HelpScreen #hint { color: $text-muted; height: 1; }
    HelpScreen #keys { background: $surface; height: auto; max-height: 100%; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", show=False, id="help.close_alt"),
        Binding("q", "close", "Close", show=False, id="help.quit"),
    ]

    def __init__(self, below: Screen) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Keys: {self.below.__class__.__name__.removesuffix('Screen')}",
                         id="title")
            yield NavTable(id="keys", show_cursor=True)  # j/k, g/G as in every table
            yield Static("Remap any key in the config: [keys] <id> = \"<key>\".  "
                         "Esc closes.", id="hint", markup=False)  # [keys] is no style

    def on_mount(self) -> None:
        from tui.widgets.keybar import help_sections

        table = self.query_one(DataTable)
        table.add_column("KEY")
        table.add_column("ACTION", width=ACTION_WIDTH)  # a command's help wraps within it
        table.add_column("ID")
        for title, bindings in help_sections(self.app, self.below):
            if not bindings:
                continue
            table.add_row(Text(""), Text(title, style="bold"), Text(""))
            for binding in bindings:
                table.add_row(Text(self.app.get_key_display(binding)),
                              Text(binding.description or binding.action),
                              Text(binding.id or "", style=style("muted")))
        table.add_row(Text(""), Text(": commands (aliases on the right)", style="bold"),
                      Text(""))
        read_only = getattr(self.app, "read_only", False)
        for cmd in COMMANDS:
            if read_only and cmd.acts:
                continue  # refused in a read-only console: not offered
            usage = cmd.usage.removeprefix(cmd.name).strip()
            table.add_row(Text(":" + cmd.name), Text(f"{usage}  {cmd.help}" if usage else cmd.help),
                          Text(" ".join(":" + a for a in cmd.aliases), style=style("muted")),
                          height=None)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)

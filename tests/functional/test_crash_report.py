"""A console crash is reported without local variables and with the config's secrets
masked, on screen and in the report kept in the state directory."""

from __future__ import annotations

import pytest

from core.fleetconfig import parse_config_text
from tests.helpers import console_app, ready

TOKEN = "tok-9f8e7d6c5b4a3210"
LITERAL = "Bearer literal-secret-123456"


async def test_a_crash_report_has_no_locals_and_no_secrets(state_dir, monkeypatch, capfd):
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    config = parse_config_text(f"""
[notifiers.hook]
kind = "webhook"
url = "https://hooks.example/${{HOOK_TOKEN}}"
headers = {{ Authorization = "{LITERAL}" }}

[jobs.hello]
command = "echo hi"
""", "test.toml")
    app = console_app(config, state_dir)

    def boom() -> None:
        local_note = "a local value nobody should see"  # noqa: F841 - shown with locals on
        raise RuntimeError(f"delivery failed for {TOKEN} with {LITERAL}")

    with pytest.raises(RuntimeError):
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            app.call_later(boom)
            await pilot.pause()
            await pilot.pause()
    captured = capfd.readouterr()
    shown = captured.out + captured.err  # what the terminal got when the console exited
    (report,) = state_dir.glob("crash-*.txt")
    text = report.read_text()
    for out in (shown, text):
        assert "RuntimeError: delivery failed for [redacted] with [redacted]" in out
        assert TOKEN not in out and LITERAL not in out
        assert "a local value nobody should see" not in out  # no locals
    assert "fleetdeck crashed; this report is kept in" in shown
    assert report.stat().st_mode & 0o777 == 0o600

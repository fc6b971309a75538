"""Maintenance windows (one-off and cron) at fixed instants, and the alerting config's
one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.alerts.config import MaintenanceConfig
from core.alerts.maintenance import active_window, covers, occurrence, silence_matches
from core.config import ConfigError
from core.fleetconfig import parse_config_text


def ts(*args: int, tz: object = UTC) -> float:
    return datetime(*args, tzinfo=tz).timestamp()  # type: ignore[arg-type]


NIGHTLY = MaintenanceConfig("nightly", targets="@db", hosts=("db1", "db2"),
                            schedule="0 2 * * *", duration=3600.0, timezone="UTC")


@pytest.mark.parametrize("at, active", [
    (ts(2026, 11, 22, 1, 59, 59), False),
    (ts(2026, 11, 22, 2, 0), True),
    (ts(2026, 11, 22, 2, 59, 59), True),
    (ts(2026, 11, 22, 3, 0), False),  # the end is not inside
    (ts(2026, 11, 23, 2, 30), True),
])
def test_cron_window_is_active_from_each_start_for_its_duration(at, active):
    occ = occurrence(NIGHTLY, at)
    assert (occ is not None) is active
    if occ:
        assert occ[1] - occ[0] == 3600


def test_cron_window_in_a_named_zone_follows_its_wall_clock():
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    w = MaintenanceConfig("sat", checks=("disk",), schedule="0 22 * * 6", duration=7200.0,
                          timezone="Europe/Berlin")
    saturday = ts(2026, 11, 28, 22, 30, tz=berlin)
    assert occurrence(w, saturday) == (ts(2026, 11, 28, 22, 0, tz=berlin),
                                       ts(2026, 11, 29, 0, 0, tz=berlin))
    assert occurrence(w, ts(2026, 11, 27, 22, 30, tz=berlin)) is None  # a Friday


def test_one_off_window_and_what_it_covers():
    w = MaintenanceConfig("patch", targets="web1", hosts=("web1",), checks=("http",),
                          start=ts(2026, 12, 1, 3), end=ts(2026, 12, 1, 4))
    assert occurrence(w, ts(2026, 12, 1, 3, 30)) is not None
    assert occurrence(w, ts(2026, 12, 1, 4)) is None
    assert covers(w, "http", "web1") and not covers(w, "disk", "web1")
    assert not covers(w, "http", "web2")
    found = active_window([NIGHTLY, w], "http", "web1", ts(2026, 12, 1, 3, 30))
    assert found is not None and found[0].name == "patch"
    assert active_window([NIGHTLY, w], "http", "db1", ts(2026, 12, 1, 3, 30)) is None


def test_silence_targets():
    alert = {"id": 12, "source": "disk", "target": "db1"}
    for t in ("disk", "db1", "disk@db1", "#12"):
        assert silence_matches(t, alert)
    for t in ("disk@db2", "db", "#1"):
        assert not silence_matches(t, alert)


CONFIG_OK = """
[hosts.db1]
groups = ["db"]
[hosts.db2]
groups = ["db"]

[alerts]
repeat = "30m"

[notifiers.slack]
kind = "webhook"
url = "${SLACK_URL}"
slack = true
events = ["firing", "resolved"]

[notifiers.page]
kind = "command"
command = "notify-send \\"$FLEETDECK_ALERT_SUMMARY\\""

[maintenance.nightly]
targets = "@db"
schedule = "0 2 * * *"
duration = "1h"
timezone = "UTC"

[maintenance.patch]
checks = ["http"]
start = 2026-12-01T03:00:00Z
end = "2026-12-01 04:00"
timezone = "UTC"

[jobs.backup]
command = "true"
alert_on = ["failed", "missed"]

[checks.http]
kind = "http"
url = "http://{host}/"
"""


def test_a_full_alerting_config_reads():
    cfg = parse_config_text(CONFIG_OK, "fd.toml")
    a = cfg.alerting
    assert a.settings.repeat == 1800
    assert a.notifiers["slack"].slack and a.notifiers["slack"].events == ("firing", "resolved")
    assert a.maintenance["nightly"].hosts == ("db1", "db2")
    assert a.maintenance["patch"].end - a.maintenance["patch"].start == 3600
    assert cfg.jobs["backup"].alert_on == ("failed", "missed")


@pytest.mark.parametrize("text, error", [
    ('[notifiers.x]\nurl = "http://a"\n',
     "fd.toml:1: notifiers.x: missing required key 'kind' (webhook or command)"),
    ('[notifiers.x]\nkind = "email"\n',
     "fd.toml:2: notifiers.x.kind: kind must be one of webhook, command, got 'email'"),
    ('[notifiers.x]\nkind = "webhook"\nurl = "ftp://a"\n',
     "fd.toml:3: notifiers.x.url: url must start with http:// or https:// "
     "(or be an ${ENV} or ${file:PATH} reference)"),
    ('[notifiers.x]\nkind = "webhook"\nurl = "http://a"\nevents = ["fired"]\n',
     "fd.toml:4: notifiers.x.events: events items must be one of firing, resolved, reminder, "
     "got 'fired'"),
    ('[notifiers.x]\nkind = "webhook"\nurl = "http://a"\nrepeat = "10s"\n',
     "fd.toml:4: notifiers.x.repeat: repeat must be at least 1m, got '10s'"),
    ('[alerts]\nretry_backof = "1s"\n',
     "fd.toml:2: alerts.retry_backof: unknown key 'retry_backof' (did you mean "
     "'retry_backoff'?)"),
    ('[maintenance.m]\nchecks = ["x"]\nschedule = "61 * * * *"\nduration = "1h"\n',
     "fd.toml:3: maintenance.m.schedule: bad cron expression '61 * * * *': minute 61 out of "
     "range 0-59"),
    ('[maintenance.m]\nchecks = ["x"]\nschedule = "@daily"\n',
     "fd.toml:1: maintenance.m: a recurring window needs 'duration', e.g. '2h'"),
    ('[maintenance.m]\nchecks = ["x"]\nstart = "2026-12-01 04:00"\nend = "2026-12-01 03:00"\n',
     "fd.toml:4: maintenance.m.end: end must be after start"),
    ('[maintenance.m]\nstart = "2026-12-01 04:00"\nend = "2026-12-01 05:00"\n',
     "fd.toml:1: maintenance.m: a maintenance window needs 'targets', 'checks' or both"),
    ('[maintenance.m]\ntargets = "nosuch"\nchecks = ["x"]\nstart = "tomorrow"\n'
     'end = "2026-12-01 05:00"\n',
     "fd.toml:2: maintenance.m.targets: "),
    ('[jobs.j]\ncommand = "true"\nalert_on = ["failing"]\n',
     "fd.toml:3: jobs.j.alert_on: alert_on items must be one of failed, missed, got 'failing'"),
])
def test_alerting_mistakes_are_one_line_each(text, error):
    with pytest.raises(ConfigError) as e:
        parse_config_text(text, "fd.toml")
    lines = str(e.value).splitlines()
    assert any(line.startswith(error) for line in lines), lines
    assert all("\n" not in line and "Traceback" not in line for line in lines)

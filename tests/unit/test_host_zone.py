"""core.jobs.zones: the host's zone found as the system finds it, and offset changes.

Every lookup here runs against files in a temp dir: the TZ variable, an /etc/timezone
file, an /etc/localtime symlink, and an /etc/localtime copied from the zoneinfo data
(matched by content).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.jobs.zones import local_timezone_name, offset_changes, zoneinfo_dirs

TZDATA = Path(zoneinfo_dirs()[-1])  # the tzdata package's zoneinfo (a project dependency)


def lookup(tmp: Path, environ: dict[str, str] | None = None,
           zoneinfo: tuple[str, ...] = (str(TZDATA),)) -> str:
    return local_timezone_name(environ=environ or {}, timezone_file=str(tmp / "timezone"),
                               localtime=str(tmp / "localtime"), zoneinfo=zoneinfo)


def test_tzdata_package_is_where_the_tests_expect_it():
    assert (TZDATA / "Europe" / "Berlin").is_file()
    assert (TZDATA / "zone1970.tab").is_file()


def test_nothing_found_is_utc(tmp_path):
    assert lookup(tmp_path) == "UTC"


@pytest.mark.parametrize("tz, expected", [
    ("Asia/Tokyo", "Asia/Tokyo"),
    (":America/New_York", "America/New_York"),
    ("/usr/share/zoneinfo/Europe/Berlin", "Europe/Berlin"),
    (":/usr/share/zoneinfo/posix/Australia/Lord_Howe", "Australia/Lord_Howe"),
    ("  Europe/Paris  ", "Europe/Paris"),
])
def test_tz_variable(tmp_path, tz, expected):
    (tmp_path / "timezone").write_text("Asia/Kolkata\n")
    assert lookup(tmp_path, {"TZ": tz}) == expected


def test_tz_variable_naming_a_copied_file(tmp_path):
    copy = tmp_path / "mytz"
    shutil.copyfile(TZDATA / "America" / "New_York", copy)
    assert lookup(tmp_path, {"TZ": f":{copy}"}) == "America/New_York"


@pytest.mark.parametrize("tz", ["Not/AZone", "", ":", "../../etc/passwd", "localtime"])
def test_a_bad_tz_variable_falls_through(tmp_path, tz):
    (tmp_path / "timezone").write_text("Asia/Kolkata\n")
    assert lookup(tmp_path, {"TZ": tz}) == "Asia/Kolkata"


def test_etc_timezone_comes_before_the_localtime_link(tmp_path):
    (tmp_path / "timezone").write_text("Europe/Paris\n")
    os.symlink(TZDATA / "Asia" / "Tokyo", tmp_path / "localtime")
    assert lookup(tmp_path) == "Europe/Paris"
    (tmp_path / "timezone").write_text("Nowhere/Special\n")
    assert lookup(tmp_path) == "Asia/Tokyo"


def test_localtime_symlink(tmp_path):
    os.symlink(TZDATA / "Australia" / "Lord_Howe", tmp_path / "localtime")
    assert lookup(tmp_path) == "Australia/Lord_Howe"


def test_localtime_relative_symlink_keeps_the_name_it_links_to(tmp_path):
    # a link to a zone that is itself a link (or a copy) of another keeps its own name
    zi = tmp_path / "share" / "zoneinfo"
    (zi / "Europe").mkdir(parents=True)
    shutil.copyfile(TZDATA / "Europe" / "Berlin", zi / "Europe" / "Berlin")
    os.symlink("Berlin", zi / "Europe" / "Oslo")
    os.symlink("share/zoneinfo/Europe/Oslo", tmp_path / "localtime")
    assert lookup(tmp_path) == "Europe/Oslo"


def test_localtime_copied_file_matched_by_content(tmp_path):
    shutil.copyfile(TZDATA / "America" / "New_York", tmp_path / "localtime")
    assert lookup(tmp_path) == "America/New_York"


def test_copied_file_shared_by_several_zones_takes_the_canonical_name(tmp_path):
    # in tzdata, Europe/Oslo, Europe/Stockholm, Arctic/Longyearbyen... are Europe/Berlin's
    # bytes; zone1970.tab names Europe/Berlin as the zone
    shutil.copyfile(TZDATA / "Europe" / "Berlin", tmp_path / "localtime")
    assert lookup(tmp_path) == "Europe/Berlin"
    shutil.copyfile(TZDATA / "UTC", tmp_path / "localtime")
    assert lookup(tmp_path) == "UTC"


def test_copied_file_against_a_zoneinfo_dir_of_its_own(tmp_path):
    zi = tmp_path / "zi"
    (zi / "Arctic").mkdir(parents=True)
    (zi / "Asia").mkdir()
    (zi / "posix" / "Asia").mkdir(parents=True)
    shutil.copyfile(TZDATA / "Asia" / "Tokyo", zi / "Arctic" / "Longyearbyen")  # a decoy
    shutil.copyfile(TZDATA / "Asia" / "Tokyo", zi / "Asia" / "Tokyo")
    shutil.copyfile(TZDATA / "Asia" / "Tokyo", zi / "posix" / "Asia" / "Tokyo")
    (zi / "zone1970.tab").write_text("JP\t+353916+1394441\tAsia/Tokyo\n")
    shutil.copyfile(TZDATA / "Asia" / "Tokyo", tmp_path / "localtime")
    assert lookup(tmp_path, zoneinfo=(str(zi),)) == "Asia/Tokyo"


def test_copied_file_matching_nothing_is_utc(tmp_path):
    data = (TZDATA / "Europe" / "Berlin").read_bytes()
    (tmp_path / "localtime").write_bytes(data[:-1] + b"X")
    assert lookup(tmp_path) == "UTC"
    (tmp_path / "localtime").write_bytes(b"not a zone file")
    assert lookup(tmp_path) == "UTC"


def test_system_zoneinfo_is_searched_first_by_default(tmp_path):
    berlin = Path("/usr/share/zoneinfo/Europe/Berlin")
    if not berlin.is_file():
        pytest.skip("no system zoneinfo database")
    shutil.copyfile(berlin, tmp_path / "localtime")
    got = local_timezone_name(environ={}, timezone_file=str(tmp_path / "timezone"),
                              localtime=str(tmp_path / "localtime"))
    assert got == "Europe/Berlin"


def test_default_lookup_is_a_real_zone():
    ZoneInfo(local_timezone_name())


# ------------------------------------------------------------ offset changes ----
def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("zone, expected", [
    ("Europe/Berlin", [("2026-03-29T01:00", 3600, 7200), ("2026-10-25T01:00", 7200, 3600)]),
    ("America/New_York", [("2026-03-08T07:00", -18000, -14400),
                          ("2026-11-01T06:00", -14400, -18000)]),
    ("Australia/Lord_Howe", [("2026-04-04T15:00", 39600, 37800),
                             ("2026-10-03T15:30", 37800, 39600)]),
    ("UTC", []),
])
def test_offset_changes_in_2026(zone, expected):
    got = offset_changes(ZoneInfo(zone), utc("2026-01-01T00:00"), utc("2027-01-01T00:00"))
    assert got == [(int(utc(at)), old, new) for at, old, new in expected]


def test_offset_changes_window_is_half_open():
    z = ZoneInfo("Europe/Berlin")
    at = utc("2026-03-29T01:00")
    assert offset_changes(z, at - 10, at) == [(int(at), 3600, 7200)]
    assert offset_changes(z, at, at + 10) == []

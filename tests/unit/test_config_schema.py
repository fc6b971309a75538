"""Config keys declared once: the JSON Schema (`fleetdeck config-schema`), the reader and
the `init` template come from the same declarations, and agree."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import jsonschema
import pytest

from core.config import ConfigError
from core.default_config import DEFAULT_CONFIG_TOML
from core.fleetconfig import SECTIONS, config_schema, parse_config_text
from tests.helpers import ROOT
from tui.keymap import BINDING_IDS


@pytest.fixture(scope="module")
def schema() -> dict:
    out = subprocess.run([sys.executable, "-m", "tui.cli", "config-schema"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def _errors(schema: dict, doc: dict) -> list[str]:
    v = jsonschema.Draft202012Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```toml\n(.*?)```", text, re.S)


def test_the_printed_schema_is_the_declared_one(schema) -> None:
    assert schema == json.loads(json.dumps(config_schema(BINDING_IDS)))


def test_the_init_template_is_valid_for_the_schema_and_the_reader(schema) -> None:
    assert _errors(schema, tomllib.loads(DEFAULT_CONFIG_TOML)) == []
    parse_config_text(DEFAULT_CONFIG_TOML)  # raises on any issue


def test_the_readme_examples_are_valid_for_the_schema_and_the_reader(schema) -> None:
    examples = readme_examples()
    assert len(examples) >= 5
    inventory = "".join(f'[hosts.web0{i}]\ngroups = ["web"]\ntags = {{ role = "cache" }}\n'
                        for i in range(1, 5)) + '[hosts.db1]\ngroups = ["db"]\n'
    # (the hosts the examples target)
    for text in examples:
        assert _errors(schema, tomllib.loads(text)) == [], text
        parse_config_text(inventory + text, "README.md")


def test_an_unknown_key_is_refused_by_schema_and_reader_alike(schema) -> None:
    text = '[jobs.x]\ncommand = "true"\nretires = 2\n'
    assert any("retires" in e for e in _errors(schema, tomllib.loads(text)))
    with pytest.raises(ConfigError) as e:
        parse_config_text(text, "c.toml")
    assert str(e.value) == "c.toml:3: jobs.x.retires: unknown key 'retires' (did you mean " \
                           "'retries'?)"
    assert _errors(schema, {"enigne": {}}) != []
    assert _errors(schema, {"keys": {"app.quitt": "q"}}) != []


def test_a_value_out_of_the_declared_range_is_refused_by_both(schema) -> None:
    text = "[engine]\nmax_concurrent_runs = 0\n"
    assert _errors(schema, tomllib.loads(text)) != []
    with pytest.raises(ConfigError, match="max_concurrent_runs must be 1..10000"):
        parse_config_text(text)


def test_every_declared_key_is_read_shown_in_the_schema_and_the_template(schema) -> None:
    """One declaration: the schema's properties are the declared keys, the reader accepts
    exactly those (a key one letter off is an unknown key), the template shows each."""
    template = DEFAULT_CONFIG_TOML
    for section in SECTIONS:
        props = schema["properties"][section.name]
        table = props["additionalProperties"] if section.named else props
        assert sorted(table["properties"]) == sorted(section.names())
        for key in section.keys:
            if key.type == "steps":  # an array of tables: shown by its headers
                head = rf"^# \[\[{section.name}\.[^.\]]+\.{key.name}\]\]"
                assert re.search(head, template, re.M), key.name
                continue
            assert re.search(rf"^(# )?{re.escape(key.name)} = ", template, re.M), key.name
            assert key.doc in template or key.doc in template.replace("\n# ", " "), key.name


def test_key_binding_ids_are_checked_against_the_consoles(tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[keys]\n"jobs.run" = "x"\n"app.quitt" = "q"\n')
    out = subprocess.run([sys.executable, "-m", "tui.cli", "check-config", str(cfg)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert f"{cfg}:3: keys.\"app.quitt\": unknown binding id 'app.quitt' (did you mean " \
           "'app.quit'?)" in out.stderr
    assert "jobs.run" not in out.stderr

"""The engine API is one list (core.api.METHODS): the engine, the attached engine and the
control socket's dispatch all have every method, with the listed parameters."""

from __future__ import annotations

import inspect

from core.api import METHODS, EngineAPI, bind
from core.control.attached import AttachedEngine
from core.jobs.engine import Engine


def test_the_engine_has_every_method_with_its_parameters() -> None:
    for m in METHODS:
        func = getattr(Engine, m.name)
        params = inspect.signature(func).parameters
        assert set(m.params) <= set(params), m.name
        if m.is_action:
            assert "actor" in params and params["actor"].kind is inspect.Parameter.KEYWORD_ONLY
            assert inspect.iscoroutinefunction(func), m.name


def test_the_attached_engine_has_every_method_too() -> None:
    for m in METHODS:
        assert callable(getattr(AttachedEngine, m.name, None)), m.name
        if m.is_action:
            assert inspect.iscoroutinefunction(getattr(AttachedEngine, m.name)), m.name


def test_the_protocol_lists_every_method() -> None:
    names = {n for n, v in vars(EngineAPI).items() if callable(v) and not n.startswith("_")}
    assert {m.name for m in METHODS} <= names


def test_bind_names_the_arguments_and_refuses_strangers() -> None:
    run_job = next(m for m in METHODS if m.name == "run_job")
    assert bind(run_job, ("backup",), {}) == {"name": "backup"}
    try:
        bind(run_job, (), {"nmae": "x"})
    except TypeError as e:
        assert "nmae" in str(e)
    else:
        raise AssertionError("an unknown parameter was accepted")

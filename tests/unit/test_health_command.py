"""A command check's verdict is its last line: it keeps the end of its output, whatever
the command prints, and not all of it."""

from __future__ import annotations

import tracemalloc

from core.health.sampling import TAIL_BYTES, Sampler


async def test_a_command_check_keeps_the_end_of_its_output_not_all_of_it() -> None:
    sampler = Sampler(engine=None)
    tracemalloc.start()
    try:
        code, out = await sampler._command(  # noqa: SLF001 - the probe itself
            "local", "head -c 30000000 /dev/zero | tr '\\0' a; echo; echo last-line")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await sampler.aclose()
    assert code == 0 and out.endswith("\nlast-line\n") and len(out) <= TAIL_BYTES
    assert peak < 3 * 1024 * 1024  # 30 MB of output went by; communicate() kept it all


async def test_a_command_a_signal_killed_is_down_not_crit() -> None:
    """README: exit 0 ok, 1 warn, other crit; killed: down (it gave no verdict)."""
    from core.health.config import CheckSpec
    from core.health.sampling import Rates

    sampler = Sampler(engine=None)
    spec = CheckSpec("k", "command", command="kill -9 $$", targets="local")
    try:
        sample = await sampler.sample(spec, "local", Rates())
    finally:
        await sampler.aclose()
    assert (sample.status, sample.detail) == ("down", "no exit status (killed by SIGKILL)")

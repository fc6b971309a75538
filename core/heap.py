"""The process's long-lived objects kept out of the garbage collector's way.

A full (oldest-generation) collection walks every tracked object. Once an engine has
loaded its history index, its config and its services, that is hundreds of thousands
of objects that live as long as the process: each full collection then took 60-95 ms
with 10,000 runs of history (more with 100,000), a pause in the middle of a tick, a
key or a dispatch. `gc.freeze()` moves what exists now out of the collector's sight;
what is made later is collected as usual. Called by the long-lived entry points (the
daemon, the console) once they are up, never by the engine itself: a process that
runs many engines one after another (a test run) would keep each one's garbage.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Take what exists now out of future collections. No collection first: with a big
    history that would be one more full pass over it, and what it would free (the
    start-up's cyclic garbage; reference counting frees the rest) is small, kept once."""
    gc.freeze()

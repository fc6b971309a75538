"""State on TinyDB: atomic storage, segmented run history, retention, the engine lock."""

from core.store.history import DEFAULT_SEGMENT_SIZE
from core.store.lock import StateLock, StateLocked
from core.store.storage import AtomicJSONStorage
from core.store.store import DEFAULT_RETENTION, Store, StoreReadOnly

__all__ = [
    "DEFAULT_RETENTION",
    "DEFAULT_SEGMENT_SIZE",
    "AtomicJSONStorage",
    "StateLock",
    "StateLocked",
    "Store",
    "StoreReadOnly",
]

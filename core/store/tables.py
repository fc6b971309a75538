"""Single-document changes to a TinyDB table in O(1).

TinyDB's ``insert``/``update``/``remove`` rebuild the whole table (two dict
comprehensions over every document) for each call, so one change to a table of n
documents costs O(n): recording runs with thousands of jobs or active runs became
quadratic. Our storage (``AtomicJSONStorage``) keeps the data in memory and ``read()``
hands out that very dict, so a change to one document can be made in place, then
announced to the storage with ``write()`` (which only marks it dirty) and to the
table by clearing its query cache -- the same end state TinyDB's own methods leave:
documents stored as plain dicts under ``str(doc_id)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tinydb.table import Table


def raw_docs(table: Table) -> tuple[dict[str, Any], dict[str, Any]]:
    """(all tables, this table's documents), creating the table if missing."""
    storage = table.storage
    tables = storage.read()
    if tables is None:
        tables = {}
    raw = tables.get(table.name)
    if raw is None:
        raw = tables[table.name] = {}
    return tables, raw


def changed(table: Table, tables: dict[str, Any]) -> None:
    table.storage.write(tables)
    table.clear_cache()


def insert_doc(table: Table, doc_id: int, doc: dict[str, Any], *, copy: bool = True) -> None:
    """Insert ``doc`` as ``doc_id``; ValueError if that id exists (as TinyDB does).
    ``copy=False`` stores ``doc`` itself: for a fresh dict nobody else holds."""
    tables, raw = raw_docs(table)
    key = str(doc_id)
    if key in raw:
        raise ValueError(f"Document with ID {key} already exists")
    raw[key] = dict(doc) if copy else doc
    table._next_id = None  # as TinyDB's insert of a Document: recompute on its next insert
    changed(table, tables)


def insert_docs(table: Table, docs: Iterable[tuple[int, dict[str, Any]]]) -> None:
    """``insert_doc(..., copy=False)`` for many fresh documents, announced once."""
    tables, raw = raw_docs(table)
    new = {str(doc_id): doc for doc_id, doc in docs}
    if not raw.keys().isdisjoint(new):  # all or nothing
        key = min(raw.keys() & new.keys(), key=int)
        raise ValueError(f"Document with ID {key} already exists")
    raw.update(new)
    table._next_id = None
    changed(table, tables)


def get_raw(table: Table, doc_id: int) -> dict[str, Any] | None:
    """The stored document itself (not a copy: read it, never change it), or None."""
    tables = table.storage.read()
    raw = tables.get(table.name) if tables else None
    return None if raw is None else raw.get(str(doc_id))


def put_doc(table: Table, doc_id: int, doc: dict[str, Any]) -> bool:
    """Replace document ``doc_id`` by ``doc`` (insert it if missing); True if inserted."""
    tables, raw = raw_docs(table)
    key = str(doc_id)
    old = raw.get(key)
    if old is not None:
        old.clear()
        old.update(doc)
        changed(table, tables)
        return False
    raw[key] = dict(doc)
    table._next_id = None
    changed(table, tables)
    return True


def update_doc(table: Table, doc_id: int, change: Callable[[dict[str, Any]], None]) -> bool:
    """Apply ``change`` to document ``doc_id`` in place; False (nothing done) if missing."""
    tables, raw = raw_docs(table)
    doc = raw.get(str(doc_id))
    if doc is not None:
        change(doc)
    changed(table, tables)  # TinyDB marks the storage changed even when nothing matched
    return doc is not None


def remove_docs(table: Table, doc_ids: Iterable[int]) -> list[int]:
    """Remove the documents that exist among ``doc_ids``; returns the ids removed."""
    tables, raw = raw_docs(table)
    removed = []
    for doc_id in doc_ids:
        if raw.pop(str(doc_id), None) is not None:
            removed.append(doc_id)
    changed(table, tables)
    return removed


def next_doc_id(table: Table) -> int:
    """The id TinyDB's ``insert`` would give a new document (one past the highest)."""
    _, raw = raw_docs(table)
    return max((int(k) for k in raw), default=0) + 1


def replace_raw(table: Table, docs: dict[str, dict[str, Any]]) -> None:
    """Make ``docs`` the table's whole content, in one step, as stored: keys are
    ``str(doc_id)``, values plain dicts, taken as they are (not copied).
    (``truncate`` and ``insert_multiple`` rebuild the table once per call.)"""
    tables, _ = raw_docs(table)
    tables[table.name] = docs
    table._next_id = None
    changed(table, tables)

"""The emulator process: garbage collections that do not walk every stored record again."""

from __future__ import annotations

import gc
import weakref

from local.aws.moto_server import freeze_after_full_collections


def test_full_collections_freeze_what_survives_and_still_free_garbage() -> None:
    class Node:
        def __init__(self) -> None:
            self.peer: Node | None = None

    callback = freeze_after_full_collections()
    try:
        before = gc.get_freeze_count()
        kept = [Node() for _ in range(1_000)]  # a stream's records: they live on
        gc.collect()
        assert gc.get_freeze_count() - before >= len(kept)

        dropped = Node()
        gone = weakref.ref(dropped)
        del dropped  # no cycle: freed at once, frozen or not
        assert gone() is None

        a, b = Node(), Node()
        a.peer, b.peer = b, a  # a cycle made after the freeze: the next collection frees it
        cycle = weakref.ref(a)
        del a, b
        gc.collect()
        assert cycle() is None
    finally:
        gc.callbacks.remove(callback)
        gc.unfreeze()

"""How a long-running server process uses Python's cyclic garbage collector.

A full (generation 2) collection walks every tracked object, and the process stands still
meanwhile: at 1,000 connected players the front paused 30-90 ms each time (gc.callbacks,
issue 12), which was most of its tail latency at a fixed rate. Two things make those pauses
shorter and rarer, without leaving garbage behind:

* ``settle()`` once start-up is over: what was built until then (modules, the world, pydantic
  models, the sockets) lives as long as the process, so it is collected once and then frozen
  out of every later collection;
* a larger first-generation threshold: the young collections run less often, so fewer objects
  that are merely in flight (a request being answered) get promoted to the old generation,
  and the old generation, whose growth triggers full collections, fills more slowly.

Reference counting still frees almost everything at once; the collector only finds cycles.
"""

from __future__ import annotations

import gc

#: Allocations (net of frees) between young collections; CPython's default is 700.
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Start-up is over: collect once, freeze what survives, collect young objects rarely."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)

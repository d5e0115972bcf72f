"""claimflow's pyx12 maps, parsed once per process and shared by every reader.

pyx12's X12ContextReader parses the envelope map and the transaction set's map (the 837
Dental one is 16,000 lines of XML) again for every interchange: about a quarter of a second
of CPU before the first segment, most of what a small interchange costs. pyx12 takes no
loaded map from its caller, but it gets every map through `pyx12.map_if.load_map_file`, so
that function is wrapped, once, to keep each parsed map of claimflow's map directory.

Sharing one map between interchanges, and between threads reading at once (the API reads in
a worker thread per request), is safe because reading does not change a map: the walk's loop
and segment counts live in the reader's own counter and the findings in its error handler.
The only writes to a map after loading fill caches of a node's path, which every thread
computes to the same value. Maps from any other directory are loaded as pyx12 loads them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from typing import Any

import pyx12.map_if

from claimflow_shared.x12.maps import MAP_PATH

_MAP_DIRECTORY = str(MAP_PATH)
_lock = threading.Lock()
_loaded: dict[Hashable, Any] = {}
# pyx12's own loader, also when this module is imported again after wrapping it.
_original: Callable[..., Any] = getattr(
    pyx12.map_if.load_map_file, "__wrapped__", pyx12.map_if.load_map_file
)


def _key(map_file: str, param: Any, map_path: str | None) -> Hashable | None:
    """The file and every parameter the map was built with; None if they cannot be a key."""
    try:
        settings = tuple(sorted(param.params.items()))
        key = (map_file, map_path, settings)
        hash(key)
    except (AttributeError, TypeError):
        return None
    return key


@functools.wraps(_original)
def _load_map_file(map_file: str, param: Any, map_path: str | None = None) -> Any:
    key = _key(map_file, param, map_path) if map_path == _MAP_DIRECTORY else None
    if key is None:
        return _original(map_file, param, map_path)
    with _lock:
        # Held while parsing, so that readers starting together parse each map once.
        if key not in _loaded:
            _loaded[key] = _original(map_file, param, map_path)
        return _loaded[key]


def share_loaded_maps() -> None:
    """Make pyx12 keep claimflow's maps once parsed. Idempotent."""
    pyx12.map_if.load_map_file = _load_map_file


def loaded_map_count() -> int:
    """How many maps are held, e.g. to check that a second interchange parsed none."""
    with _lock:
        return len(_loaded)

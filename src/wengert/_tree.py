"""Nested containers of values ("pytrees"): lists, tuples, dicts and namedtuples of leaves.

``flatten`` turns a tree into its leaves and a structure; ``unflatten`` rebuilds a tree of
the same structure from new leaves. Dict keys are visited in sorted order when they can be
sorted (insertion order otherwise), and rebuilt dicts keep the original key order.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["flatten", "unflatten", "tree_map"]

_LEAF = None  # the structure of a single leaf


def flatten(tree: Any) -> tuple[list, Any]:
    """Return ``(leaves, structure)``."""
    leaves: list = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list) -> Any:
    t = type(tree)
    if t is list or t is tuple:
        return (t, [_flatten(x, leaves) for x in tree])
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a namedtuple
        return (t, [_flatten(x, leaves) for x in tree])
    if isinstance(tree, dict):
        keys = _keys(tree)
        return (type(tree), list(tree), [(k, _flatten(tree[k], leaves)) for k in keys])
    leaves.append(tree)
    return _LEAF


def _keys(d: dict) -> list:
    try:
        return sorted(d)
    except TypeError:
        return list(d)


def unflatten(structure: Any, leaves: list) -> Any:
    """Inverse of :func:`flatten`."""
    it = iter(leaves)
    return _build(structure, it)


def _build(s: Any, it: Any) -> Any:
    if s is _LEAF:
        return next(it)
    if len(s) == 3:  # a dict
        t, order, items = s
        built = {k: _build(sub, it) for k, sub in items}
        return t((k, built[k]) for k in order) if t is not dict else {k: built[k] for k in order}
    t, subs = s
    children = [_build(sub, it) for sub in subs]
    if t is list:
        return children
    if t is tuple:
        return tuple(children)
    return t(*children)  # a namedtuple


def tree_map(f: Callable, tree: Any) -> Any:
    """Apply ``f`` to every leaf."""
    leaves, s = flatten(tree)
    return unflatten(s, [f(x) for x in leaves])

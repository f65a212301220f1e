"""Nested containers of values ("pytrees"): lists, tuples, namedtuples and dicts of leaves.

``flatten`` turns a tree into its leaves and a structure; ``unflatten`` rebuilds a tree of
the same structure from new leaves. Dict entries are visited in sorted key order when the
keys can be sorted (insertion order otherwise), so two dicts with the same keys have the
same structure whatever order they were built in; rebuilt dicts keep the original order
(and a defaultdict keeps its default factory).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

__all__ = ["flatten", "unflatten", "tree_map", "same_structure", "paths", "argument_paths", "is_sequence"]

_LEAF = None  # the structure of a single leaf


class _Seq(tuple):
    """Structure of a list, tuple or namedtuple: (type, children)."""


class _Dict(tuple):
    """Structure of a dict: (type, keys in visiting order, children, insertion order, factory)."""


def flatten(tree: Any) -> tuple[list, Any]:
    """Return ``(leaves, structure)``."""
    leaves: list = []
    return leaves, _flatten(tree, leaves)


def is_sequence(tree: Any) -> bool:
    """Whether ``tree`` is a node that :func:`flatten` goes into as a sequence: a list, a tuple
    or a namedtuple (another tuple subclass is a leaf)."""
    t = type(tree)
    return t is list or t is tuple or (isinstance(tree, tuple) and hasattr(tree, "_fields"))


def _flatten(tree: Any, leaves: list) -> Any:
    if is_sequence(tree):
        return _Seq((type(tree), tuple(_flatten(x, leaves) for x in tree)))
    if isinstance(tree, dict):
        keys = _keys(tree)
        children = tuple(_flatten(tree[k], leaves) for k in keys)
        return _Dict((type(tree), tuple(keys), children, tuple(tree), getattr(tree, "default_factory", None)))
    leaves.append(tree)
    return _LEAF


def _keys(d: dict) -> list:
    try:
        return sorted(d)
    except TypeError:  # keys of several types ({1: a, 'b': c}): by type, then within each type
        try:
            return sorted(d, key=lambda k: (type(k).__module__, type(k).__qualname__, k))
        except TypeError:  # keys that do not compare (objects): by their text, so that the same keys
            return sorted(d, key=lambda k: (type(k).__module__, type(k).__qualname__, repr(k)))  # give one order


def paths(structure: Any, prefix: str = "") -> list[str]:
    """Where each leaf sits in the tree, in the order :func:`flatten` gives them: ``""`` for
    a tree that is one leaf, ``"[0]['w']"`` for a leaf inside."""
    if structure is _LEAF:
        return [prefix]
    if type(structure) is _Dict:
        return [p for key, child in zip(structure[1], structure[2]) for p in paths(child, f"{prefix}[{key!r}]")]
    return [p for i, child in enumerate(structure[1]) for p in paths(child, f"{prefix}[{i}]")]


def argument_paths(structure: Any) -> list[str]:
    """:func:`paths` of a flattened tuple of arguments, each led by its argument's position:
    ``"0"``, ``"1['w']"``."""
    return [p for k, child in enumerate(structure[1]) for p in paths(child, str(k))]


def unflatten(structure: Any, leaves: list) -> Any:
    """Inverse of :func:`flatten`."""
    return _build(structure, iter(leaves))


def _build(s: Any, it: Any) -> Any:
    if s is _LEAF:
        return next(it)
    if type(s) is _Dict:
        t, keys, children, order, factory = s
        built = {k: _build(child, it) for k, child in zip(keys, children)}
        pairs = [(k, built[k]) for k in order]
        if t is dict:
            return dict(pairs)
        return t(factory, pairs) if issubclass(t, defaultdict) else t(pairs)
    t, children = s
    items = [_build(child, it) for child in children]
    if t is list:
        return items
    return tuple(items) if t is tuple else t(*items)  # a namedtuple


def same_structure(a: Any, b: Any) -> bool:
    """Whether two structures hold the same containers and keys (dict order aside)."""
    if a is _LEAF or b is _LEAF:
        return a is b
    if type(a) is not type(b) or a[0] is not b[0]:
        return False
    if type(a) is _Dict:
        return a[1] == b[1] and all(same_structure(x, y) for x, y in zip(a[2], b[2]))
    return len(a[1]) == len(b[1]) and all(same_structure(x, y) for x, y in zip(a[1], b[1]))


def tree_map(f: Callable, tree: Any) -> Any:
    """Apply ``f`` to every leaf."""
    leaves, s = flatten(tree)
    return unflatten(s, [f(x) for x in leaves])

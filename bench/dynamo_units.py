"""DynamoDB read request units of a response, from the sizes of the items it read.

moto reports a constant ConsumedCapacity, so the benchmark applies AWS's own rule instead: an item's
size is the sum of its attribute names and values; a read costs one unit per started 4 KB of the
items it read (a strongly consistent read; eventually consistent reads cost half). For a Query
without a filter, the items read are the items returned.
"""

from __future__ import annotations

import math
from typing import Any


def _value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        digits = len(inner.lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in inner)
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def items_read(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(parsed.get("Items", []))
    if "Item" in parsed:
        found.append(parsed["Item"])
    for table_items in parsed.get("Responses", {}).values():
        found.extend(table_items)
    return found


def read_units(parsed: dict[str, Any]) -> int:
    """Units of a strongly consistent read of the response's items (at least one per call)."""
    return max(1, math.ceil(sum(item_size(i) for i in items_read(parsed)) / 4096))

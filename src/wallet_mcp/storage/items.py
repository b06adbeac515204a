"""Marshalling between plain Python values and DynamoDB attribute values.

Explicit and small on purpose: records declare their attributes, numbers are integers (money is
in minor units, times are epoch seconds), and nothing goes through float or Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, "AttributeValueTypeDef"]


def s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n(value: int) -> AttributeValueTypeDef:
    return {"N": str(int(value))}


def ss(values: Iterable[str]) -> AttributeValueTypeDef:
    """A list of strings, order kept (DynamoDB string sets lose order and may not be empty)."""
    return {"L": [{"S": v} for v in values]}


def boolean(value: bool) -> AttributeValueTypeDef:
    return {"BOOL": value}


def compact(item: Mapping[str, AttributeValueTypeDef | None]) -> Item:
    """Drop attributes whose value is None (absent rather than NULL)."""
    return {k: v for k, v in item.items() if v is not None}


def get_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def req_s(item: Mapping[str, Any], name: str) -> str:
    value = get_s(item, name)
    if value is None:
        raise KeyError(name)
    return value


def get_n(item: Mapping[str, Any], name: str) -> int | None:
    value = item.get(name)
    return None if value is None else int(value["N"])


def req_n(item: Mapping[str, Any], name: str) -> int:
    value = get_n(item, name)
    if value is None:
        raise KeyError(name)
    return value


def get_list(item: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = item.get(name)
    if value is None:
        return ()
    if "L" in value:
        return tuple(str(v["S"]) for v in value["L"])
    return tuple(str(v) for v in value.get("SS", ()))


def get_bool(item: Mapping[str, Any], name: str) -> bool:
    value = item.get(name)
    return bool(value and value.get("BOOL"))


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


def put_new(db: DynamoDBClient, table: str, item: Item, key: str) -> bool:
    """Write `item` only if no item with its key exists; False (nothing written) if one does."""
    try:
        db.put_item(TableName=table, Item=item, ConditionExpression=f"attribute_not_exists({key})")
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True

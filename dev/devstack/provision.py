"""Creates the template's DynamoDB tables and KMS keys in the emulator, from their definitions.

Idempotent: what exists already is kept (and found again, for the KMS key, through its alias),
so `make dev` can run against a long-lived emulator. A table property this module does not know
how to apply is an error, so the local tables cannot silently drift from the deployed ones.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from devstack.template import Stack, TemplateError

_TABLE_PROPERTIES = {
    "BillingMode",
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "TimeToLiveSpecification",
    "PointInTimeRecoverySpecification",
    "SSESpecification",
    "DeletionProtectionEnabled",
    "TableName",
}


def provision(stack: Stack, dynamodb: Any, kms: Any) -> None:
    """Create every table and key of `stack` (and record their physical ids in it)."""
    for logical_id, resource in stack.resources_of("AWS::DynamoDB::Table"):
        _create_table(stack, logical_id, stack.resolve(resource.get("Properties", {})), dynamodb)
    for logical_id, resource in stack.resources_of("AWS::KMS::Key"):
        _create_key(stack, logical_id, stack.resolve(resource.get("Properties", {})), kms)


def _create_table(stack: Stack, logical_id: str, props: dict[str, Any], dynamodb: Any) -> None:
    unknown = set(props) - _TABLE_PROPERTIES
    if unknown:
        raise TemplateError(f"{logical_id}: the local stack cannot apply {sorted(unknown)}")
    name = props.get("TableName") or stack.physical_name(logical_id)
    stack.physical_ids[logical_id] = name
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(index_kind):
            request[index_kind] = props[index_kind]
    if "DeletionProtectionEnabled" in props:
        request["DeletionProtectionEnabled"] = props["DeletionProtectionEnabled"] in (True, "true")
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled", False))}
    try:
        dynamodb.create_table(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return  # exists already: keep it and its data
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def _create_key(stack: Stack, logical_id: str, props: dict[str, Any], kms: Any) -> None:
    aliases = [
        stack.resolve(res["Properties"]["AliasName"])
        for _, res in stack.resources_of("AWS::KMS::Alias")
        if res["Properties"].get("TargetKeyId") == {"Ref": logical_id}
    ]
    if not aliases:
        raise TemplateError(f"{logical_id}: the local stack finds keys again by alias; give it one")
    existing = {a["AliasName"]: a["TargetKeyId"] for a in _all_aliases(kms) if a.get("TargetKeyId")}
    for alias in aliases:
        if alias in existing:
            stack.physical_ids[logical_id] = str(existing[alias])
            return
    key = kms.create_key(
        KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
        KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
        Description=props.get("Description", logical_id),
    )
    key_id = key["KeyMetadata"]["KeyId"]
    for alias in aliases:
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    stack.physical_ids[logical_id] = key_id


def _all_aliases(kms: Any) -> list[dict[str, Any]]:
    aliases: list[dict[str, Any]] = []
    for page in kms.get_paginator("list_aliases").paginate():
        aliases.extend(page.get("Aliases", []))
    return aliases

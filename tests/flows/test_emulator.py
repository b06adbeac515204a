"""The embedded emulator keeps DynamoDB's promise that matters most here: of concurrent conditional
transactions on one item, exactly one commits (the local stack runs several workers at once)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.emulator import MotoServer
from devstack.local import AWS_ENV

pytestmark = pytest.mark.flow

ROUNDS = 20
CONTENDERS = 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[object]:
    emulator = MotoServer("127.0.0.1", _free_port())
    emulator.start()
    try:
        client = boto3.client(
            "dynamodb",
            endpoint_url=emulator.url,
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, max_pool_connections=CONTENDERS * 2),
        )
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        )
        yield client
    finally:
        emulator.stop()


def test_one_of_many_concurrent_conditional_transactions_commits(dynamodb):
    for round_no in range(ROUNDS):
        key = f"item-{round_no}"
        dynamodb.put_item(TableName="t", Item={"k": {"S": key}, "status": {"S": "active"}})
        start = threading.Barrier(CONTENDERS)
        won: list[int] = []

        def contend(n: int, key: str = key, start: threading.Barrier = start, won: list[int] = won) -> None:
            start.wait()
            try:
                dynamodb.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": "t",
                                "Key": {"k": {"S": key}},
                                "UpdateExpression": "SET #s = :rotated, winner = :n",
                                "ConditionExpression": "#s = :active",
                                "ExpressionAttributeNames": {"#s": "status"},
                                "ExpressionAttributeValues": {
                                    ":rotated": {"S": "rotated"},
                                    ":active": {"S": "active"},
                                    ":n": {"N": str(n)},
                                },
                            }
                        },
                        # a long transaction, as the token endpoint's are: a wider window for a race
                        *(
                            {
                                "Put": {
                                    "TableName": "t",
                                    "Item": {"k": {"S": f"{key}-{n}-{i}"}, "pad": {"S": "x" * 200}},
                                }
                            }
                            for i in range(10)
                        ),
                    ]
                )
                won.append(n)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "TransactionCanceledException"

        threads = [threading.Thread(target=contend, args=(n,)) for n in range(CONTENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, f"round {round_no}: {len(won)} transactions committed"
        item = dynamodb.get_item(TableName="t", Key={"k": {"S": key}})["Item"]
        assert item["winner"]["N"] == str(won[0])

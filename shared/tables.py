"""Breakaway's DynamoDB tables as ``CreateTable`` arguments, from shared.keys: what the local
stack creates in its emulator, and the tests and benchmarks in moto (the CDK code builds the
same schema from the same keys in ``infra/components/storage.py``).

The standings table: ``pk``/``sk`` strings, one index, ``RecentRaces`` (INCLUDE
``RECENT_RACES_PROJECTION``, ``startsAt`` number), TTL on ``expiresAt``. The
idempotency table is the one Powertools' DynamoDBPersistenceLayer expects by default:
partition key ``id`` (string).
"""

from __future__ import annotations

from typing import Any

from shared import keys


def standings_table_definition(table_name: str) -> dict[str, Any]:
    """The ``CreateTable`` arguments of the standings table (on-demand billing)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": keys.PK, "AttributeType": "S"},
            {"AttributeName": keys.SK, "AttributeType": "S"},
            {"AttributeName": keys.INDEX_RECENT_PK, "AttributeType": "S"},
            {"AttributeName": keys.INDEX_RECENT_SK, "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": keys.PK, "KeyType": "HASH"},
            {"AttributeName": keys.SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": keys.INDEX_RECENT,
                "KeySchema": [
                    {"AttributeName": keys.INDEX_RECENT_PK, "KeyType": "HASH"},
                    {"AttributeName": keys.INDEX_RECENT_SK, "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": list(keys.RECENT_RACES_PROJECTION),
                },
            },
        ],
    }


def idempotency_table_definition(table_name: str) -> dict[str, Any]:
    """The Powertools idempotency table: partition key ``id`` (string)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }


def create_tables(dynamodb_client: Any, standings_table: str, idempotency_table: str) -> None:
    """Create both tables, wait until active, turn TTL on (``expiresAt``, ``expiration``)."""
    dynamodb_client.create_table(**standings_table_definition(standings_table))
    dynamodb_client.create_table(**idempotency_table_definition(idempotency_table))
    waiter = dynamodb_client.get_waiter("table_exists")
    for name in (standings_table, idempotency_table):
        waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    dynamodb_client.update_time_to_live(
        TableName=standings_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": keys.TTL_ATTRIBUTE},
    )
    dynamodb_client.update_time_to_live(
        TableName=idempotency_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )

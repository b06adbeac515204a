"""The production edge as the template synthesizes it, with its options on and off: alarms that
reach someone (and can fire), the dashboard, deletion protection and backups where data lasts,
reserved concurrency. Evaluated with the same template reader the local stack is built from."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.template import Stack, load_template

DURABLE = {"ClientsTable", "UsersTable", "WalletTable", "ConsentsTable", "AuditTable"}
SHORT_LIVED = {
    "AuthCodesTable",
    "SessionsTable",
    "RateLimitsTable",
    "AuthRequestsTable",
    "RevokedTokensTable",
    "ConnectionLogTable",
}
FUNCTIONS = {
    "McpFunction": "McpReservedConcurrency",
    "TokenFunction": "TokenReservedConcurrency",
    "AuthorizeFunction": "AuthorizeReservedConcurrency",
    "RegisterFunction": "RegisterReservedConcurrency",
    "MetadataFunction": "MetadataReservedConcurrency",
    "WalletFunction": "WalletReservedConcurrency",
    "AccountFunction": "AccountReservedConcurrency",
}
SERVICES = {"metadata", "token", "authorize", "register", "mcp", "wallet", "account"}


def stack(**parameters: str) -> Stack:
    """The template with these parameters, every resource named as it would be locally."""
    template = load_template()
    named = {logical_id: f"wallet-mcp-local-{logical_id}" for logical_id in template["Resources"]}
    for function in FUNCTIONS:
        named[function] = function  # locally a function's Ref is its logical id
    return Stack(template, parameters=parameters, physical_ids=named)


def properties(of: Stack, logical_id: str) -> dict[str, Any]:
    resolved: dict[str, Any] = of.resolve(of.resources[logical_id].get("Properties", {}))
    return resolved


def included(of: Stack, kind: str) -> set[str]:
    return {logical_id for logical_id, _ in of.resources_of(kind)}


def test_a_prod_stage_needs_an_alarm_email():
    assert any("AlarmEmail" in rule for rule in stack(Stage="prod").broken_rules())
    assert stack(Stage="prod", AlarmEmail="ops@example.com").broken_rules() == []
    assert stack().broken_rules() == []  # dev: optional


@pytest.mark.parametrize("email", ["", "ops@example.com"])
def test_every_alarm_notifies_the_topic_and_the_topic_mails_when_asked(email):
    synthesized = stack(AlarmEmail=email)
    assert "AlarmTopic" in included(synthesized, "AWS::SNS::Topic")
    subscriptions = included(synthesized, "AWS::SNS::Subscription")
    assert subscriptions == ({"AlarmEmailSubscription"} if email else set())
    alarms = included(synthesized, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 5
    for alarm in alarms:
        assert properties(synthesized, alarm)["AlarmActions"] == ["wallet-mcp-local-AlarmTopic"], alarm


def _metric_dimensions(alarm: dict[str, Any]) -> list[tuple[str, set[str]]]:
    """(namespace, dimension names) of every metric an alarm watches."""
    if "Metrics" in alarm:
        return [
            (
                m["MetricStat"]["Metric"]["Namespace"],
                {d["Name"] for d in m["MetricStat"]["Metric"]["Dimensions"]},
            )
            for m in alarm["Metrics"]
            if "MetricStat" in m
        ]
    return [(alarm["Namespace"], {d["Name"] for d in alarm.get("Dimensions", [])})]


def test_alarms_on_our_metrics_name_the_service_dimension_powertools_adds():
    """An alarm matches one exact dimension set, and Powertools puts every metric under its
    function's `service`: an alarm without it watches a series nobody writes, and never fires."""
    synthesized = stack()
    watched = 0
    for alarm in included(synthesized, "AWS::CloudWatch::Alarm"):
        for namespace, dimensions in _metric_dimensions(properties(synthesized, alarm)):
            if namespace == "WalletMcp":
                watched += 1
                assert dimensions == {"service"}, alarm
    assert watched >= 8  # DependencyErrors over the seven functions, RefreshTokenReuse
    dependency = properties(synthesized, "DependencyErrorsAlarm")["Metrics"]
    assert {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in dependency if "MetricStat" in m
    } == SERVICES


def test_the_dashboard_is_valid_json_naming_every_function():
    synthesized = stack()
    body = json.loads(properties(synthesized, "Dashboard")["DashboardBody"])
    text = json.dumps(body)
    for function in FUNCTIONS:
        assert function in text  # locally Ref of a function is its logical id
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert any("p99" in t for t in titles) and any("Tokens issued" in t for t in titles)
    searches = [
        metric[0]["expression"]
        for widget in body["widgets"]
        for metric in widget["properties"]["metrics"]
        if isinstance(metric[0], dict)
    ]
    for signal in ("TokensIssued", "RefreshTokenReuse", "RateLimited", "DependencyErrors"):
        (search,) = [s for s in searches if f'"{signal}"' in s]
        # a SEARCH schema names every dimension: `{WalletMcp}` alone would match no series
        assert search.startswith("SEARCH('{WalletMcp,") and ",service}" in search, search


@pytest.mark.parametrize(
    ("parameters", "protected"),
    [
        ({}, True),
        ({"TableDeletionProtection": "false"}, False),
        ({"TableDeletionProtection": "false", "Stage": "prod", "AlarmEmail": "a@b.c"}, True),
    ],
)
def test_durable_tables_are_protected_from_deletion(parameters, protected):
    synthesized = stack(**parameters)
    for table in included(synthesized, "AWS::DynamoDB::Table"):
        expected = protected if table in DURABLE else None
        assert properties(synthesized, table).get("DeletionProtectionEnabled") == expected, table


def test_point_in_time_recovery_only_where_data_outlives_a_day():
    synthesized = stack()
    tables = included(synthesized, "AWS::DynamoDB::Table")
    assert tables >= SHORT_LIVED
    for table in tables:
        pitr = properties(synthesized, table).get("PointInTimeRecoverySpecification")
        assert (pitr == {"PointInTimeRecoveryEnabled": True}) == (table not in SHORT_LIVED), table


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_reserved_concurrency_is_a_parameter_of_each_function(function):
    def reserved(of: Stack) -> Any:
        return of.resolve(of.resources[function]["Properties"]).get("ReservedConcurrentExecutions")

    assert reserved(stack()) is None  # the account's shared pool
    assert reserved(stack(**{FUNCTIONS[function]: "25"})) == "25"

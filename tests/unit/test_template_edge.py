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


EDGE = {"EdgeOriginSecret", "EdgeViewerFunction", "EdgeWebAcl", "EdgeDistribution"}


def synthesized(of: Stack) -> set[str]:
    """The resources these parameters create (their conditions hold)."""
    return {
        logical_id
        for logical_id, resource in of.resources.items()
        if resource.get("Condition") is None or of.condition(resource["Condition"])
    }


def test_without_the_edge_option_nothing_of_it_is_synthesized_and_no_secret_is_checked():
    off = stack()
    assert EDGE.isdisjoint(synthesized(off))
    assert {spec.environment["EDGE_ORIGIN_SECRET"] for spec in off.functions().values()} == {""}


def test_the_edge_puts_cloudfront_and_a_web_acl_in_front_and_shares_one_origin_secret_with_every_function():
    on = stack(EdgeProtection="true")
    assert synthesized(on) >= EDGE
    distribution = properties(on, "EdgeDistribution")["DistributionConfig"]
    (origin,) = distribution["Origins"]
    assert origin["DomainName"].endswith(".execute-api.us-east-1.amazonaws.com")
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    (secret_header,) = origin["OriginCustomHeaders"]
    assert secret_header["HeaderName"] == "X-Origin-Verify"
    assert secret_header["HeaderValue"].startswith("{{resolve:secretsmanager:")
    functions = on.functions()
    assert {spec.environment["EDGE_ORIGIN_SECRET"] for spec in functions.values()} == {
        secret_header["HeaderValue"]
    }
    # the issuer is the distribution's name, and direct calls to execute-api are refused by the functions
    assert {spec.environment["PUBLIC_BASE_URL"] for spec in functions.values()} == {
        "https://edgedistribution.cloudfront.net"
    }
    assert distribution["WebACLId"] == on.arn("EdgeWebAcl")
    behaviour = distribution["DefaultCacheBehavior"]
    assert behaviour["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert behaviour["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # all but Host
    assert behaviour["FunctionAssociations"] == [
        {"EventType": "viewer-request", "FunctionARN": on.arn("EdgeViewerFunction")}
    ]
    code = properties(on, "EdgeViewerFunction")["FunctionCode"]
    assert "x-viewer-address" in code and "event.viewer.ip" in code


def rate_rules(of: Stack) -> dict[str, dict[str, Any]]:
    acl = properties(of, "EdgeWebAcl")
    assert acl["Scope"] == "CLOUDFRONT"
    return {
        rule["Name"]: rule["Statement"]["RateBasedStatement"]
        for rule in acl["Rules"]
        if "RateBasedStatement" in rule["Statement"]
    }


def test_the_web_acl_limits_unauthenticated_endpoints_per_address_and_resources_per_token():
    on = stack(EdgeProtection="true")
    acl = properties(on, "EdgeWebAcl")
    managed = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for rule in acl["Rules"]
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    rules = rate_rules(on)
    per_address = {name for name, rule in rules.items() if rule["AggregateKeyType"] == "IP"}
    assert per_address == {
        "registrations-per-address",
        "form-posts-per-address",
        "token-endpoints-per-address",
        "unauthenticated-resource-requests-per-address",
    }
    per_token = rules["resource-requests-per-token"]
    assert per_token["AggregateKeyType"] == "CUSTOM_KEYS"
    assert per_token["CustomKeys"] == [
        {"Header": {"Name": "authorization", "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}
    ]
    # shared egress: the token endpoints' per-address bound is a flood bound (50/s), far above the
    # per-token one, and the registration bound sits above the application's hourly limit
    assert int(rules["token-endpoints-per-address"]["Limit"]) == 15000
    assert int(rules["resource-requests-per-token"]["Limit"]) == 3000
    assert int(rules["registrations-per-address"]["Limit"]) >= 300
    for rule in acl["Rules"]:
        if "RateBasedStatement" in rule["Statement"]:
            assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    tuned = rate_rules(stack(EdgeProtection="true", EdgeRequestsPerToken="600"))
    assert int(tuned["resource-requests-per-token"]["Limit"]) == 600


def test_a_web_acl_outside_us_east_1_must_be_given_and_is_then_attached_as_is():
    template = load_template()
    elsewhere = Stack(template, parameters={"EdgeProtection": "true"}, region="eu-west-1")
    assert any("EdgeWebAclArn" in rule for rule in elsewhere.broken_rules())
    arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shared/abc"
    given = Stack(
        template,
        parameters={"EdgeProtection": "true", "EdgeWebAclArn": arn},
        region="eu-west-1",
        physical_ids={logical_id: logical_id for logical_id in template["Resources"]},
    )
    assert given.broken_rules() == []
    assert "EdgeWebAcl" not in synthesized(given)
    assert properties(given, "EdgeDistribution")["DistributionConfig"]["WebACLId"] == arn


def test_a_custom_domain_moves_to_cloudfront_when_the_edge_is_on():
    domain = {"DomainName": "wallet.example.com", "CertificateArn": CERTIFICATE}
    direct = stack(**domain)
    assert {"CustomDomain", "CustomDomainMapping"} <= synthesized(direct)
    assert properties(direct, "HttpApi")["DisableExecuteApiEndpoint"] is True
    edge = stack(EdgeProtection="true", **domain)
    assert {"CustomDomain", "CustomDomainMapping"}.isdisjoint(synthesized(edge))
    assert properties(edge, "HttpApi")["DisableExecuteApiEndpoint"] is False  # CloudFront's origin
    config = properties(edge, "EdgeDistribution")["DistributionConfig"]
    assert config["Aliases"] == ["wallet.example.com"]
    assert config["ViewerCertificate"]["AcmCertificateArn"] == CERTIFICATE


CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/abc"


KEYS = ("SigningKeyBlue", "SigningKeyGreen", "ConfirmationKey")
ADMINISTRATORS = "arn:aws:iam::123456789012:role/KeyAdministrator,arn:aws:iam::123456789012:role/Deployer"


@pytest.mark.parametrize("key", KEYS)
def test_without_key_administrators_the_account_administers_the_keys_as_aws_default_policy_does(key):
    (statement,) = properties(stack(), key)["KeyPolicy"]["Statement"]
    assert statement["Principal"]["AWS"] == "arn:aws:iam::123456789012:root"
    assert statement["Action"] == "kms:*"


@pytest.mark.parametrize("key", KEYS)
def test_named_key_administrators_alone_administer_and_the_account_may_only_use_the_keys(key):
    statements = {
        s["Sid"]: s
        for s in properties(stack(KeyAdministratorArns=ADMINISTRATORS), key)["KeyPolicy"]["Statement"]
    }
    assert set(statements) == {"KeyAdministrators", "AccountUseThroughIam"}
    administrators = statements["KeyAdministrators"]
    assert administrators["Principal"]["AWS"] == ADMINISTRATORS.split(",")
    actions = set(administrators["Action"])
    assert {"kms:Put*", "kms:ScheduleKeyDeletion", "kms:Disable*"} <= actions
    # administering is not using: no signature or MAC from the key administrators
    assert not any(
        a.startswith(("kms:Sign", "kms:GenerateMac", "kms:Verify", "kms:Encrypt")) for a in actions
    )
    use = statements["AccountUseThroughIam"]
    assert use["Principal"]["AWS"] == "arn:aws:iam::123456789012:root"
    assert "kms:*" not in use["Action"]
    assert not any(
        a.startswith(("kms:Put", "kms:Delete", "kms:Disable", "kms:Schedule", "kms:Create"))
        for a in use["Action"]
    )
    expected = (
        {"kms:GenerateMac", "kms:VerifyMac"} if key == "ConfirmationKey" else {"kms:Sign", "kms:GetPublicKey"}
    )
    assert expected <= set(use["Action"])

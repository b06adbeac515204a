"""SnapStart as the template synthesizes it: on by default where Lambda offers it, off on request
or elsewhere, and every route invoking the published `live` alias (SnapStart never applies to
$LATEST). Evaluated with the template reader the local stack is built from."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.template import NO_VALUE, Stack, load_template

FUNCTIONS = {
    "McpFunction",
    "TokenFunction",
    "AuthorizeFunction",
    "RegisterFunction",
    "MetadataFunction",
    "WalletFunction",
    "AccountFunction",
}


def snap_start(region: str = "us-east-1", **parameters: str) -> Any:
    stack = Stack(load_template(), parameters=parameters, region=region)
    return stack.resolve(stack.template["Globals"]["Function"]["SnapStart"])


def test_snapstart_is_on_by_default_for_published_versions() -> None:
    assert snap_start() == {"ApplyOn": "PublishedVersions"}
    assert snap_start("eu-west-1") == {"ApplyOn": "PublishedVersions"}


def test_snapstart_can_be_turned_off() -> None:
    assert snap_start(SnapStart="false") is NO_VALUE


@pytest.mark.parametrize("region", ["ap-southeast-6", "ap-east-2"])
def test_snapstart_is_off_where_lambda_does_not_offer_it(region: str) -> None:
    assert snap_start(region) is NO_VALUE


def test_every_function_publishes_a_live_alias_that_the_routes_and_permissions_name() -> None:
    template = load_template()
    assert template["Globals"]["Function"]["AutoPublishAlias"] == "live"
    stack = Stack(template)
    integrations = dict(stack.resources_of("AWS::ApiGatewayV2::Integration"))
    invoked = {
        resource["Properties"]["IntegrationUri"]["Fn::Sub"].removesuffix(":live").strip("${}")
        for resource in integrations.values()
    }
    assert invoked == {f"{function}.Arn" for function in FUNCTIONS}
    permitted = {
        resource["Properties"]["FunctionName"]["Ref"]
        for _, resource in stack.resources_of("AWS::Lambda::Permission")
        if resource["Properties"].get("Principal") == "apigateway.amazonaws.com"
    }
    assert permitted == {f"{function}.Alias" for function in FUNCTIONS}
    assert {route.function for route in stack.routes()} == FUNCTIONS

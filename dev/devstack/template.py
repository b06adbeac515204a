"""Reads `infra/template.yaml` the way CloudFormation would, for the local stack.

Loads the CloudFormation short-form tags, evaluates parameters and conditions, and resolves the
intrinsic functions the template uses against local physical ids. The tables, the key, the
functions, their environment and the routes all come from here: there is no second copy of any
of them.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.events import ACCOUNT_ID

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "infra" / "template.yaml"

REGION = "us-east-1"
NO_VALUE = object()


class TemplateError(Exception):
    pass


# --- loading -------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    pass


def _long_form(name: str) -> str:
    return "Ref" if name == "Ref" else ("Condition" if name == "Condition" else f"Fn::{name}")


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = _long_form(suffix)
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if key == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The parsed template (a fresh copy: callers may change theirs)."""
    return copy.deepcopy(_parse(path, path.stat().st_mtime_ns))


@functools.cache
def _parse(path: Path, _mtime: int) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        document = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


# --- the local stack -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    """An HTTP method, or ANY."""
    path: str
    function: str
    """The logical id of the function the route's integration invokes."""

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Stack:
    """The template with parameter values, evaluated conditions and known physical ids."""

    template: dict[str, Any]
    stack_name: str = "wallet-mcp-local"
    parameters: dict[str, str] = field(default_factory=dict)
    physical_ids: dict[str, str] = field(default_factory=dict)
    """Logical id -> what `Ref` returns (table name, key id, ...), filled as resources are made."""
    region: str = REGION
    account_id: str = ACCOUNT_ID

    def __post_init__(self) -> None:
        declared = self.template.get("Parameters", {})
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameters: {sorted(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            value = self.parameters.get(name, spec.get("Default"))
            if value is None:
                raise TemplateError(f"parameter {name} has no value")
            values[name] = str(value)
        self.parameters = values
        self._conditions: dict[str, bool] = {}

    # --- resources ---------------------------------------------------------------------------
    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template["Resources"]
        return resources

    def resources_of(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == resource_type and self._included(resource):
                yield logical_id, resource

    def _included(self, resource: Mapping[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self.condition(condition)

    def physical_name(self, logical_id: str) -> str:
        """The name a named-by-CloudFormation resource gets locally."""
        return f"{self.stack_name}-{logical_id}"

    def arn(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        kind = resource["Type"]
        physical = self.physical_ids.get(logical_id, self.physical_name(logical_id))
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{physical}"
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{self.region}:{self.account_id}:key/{physical}"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{logical_id}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{physical}"
        if kind == "AWS::SecretsManager::Secret":
            return f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:{physical}"
        if kind == "AWS::WAFv2::WebACL":  # CLOUDFRONT scope: always us-east-1
            return f"arn:aws:wafv2:us-east-1:{self.account_id}:global/webacl/{physical}"
        if kind == "AWS::CloudFront::Function":
            return f"arn:aws:cloudfront::{self.account_id}:function/{physical}"
        raise TemplateError(f"no local ARN for {kind} {logical_id}")

    # --- conditions ----------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            expression = self.template.get("Conditions", {}).get(name)
            if expression is None:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self._evaluate_condition(expression))
        return self._conditions[name]

    def broken_rules(self) -> list[str]:
        """The descriptions of the template's `Rules` assertions these parameters break (what
        CloudFormation would refuse the stack for), in the template's order."""
        broken = []
        for rule in self.template.get("Rules", {}).values():
            applies = rule.get("RuleCondition")
            if applies is not None and not self._evaluate_condition(applies):
                continue
            for assertion in rule.get("Assertions", []):
                if not self._evaluate_condition(assertion["Assert"]):
                    broken.append(str(assertion.get("AssertDescription", assertion["Assert"])))
        return broken

    def _evaluate_condition(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((fn, args),) = expression.items()
            if fn == "Fn::Equals":
                left, right = (self.resolve(a) for a in args)
                return bool(str(left) == str(right))
            if fn == "Fn::Not":
                return not self._evaluate_condition(args[0])
            if fn == "Fn::And":
                return all(self._evaluate_condition(a) for a in args)
            if fn == "Fn::Or":
                return any(self._evaluate_condition(a) for a in args)
            if fn == "Condition":
                return self.condition(args)
        raise TemplateError(f"unsupported condition expression {expression!r}")

    # --- intrinsic functions -------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            resolved = [self.resolve(v) for v in value]
            return [v for v in resolved if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, args),) = value.items()
            if key == "Ref":
                return self._ref(args)
            if key.startswith("Fn::"):
                return self._function(key, args)
        resolved_map = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved_map.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            if self.template["Parameters"][name].get("Type") == "CommaDelimitedList":
                return [item.strip() for item in self.parameters[name].split(",")]
            return self.parameters[name]
        if name in self.resources:
            if name in self.physical_ids:
                return self.physical_ids[name]
            kind = self.resources[name]["Type"]
            if kind in ("AWS::DynamoDB::Table", "AWS::Logs::LogGroup"):
                return self.physical_name(name)
            if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                return name
            if kind == "AWS::ApiGatewayV2::Api":
                return "local"
            raise TemplateError(f"{name} ({kind}) has no local physical id yet")
        raise TemplateError(f"unresolvable Ref {name}")

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.resources:
            raise TemplateError(f"GetAtt of unknown resource {logical_id}")
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "ApiEndpoint":
            return self.parameters.get("PublicBaseUrl") or "http://localhost:3000"
        if attribute == "FunctionMetadata.FunctionARN":  # a CloudFront function
            return self.arn(logical_id)
        if (
            attribute == "DomainName"
            and self.resources[logical_id]["Type"] == "AWS::CloudFront::Distribution"
        ):
            return f"{logical_id.lower()}.cloudfront.net"
        raise TemplateError(f"unsupported GetAtt {logical_id}.{attribute}")

    def _function(self, fn: str, args: Any) -> Any:
        if fn == "Fn::GetAtt":
            logical_id, attribute = args if isinstance(args, list) else str(args).split(".", 1)
            return self._get_att(logical_id, attribute)
        if fn == "Fn::If":
            name, when_true, when_false = args
            return self.resolve(when_true if self.condition(name) else when_false)
        if fn == "Fn::Sub":
            template, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
            variables = {k: self.resolve(v) for k, v in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub_var(m.group(1), variables)), template)
        if fn == "Fn::Join":
            separator, items = args
            return separator.join(str(i) for i in self.resolve(items))
        if fn == "Fn::Select":
            index, items = args
            return self.resolve(items)[int(self.resolve(index))]
        if fn == "Fn::Split":
            separator, source = args
            return str(self.resolve(source)).split(separator)
        if fn in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._evaluate_condition({fn: args})
        raise TemplateError(f"unsupported intrinsic function {fn}")

    def _sub_var(self, name: str, variables: Mapping[str, Any]) -> Any:
        if name in variables:
            return variables[name]
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self._get_att(logical_id, attribute)
        return self._ref(name)

    # --- what the local gateway serves ---------------------------------------------------------
    def functions(self) -> dict[str, FunctionSpec]:
        defaults = self.template.get("Globals", {}).get("Function", {})
        template_dir = TEMPLATE_PATH.parent
        specs: dict[str, FunctionSpec] = {}
        for logical_id, resource in self.resources_of("AWS::Serverless::Function"):
            props = resource["Properties"]
            env = dict(self.resolve(defaults.get("Environment", {}).get("Variables", {})))
            env.update(self.resolve(props.get("Environment", {}).get("Variables", {})))
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=(template_dir / props["CodeUri"]).resolve(),
                handler=props.get("Handler", defaults.get("Handler")),
                environment={k: str(v) for k, v in env.items()},
                timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
                memory=int(props.get("MemorySize", defaults.get("MemorySize", 128))),
            )
        return specs

    def routes(self) -> list[RouteSpec]:
        routes: list[RouteSpec] = []
        for logical_id, resource in self.resources_of("AWS::ApiGatewayV2::Route"):
            props = resource["Properties"]
            route_key = props["RouteKey"]
            target = props.get("Target")
            if not isinstance(target, dict) or "Fn::Sub" not in target:
                raise TemplateError(f"route {logical_id} needs Target: !Sub integrations/${{Integration}}")
            match = re.fullmatch(r"integrations/\$\{(\w+)\}", target["Fn::Sub"])
            if match is None:
                raise TemplateError(f"route {logical_id} has an unsupported Target")
            integration = self.resources[match.group(1)]["Properties"]
            if (
                integration.get("IntegrationType") != "AWS_PROXY"
                or integration.get("PayloadFormatVersion") != "2.0"
            ):
                raise TemplateError(f"{match.group(1)} must be an AWS_PROXY integration with payload 2.0")
            uri = integration["IntegrationUri"]
            if isinstance(uri, dict) and "Fn::GetAtt" in uri:
                function = uri["Fn::GetAtt"][0]
            elif isinstance(uri, dict) and (
                alias := re.fullmatch(r"\$\{(\w+)\.Arn\}:\w+", str(uri.get("Fn::Sub", "")))
            ):
                function = alias.group(1)  # an alias (AutoPublishAlias): the same code, published
            else:
                raise TemplateError(
                    f"{match.group(1)}: IntegrationUri must be !GetAtt <Function>.Arn "
                    'or !Sub "${<Function>.Arn}:<alias>"'
                )
            method, _, path = route_key.partition(" ")
            routes.append(RouteSpec(method=method, path=path, function=function))
        return routes

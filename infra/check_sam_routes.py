"""Checks that `sam local start-api` and the project's local gateway see the same routes.

Runs in the SAM CLI's tool venv (make template-check): SAM CLI's own API provider reads the
template as `sam local start-api` would, and `devstack.template` reads it as the local gateway
does. Any difference (a route one of them would not serve, or serve with another function or
payload version) fails the check.
"""

from __future__ import annotations

import sys
from pathlib import Path

from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))

from devstack.template import Stack, load_template  # noqa: E402

ANY_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def main(template: str) -> int:
    overrides = {"PublicBaseUrl": "http://localhost:3000"}
    stacks, _ = SamLocalStackProvider.get_stacks(template, parameter_overrides=overrides)
    sam_routes = set()
    for route in ApiProvider(stacks).routes:
        if route.payload_format_version != "2.0":
            print(f"sam local would use payload {route.payload_format_version} for {route.path}")
            return 1
        sam_routes |= {(method, route.path, route.function_name) for method in route.methods}
    ours = set()
    for route in Stack(load_template(Path(template)), parameters=overrides).routes():
        # an API Gateway ANY route is every method; SAM CLI lists them one by one
        methods = ANY_METHODS if route.method == "ANY" else (route.method,)
        ours |= {(method, route.path, route.function) for method in methods}
    if sam_routes != ours:
        for extra in sorted(sam_routes - ours):
            print("only sam local serves:", *extra)
        for extra in sorted(ours - sam_routes):
            print("only the local gateway serves:", *extra)
        return 1
    print(f"sam local start-api and the local gateway agree on {len(ours)} routes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

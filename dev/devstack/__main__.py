"""`python -m devstack dev` is `make dev`: the whole stack on this machine, in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from urllib.parse import urlsplit

import uvicorn

from devstack.emulator import EmulatorError, MotoServer
from devstack.gateway import Gateway
from devstack.local import AWS_ENV, bring_up, local_stack, parameter_overrides, write_sam_env_file
from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD, DEMO_USERNAME


def _banner(base_url: str, endpoint: str, env_file: str) -> str:
    return f"""
  wallet-mcp local stack is up
    issuer (authorization server)  {base_url}
    MCP endpoint                   {base_url}/mcp
    AS metadata                    {base_url}/.well-known/oauth-authorization-server
    embedded AWS (moto)            {endpoint}
    sam local env-vars file        {env_file}

  demo user      {DEMO_USERNAME} / {DEMO_PASSWORD}
  demo client    {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}

  Ctrl-C stops everything.
"""


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def dev() -> int:
    port = int(os.environ.get("PORT", "3000"))
    base_url = os.environ.get("PUBLIC_BASE_URL", f"http://localhost:{port}").rstrip("/")
    host = os.environ.get("GATEWAY_HOST", "127.0.0.1")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    emulator: MotoServer | None = None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # SIGTERM stops the stack the way Ctrl-C does (uvicorn re-raises the signal it caught once it
    # has shut down; this turns it into the KeyboardInterrupt handled below, so cleanup runs)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not endpoint:
            emulator = MotoServer("127.0.0.1", int(os.environ.get("MOTO_PORT", "5055")))
            emulator.start()
            endpoint = emulator.url
        os.environ.update(AWS_ENV)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        stack = local_stack(base_url, parameter_overrides(os.environ.get("STACK_PARAMETERS")))
        bring_up(stack, endpoint)
        env_file = write_sam_env_file(stack, endpoint)
        gateway = Gateway(
            stack.routes(),
            stack.functions(),
            base_env={**AWS_ENV, "AWS_ENDPOINT_URL": endpoint},
            forwarded_proto=urlsplit(base_url).scheme,
            max_workers=int(os.environ.get("GATEWAY_MAX_WORKERS", "4")),
        )
        # the caller's address is the socket's, as API Gateway's sourceIp is: uvicorn's default
        # proxy_headers would take it from a client-sent X-Forwarded-For and dodge per-address limits
        server = uvicorn.Server(
            uvicorn.Config(
                gateway,
                host=host,
                port=port,
                lifespan="on",
                log_level="warning",
                access_log=False,
                proxy_headers=False,
            )
        )

        async def serve() -> None:
            task = asyncio.create_task(server.serve())
            # uvicorn sets `started` once the socket listens; it offers no event to await
            while not server.started and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if server.started:
                print(_banner(base_url, endpoint, str(env_file)), flush=True)
            await task

        asyncio.run(serve())
        return 0 if server.started else 1
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if emulator is not None:
            emulator.stop()


def sam_env() -> int:
    """Write the env-vars file for `sam local start-api` without starting anything."""
    port = int(os.environ.get("PORT", "3000"))
    base_url = os.environ.get("PUBLIC_BASE_URL", f"http://localhost:{port}").rstrip("/")
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5055")
    os.environ.update(AWS_ENV)
    stack = local_stack(base_url)
    bring_up(stack, endpoint)
    print(write_sam_env_file(stack, endpoint))
    return 0


def routes() -> int:
    stack = local_stack("http://localhost:3000")
    for route in stack.routes():
        print(f"{route.method:7} {route.path:55} {route.function}")
    return 0


def toolchain() -> int:
    """Set up the browser and Node.js the tests need; print the `export` lines that find them."""
    from devstack.toolchain import ToolchainError, exports

    try:
        print(exports())
    except ToolchainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["dev", "sam-env", "routes", "toolchain"])
    args = parser.parse_args()
    return {"dev": dev, "sam-env": sam_env, "routes": routes, "toolchain": toolchain}[args.command]()


if __name__ == "__main__":
    sys.exit(main())

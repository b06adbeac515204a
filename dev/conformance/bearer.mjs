// Preloaded into the conformance suite (`node --import`) by dev/devstack/conformance.py.
//
// The suite's server scenarios speak to an unauthenticated MCP server and have no option for an
// Authorization header, while this server answers every request without a token with 401 (MCP
// authorization; RFC 6750). This adds `Authorization: Bearer <token>` to the requests the suite
// sends to the MCP endpoint under test, and to nothing else, as an MCP client configured with a
// token would. It covers the three ways the suite sends HTTP: `fetch` and undici's `request` (both
// through undici's global dispatcher) and `node:http` (the header-validation scenarios, which need
// exact header casing). Requests that already carry an Authorization header are left alone. The
// token is read from the environment and never printed.
//
//   CONFORMANCE_BEARER_URL    the MCP endpoint, e.g. http://localhost:3000/mcp
//   CONFORMANCE_BEARER_TOKEN  the access token
//   CONFORMANCE_SUITE_DIR     where the suite is installed (undici is resolved from there)

import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const target = new URL(process.env.CONFORMANCE_BEARER_URL);
const token = process.env.CONFORMANCE_BEARER_TOKEN;
if (!token) throw new Error('CONFORMANCE_BEARER_TOKEN is not set');
const targetPort = target.port || (target.protocol === 'https:' ? '443' : '80');

const require = createRequire(path.join(process.env.CONFORMANCE_SUITE_DIR, 'package.json'));
const { Agent, setGlobalDispatcher } = require('undici');

function isTarget(origin, requestPath) {
  return new URL(origin).origin === target.origin && String(requestPath).split('?')[0] === target.pathname;
}

/** `headers` with the bearer token added, in whichever of undici's and node's shapes it came. */
function withBearer(headers) {
  const value = `Bearer ${token}`;
  const named = (name) => String(name).toLowerCase() === 'authorization';
  if (headers == null) return { authorization: value };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      return headers.some(([name]) => named(name)) ? headers : [...headers, ['authorization', value]];
    }
    for (let i = 0; i < headers.length; i += 2) if (named(headers[i])) return headers;
    return [...headers, 'authorization', value];
  }
  if (typeof headers[Symbol.iterator] === 'function') return withBearer([...headers]);
  return Object.keys(headers).some(named) ? headers : { ...headers, authorization: value };
}

setGlobalDispatcher(
  new Agent().compose((dispatch) => (options, handler) =>
    dispatch(isTarget(options.origin, options.path) ? { ...options, headers: withBearer(options.headers) } : options, handler)
  )
);

const request = http.request;
http.request = function requestWithBearer(options, ...rest) {
  if (options && typeof options === 'object' && !(options instanceof URL)) {
    const host = options.hostname ?? options.host ?? 'localhost';
    const port = String(options.port || '80');
    const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (target.protocol === 'http:' && port === targetPort && isTarget(origin, options.path ?? '/')) {
      options = { ...options, headers: withBearer(options.headers) };
    }
  }
  return request.call(this, options, ...rest);
};

// The official MCP TypeScript SDK as a host runs it against wallet-mcp: an OAuthClientProvider of the
// host's own (the SDK leaves storage and the browser hand-off to the host), the SDK's
// StreamableHTTPClientTransport, and its Client, through connect → UnauthorizedError →
// finishAuth → connect on a fresh transport, as the SDK's OAuth guide does it.
//
// One driver for both generations: `generation` 1 is `@modelcontextprotocol/sdk` 1.x, 2 is
// `@modelcontextprotocol/client` 2.x (with `era` "legacy", its default 2025 handshake, or "auto",
// which probes with server/discover and speaks 2026-07-28 where the server does).
// dev/devstack/clients.py installs each pinned package under .local/clients/<name>-<version>/, and
// the test runs a copy of this file placed there (tests/support/sdk_drivers.node_driver): Node
// resolves a script's packages from the script's own folder.
//
// With `dpop` (2.x only) the host's provider implements the SDK's `dpop()` seam (SEP-1932) with a
// `DpopSession` of its own (an ES256 key made for the run): the SDK then signs a DPoP proof into
// every token request (answering `use_dpop_nonce` once), and its transport presents a
// `token_type: DPoP` token as `Authorization: DPoP` with a fresh proof per request (`ath`, the
// server's latest nonce, one retry on a `use_dpop_nonce` challenge). The report then names the
// key's thumbprint; `reveal_tokens` puts the access tokens themselves into it (a test's stack only).
// `dpop_new_session`: after the sign-in the host makes a new session of the same key pair, as a host
// restarted with its saved key would (no nonce remembered: the server's first answer at /mcp asks
// for one).
//
// The line protocol and the report are those of tests/clients/py1_client.py (see its docstring).

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ORIGIN = performance.now();

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function digest(secret) {
  return secret ? createHash('sha256').update(secret).digest('hex').slice(0, 16) : null;
}

function installedVersion(packageName) {
  return JSON.parse(readFileSync(join(HERE, 'node_modules', packageName, 'package.json'), 'utf8')).version;
}

async function loadSdk(generation) {
  if (generation === 1) {
    const packageName = '@modelcontextprotocol/sdk';
    const [{ Client }, { StreamableHTTPClientTransport }, { UnauthorizedError }] = await Promise.all([
      import('@modelcontextprotocol/sdk/client/index.js'),
      import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
      import('@modelcontextprotocol/sdk/client/auth.js')
    ]);
    return {
      packageName,
      Client,
      StreamableHTTPClientTransport,
      UnauthorizedError,
      // 1.x takes the code alone (it has no RFC 9207 `iss` check)
      finishAuth: (transport, params) => transport.finishAuth(params.get('code'))
    };
  }
  const packageName = '@modelcontextprotocol/client';
  const { Client, StreamableHTTPClientTransport, UnauthorizedError, DpopSession, generateDpopKeyPair } =
    await import(packageName);
  return {
    packageName,
    Client,
    StreamableHTTPClientTransport,
    UnauthorizedError,
    DpopSession,
    generateDpopKeyPair,
    // the whole callback query: the SDK checks `iss` against the issuer it discovered
    finishAuth: (transport, params) => transport.finishAuth(params)
  };
}

/** The host's side of the SDK's OAuthClientProvider: in memory, every token set into the report. */
class Provider {
  constructor(config, report, dpopSession) {
    this.config = config;
    this.report = report;
    this.clients = new Map();
    this.lastState = undefined;
    // present only with a session: the SDK tests for the method itself
    if (dpopSession) {
      this.dpopSession = dpopSession;
      this.dpop = () => this.dpopSession;
    }
  }

  get redirectUrl() {
    return this.config.redirect_uri;
  }

  get clientMetadata() {
    return {
      client_name: this.config.client_name,
      redirect_uris: [this.config.redirect_uri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none'
    };
  }

  state() {
    this.lastState = randomBytes(24).toString('base64url');
    return this.lastState;
  }

  // keyed by issuer, as SEP-2352 asks (2.x passes it; 1.x stamps it on what it saves)
  clientInformation(ctx) {
    return this.clients.get(ctx?.issuer ?? '');
  }

  saveClientInformation(info, ctx) {
    this.clients.set(ctx?.issuer ?? '', info);
    this.report.client_id = info.client_id;
  }

  tokens() {
    return this.storedTokens;
  }

  saveTokens(tokens) {
    this.storedTokens = tokens;
    this.report.tokens.push({
      access: digest(tokens.access_token),
      refresh: digest(tokens.refresh_token),
      scope: tokens.scope ?? null,
      expires_in: tokens.expires_in ?? null,
      token_type: tokens.token_type ?? null,
      ...(this.config.reveal_tokens ? { access_token: tokens.access_token } : {})
    });
  }

  redirectToAuthorization(url) {
    this.report.authorizations += 1;
    emit('authorize', { url: String(url) });
  }

  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }

  codeVerifier() {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }

  saveDiscoveryState(state) {
    this.discovery = state;
  }

  discoveryState() {
    return this.discovery;
  }

  invalidateCredentials(scope) {
    this.report.invalidated.push(scope);
    if (scope === 'all' || scope === 'client') this.clients.clear();
    if (scope === 'all' || scope === 'tokens') this.storedTokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }
}

/** The OAuth error code of a 4xx answer: the JSON body's `error`, or the challenge's `error=`. */
async function oauthError(response) {
  const challenge = /error="([^"]*)"/.exec(response.headers.get('www-authenticate') ?? '');
  if (challenge) return challenge[1];
  try {
    const error = (await response.clone().json())?.error;
    return typeof error === 'string' ? error : null; // not a JSON-RPC error object
  } catch {
    return null;
  }
}

/** fetch, recording every exchange the SDK makes (the transport hands it to the OAuth flow too),
 * as sent: the transport's DPoP signer, when there is one, wraps this. */
function recordingFetch(entries) {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const started = performance.now();
    const response = await fetch(input, init);
    const ended = performance.now();
    const entry = {
      method,
      path: url.pathname,
      status: response.status,
      ms: Math.round(ended - started),
      start_ms: Math.round(started - ORIGIN),
      end_ms: Math.round(ended - ORIGIN),
      scheme: headers.get('authorization')?.split(' ', 1)[0] ?? null,
      dpop_proof: headers.has('dpop')
    };
    if (response.status >= 400 && response.status < 500) entry.error = await oauthError(response);
    if (method === 'POST' && url.pathname.endsWith('/token')) {
      entry.grant_type = new URLSearchParams(String(init.body ?? '')).get('grant_type');
    } else if (method === 'POST' && url.pathname.endsWith('/mcp')) {
      try {
        const body = JSON.parse(String(init.body));
        entry.rpc = Array.isArray(body) ? body.map(m => m.method).join(',') : (body.method ?? null);
      } catch {
        entry.rpc = null;
      }
    }
    entries.push(entry);
    return response;
  };
}

function outcome(tool, args, result) {
  return {
    tool,
    arguments: args,
    is_error: Boolean(result.isError),
    structured: result.structuredContent ?? null,
    text: (result.content ?? [])
      .filter(c => c.type === 'text')
      .map(c => c.text)
      .join('\n')
  };
}

function describe(error) {
  // an OAuthError's message is the server's error_description; its code is the error itself
  const code = typeof error?.code === 'string' ? ` ${error.code}` : '';
  return `${error?.name ?? 'Error'}${code}: ${error?.message ?? String(error)}`;
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function sessionFlow(config, report, nextLine) {
  const sdk = await loadSdk(config.generation);
  report.sdk = { package: sdk.packageName, version: installedVersion(sdk.packageName) };
  let dpopSession;
  let dpopKeyPair;
  if (config.dpop) {
    if (!sdk.DpopSession) throw new Error(`${sdk.packageName} has no DPoP support`);
    dpopKeyPair = await sdk.generateDpopKeyPair({ alg: 'ES256' });
    dpopSession = await sdk.DpopSession.create({ keyPair: dpopKeyPair });
    report.dpop = { alg: dpopSession.alg, thumbprint: dpopSession.thumbprint, jwk: dpopSession.publicJwk };
  }
  const provider = new Provider(config, report, dpopSession);
  const fetchFn = recordingFetch(report.http);
  let phase = 'authorization';
  const newClient = () => {
    const options = config.era === 'auto' ? { versionNegotiation: { mode: 'auto' } } : undefined;
    const client = new sdk.Client({ name: config.client_name, version: '1.0.0' }, options);
    client.onerror = error => report.client_errors.push({ phase, error: describe(error) });
    return client;
  };
  const newTransport = () =>
    new sdk.StreamableHTTPClientTransport(new URL(config.mcp_url), {
      authProvider: provider,
      fetch: fetchFn
    });

  let client = newClient();
  let transport = newTransport();
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof sdk.UnauthorizedError)) throw error;
    // the SDK has sent the user to the authorization server; the callback is the host's to take
    const line = await nextLine();
    if (line === undefined) throw new Error('stdin closed before the authorization callback arrived');
    const params = new URL(JSON.parse(line).callback).searchParams;
    if (params.has('error')) {
      throw new Error(`the authorization server answered error=${params.get('error')}`);
    }
    if (params.get('state') !== provider.lastState) throw new Error('the callback state is not the one sent');
    await sdk.finishAuth(transport, params);
    await client.close();
    if (config.dpop_new_session) provider.dpopSession = await sdk.DpopSession.create({ keyPair: dpopKeyPair });
    // a started transport cannot be restarted: connect again on a fresh one
    client = newClient();
    transport = newTransport();
    phase = 'session';
    const connecting = performance.now();
    await client.connect(transport);
    report.connect_s = Number(((performance.now() - connecting) / 1000).toFixed(3));
  }
  phase = 'session';
  report.era = client.getProtocolEra?.() ?? 'legacy';
  report.protocol_version = client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null;
  const server = client.getServerVersion();
  report.server_info = server ? { name: server.name, version: server.version } : null;

  const sessionStarted = performance.now();
  const listed = await client.listTools();
  report.tools = listed.tools.map(t => ({ name: t.name, read_only: Boolean(t.annotations?.readOnlyHint) }));
  for (const call of config.calls) {
    const result = await client.callTool({ name: call.tool, arguments: call.arguments });
    report.results.push(outcome(call.tool, call.arguments, result));
  }
  report.session_s = Number(((performance.now() - sessionStarted) / 1000).toFixed(3));

  // these SDKs keep no expiry: they refresh when the server answers 401 to an expired token
  const probe = config.refresh;
  const saved = report.tokens.length;
  const deadline = performance.now() + (probe?.timeout_s ?? 0) * 1000;
  while (probe && report.tokens.length === saved && performance.now() < deadline) {
    await sleep(probe.interval_s * 1000);
    const result = await client.callTool({ name: probe.tool, arguments: probe.arguments });
    report.refresh_results.push(outcome(probe.tool, probe.arguments, result));
  }
  await client.close();
}

async function main() {
  const config = JSON.parse(process.argv[2]);
  const report = {
    sdk: null,
    dpop: null,
    authorizations: 0,
    client_id: null,
    era: null,
    protocol_version: null,
    server_info: null,
    connect_s: null,
    tools: [],
    results: [],
    refresh_results: [],
    tokens: [],
    invalidated: [],
    http: [],
    client_errors: [],
    errors: []
  };
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const nextLine = async () => (await lines.next()).value;
  try {
    await sessionFlow(config, report, nextLine);
  } catch (error) {
    process.stderr.write(`${error?.stack ?? error}\n`);
    report.errors.push(describe(error));
  }
  report.elapsed_s = Number(((performance.now() - ORIGIN) / 1000).toFixed(3));
  // written out before exiting, however large (stdin's reader would keep the process alive)
  const line = JSON.stringify({ event: 'report', ...report }) + '\n';
  await new Promise(resolve => process.stdout.write(line, resolve));
  process.exit(0);
}

await main();

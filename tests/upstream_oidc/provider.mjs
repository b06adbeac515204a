// A real OpenID provider (panva/oidc-provider, certified by the OpenID Foundation) on loopback, for
// the upstream sign-in tests. Not a mock of wallet-mcp: discovery, JWKS, authorization, PKCE, the
// token endpoint, ID tokens and userinfo are the library's own.
//
// Environment:
//   OIDC_CLIENTS       JSON list of client registrations (client_id, client_secret, redirect_uris, ...)
//   OIDC_ACCOUNTS_FILE JSON file {accountId: {email, email_verified, name, ...}}, read at every
//                      sign-in (a test may change a user's claims between two sign-ins)
//   OIDC_CONFORM       "false": put the scope's claims in the ID token too (as Google and Microsoft
//                      do); default "true": only in userinfo, as OpenID Connect Core §5.4 says
//
// Sign-in: the library's development interactions (a login form taking any account id and any
// password, then a consent form). Prints one JSON line, {"issuer": "http://127.0.0.1:<port>"}, once
// it listens on an ephemeral port; stops on SIGTERM or when stdin closes.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.OIDC_CLIENTS ?? '[]');
const accountsFile = process.env.OIDC_ACCOUNTS_FILE;
const conform = process.env.OIDC_CONFORM !== 'false';

function accountClaims(id) {
  const accounts = accountsFile ? JSON.parse(readFileSync(accountsFile, 'utf8')) : {};
  return accounts[id] ?? {};
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `test-${randomBytes(4).toString('hex')}`, use: 'sig' };

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    conformIdTokenClaims: conform,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...accountClaims(id) };
        },
      };
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();

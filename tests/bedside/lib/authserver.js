// A real OAuth 2 / OpenID Connect authorization server for the SMART App
// Launch tests: oidc-provider (npm, locked in package-lock.json) on
// 127.0.0.1 port 0, set up as an EHR's would be for the bedside app:
//  - a public client `wmty-bedside` (no secret, PKCE required) whose redirect
//    URI is wmtyd's /bedside/;
//  - SMART scopes (launch, launch/patient, fhirUser, offline_access, and the
//    patient/ user/ resource scopes of one resource server: wmty);
//  - JWT access tokens (resource indicators, accessTokenFormat 'jwt', RS256)
//    carrying fhirUser and, with a launch context, patient: what wmtyd checks
//    through --auth_jwks_url;
//  - an id_token with fhirUser (Practitioner/<login>);
//  - a launch context: an EHR launch's `launch` value maps to a patient
//    (newLaunch), and the token response carries `patient`;
//  - its own interaction pages (devInteractions: a login form taking any
//    login, then a consent page), which the tests fill in with playwright.
// Refresh tokens are issued unless { refreshTokens: false }; access tokens
// live accessTokenTTL seconds; { standalonePatient } is the patient this
// server "picks" for a standalone launch asking for launch/patient (a real
// one would show a patient picker of its own).
//
// startSmartStack() starts it with wmtyd pointed at it. wmtyd fetches the
// JWKS before it binds its port, and the client's redirect URI needs that
// port: so the server answers /jwks (the same key) before the provider,
// which is made once wmtyd's port is known.
import { createServer } from 'node:http';
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { resolve } from 'node:path';

import Provider from 'oidc-provider';

import { startServer } from '../../conformance/lib/server.js';
import { patientBody } from './browser.js';

export const CLIENT_ID = 'wmty-bedside';
// The resource (and access token audience) wmtyd is started with.
export const AUDIENCE = 'https://wmty.test/fhir';
const RESOURCE_SCOPES = 'patient/*.cruds user/*.cruds';

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `test-${randomBytes(4).toString('hex')}`, alg: 'RS256',
    use: 'sig' };
}

function publicJwks(key) {
  const { kty, n, e, kid, alg, use } = key;
  return JSON.stringify({ keys: [{ kty, n, e, kid, alg, use }] });
}

// Returns { issuer, jwksUrl, authorizationEndpoint, tokenEndpoint,
// configure({ redirectUri }), newLaunch(patient), refreshTokenActive(value),
// tokenRequests: { authorization_code, refresh_token }, stop() }.
export async function startAuthServer({ accessTokenTTL = 3600, refreshTokens = true, standalonePatient } = {}) {
  const key = signingKey();
  let handler = null; // the provider's, once configured
  let provider = null;
  const http = createServer((req, res) => {
    if (handler) return handler(req, res);
    if (req.url === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      return res.end(publicJwks(key));
    }
    res.writeHead(503);
    return res.end();
  });
  await new Promise((done) => http.listen(0, '127.0.0.1', done));
  const issuer = `http://127.0.0.1:${http.address().port}`;
  const launches = new Map(); // launch value -> patient id
  const contextByGrant = new Map(); // grant id -> { patient }
  const tokenRequests = { authorization_code: 0, refresh_token: 0 };

  const configure = ({ redirectUri }) => {
    provider = new Provider(issuer, {
      clients: [{
        client_id: CLIENT_ID,
        token_endpoint_auth_method: 'none',
        redirect_uris: [redirectUri],
        grant_types: refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
        response_types: ['code'],
      }],
      jwks: { keys: [key] },
      cookies: { keys: [randomBytes(32).toString('hex')] },
      scopes: ['openid', 'offline_access', 'fhirUser', 'launch', 'launch/patient'],
      claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
      // Scoped claims go into the id_token itself (SMART apps read fhirUser there).
      conformIdTokenClaims: false,
      extraParams: ['launch', 'aud'],
      findAccount: async (_ctx, id) => ({
        accountId: id,
        claims: async () => ({ sub: id, fhirUser: `Practitioner/${id}` }),
      }),
      clientBasedCORS: () => true,
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: true },
      revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => AUDIENCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: RESOURCE_SCOPES,
            audience: AUDIENCE,
            accessTokenFormat: 'jwt',
            accessTokenTTL,
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      issueRefreshToken: async (_ctx, client) => refreshTokens && client.grantTypeAllowed('refresh_token'),
      // Where the launch context is decided: each authorization that reaches
      // a grant records its patient (the EHR launch's, else none).
      loadExistingGrant: async (ctx) => {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (!grantId) return undefined;
        const { launch, scope = '' } = ctx.oidc.params;
        const standalone = /(^| )launch\/patient( |$)/.test(scope) ? standalonePatient : undefined;
        contextByGrant.set(grantId, { patient: launch ? launches.get(launch) : standalone });
        return ctx.oidc.provider.Grant.find(grantId);
      },
      extraTokenClaims: async (_ctx, token) => {
        const context = contextByGrant.get(token.grantId) || {};
        return { fhirUser: `Practitioner/${token.accountId}`, ...(context.patient ? { patient: context.patient } : {}) };
      },
    });
    provider.proxy = false;
    // SMART's token response: the launch patient next to the token, and
    // `scope` naming everything granted. (With resource indicators
    // oidc-provider lists only the resource's scopes there; SMART clients
    // such as fhirclient refresh only when offline_access is listed.)
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !ctx.body?.access_token) return;
      const grantType = ctx.oidc.params?.grant_type;
      if (grantType in tokenRequests) tokenRequests[grantType] += 1;
      const claims = JSON.parse(Buffer.from(ctx.body.access_token.split('.')[1], 'base64url').toString());
      if (claims.patient) ctx.body.patient = claims.patient;
      if (ctx.body.refresh_token && !/\boffline_access\b/.test(ctx.body.scope || '')) {
        ctx.body.scope = `${ctx.body.scope || ''} offline_access`.trim();
      }
    });
    handler = provider.callback();
  };

  return {
    issuer,
    configure,
    jwksUrl: `${issuer}/jwks`,
    authorizationEndpoint: `${issuer}/auth`,
    tokenEndpoint: `${issuer}/token`,
    revocationEndpoint: `${issuer}/token/revocation`,
    tokenRequests,
    // Whether the refresh token `value` still works (looked up, not used).
    async refreshTokenActive(value) {
      const token = await provider.RefreshToken.find(value);
      return Boolean(token && !token.isExpired && !token.consumed);
    },
    // A token of the hospital's Patient feed (the interface engine's own
    // client, here signed with the same key): wmtyd accepts it as any other.
    feedToken(scope = 'system/Patient.cu') {
      const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const signed = `${part({ alg: 'RS256', typ: 'JWT', kid: key.kid })}.${part({
        iss: issuer, aud: AUDIENCE, sub: 'adt-feed', scope, iat: now, exp: now + 600 })}`;
      const privateKey = createPrivateKey({ key, format: 'jwk' });
      return `${signed}.${sign('sha256', Buffer.from(signed), privateKey).toString('base64url')}`;
    },
    newLaunch(patient) {
      const launch = randomBytes(8).toString('hex');
      launches.set(launch, patient);
      return launch;
    },
    stop() {
      return new Promise((resolve) => {
        http.closeAllConnections();
        http.close(resolve);
      });
    },
  };
}

// oidc-provider and wmtyd pointed at each other: wmtyd verifies the access
// tokens with the keys at --auth_jwks_url, publishes the authorization
// server in its smart-configuration, and allows no clock skew (so a token
// that expires mid-session is refused at once). Serves the bedside app from
// WMTY_BEDSIDE_DIR when set. Returns { auth, wmtyd: { origin, appUrl,
// baseUrl, log() }, stop() }.
export async function startSmartStack(options = {}) {
  const auth = await startAuthServer(options);
  const extraArgs = ['--auth_disabled=false', `--auth_jwks_url=${auth.jwksUrl}`, `--auth_issuer=${auth.issuer}`,
    `--auth_audience=${AUDIENCE}`, `--smart_authorization_endpoint=${auth.authorizationEndpoint}`,
    `--smart_token_endpoint=${auth.tokenEndpoint}`, `--smart_revocation_endpoint=${auth.revocationEndpoint}`,
    '--auth_clock_skew=0s'];
  if (process.env.WMTY_BEDSIDE_DIR) extraArgs.push(`--bedside_dir=${resolve(process.env.WMTY_BEDSIDE_DIR)}`);
  let server;
  try {
    server = await startServer({ extraArgs });
  } catch (err) {
    await auth.stop();
    throw err;
  }
  const origin = `http://127.0.0.1:${server.port}`;
  auth.configure({ redirectUri: `${origin}/bedside/` });
  return {
    auth,
    wmtyd: { origin, appUrl: `${origin}/bedside/`, baseUrl: server.baseUrl, log: server.log },
    // The patient's record, sent as the hospital's feed does (the app opens
    // only patients whose record it can show the nurse).
    async putPatient(patientId) {
      const res = await fetch(`${server.baseUrl}/Patient/${patientId}`, {
        method: 'PUT',
        headers: { Authorization: `Bearer ${auth.feedToken()}`, 'Content-Type': 'application/fhir+json' },
        body: JSON.stringify(patientBody(patientId)),
      });
      if (res.status !== 201 && res.status !== 200) throw new Error(`PUT Patient/${patientId}: ${res.status}`);
    },
    async stop() {
      const exit = await server.stop();
      await auth.stop();
      return exit;
    },
  };
}

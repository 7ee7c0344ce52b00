// SMART App Launch 2 sign-in for the bedside app, through fhirclient (the
// global FHIR, loaded by index.html and launch.html from fhirclient's browser
// build). docs/bedside.md#sign-in, docs/security.md.
//
//   discover()         whether this server names an authorization server
//                      ([base]/.well-known/smart-configuration); null: no, the
//                      app offers its development sign-in instead
//   ehrLaunch()        launch.html?iss=…&launch=…: the EHR started the app
//   standaloneLaunch() launch.html: "Sign in with your organization"
//   finish()           back on /bedside/ from the authorization server (or a
//                      reload with a session): the session, or an error
//   refreshNow()       a new access token with the refresh token, if any
//   signOut()          forget every token (and revoke the refresh token at
//                      the revocation endpoint, when the server names one)
//
// Both launches are the authorization code flow with PKCE (S256); fhirclient
// keeps its state (and the tokens) in this tab's sessionStorage, nowhere else.
// The access token is refreshed shortly before it expires (and after a 401);
// onToken() hears about each new one.
/* global FHIR */
import { BASE } from './fhir.js';

// The app's registration at the authorization server: a public client
// (no secret) whose redirect URI is this server's /bedside/.
export const CLIENT_ID = 'wmty-bedside';
// EHR launch: the launch patient only. Standalone: the nurse's patients (the
// authorization server may still pick one: launch/patient). Both: who signed
// in (openid fhirUser) and a refresh token (offline_access).
const EHR_SCOPE = 'launch openid fhirUser offline_access patient/*.cruds';
const STANDALONE_SCOPE = 'launch/patient openid fhirUser offline_access user/*.cruds';
// Refresh this long before the access token expires (or at 80% of a shorter life).
const REFRESH_AHEAD_S = 60;

let client = null; // fhirclient's Client once signed in
let revocationEndpoint = ''; // from discover()
let refreshTimer = 0;
let tokenListener = () => {};

const fhirBase = () => new URL(BASE, location.origin).href.replace(/\/$/, '');
const appUrl = () => new URL('./', location.href).href;

function configure() {
  // The authorization server identifies a public client by client_id on refresh too.
  FHIR.oauth2.settings.refreshTokenWithClientId = true;
}

export function onToken(listener) {
  tokenListener = listener;
}

export async function discover() {
  try {
    const res = await fetch(`${BASE}/.well-known/smart-configuration`, { cache: 'no-store', credentials: 'omit' });
    if (!res.ok) return null;
    const conf = await res.json();
    if (!conf.authorization_endpoint || !conf.token_endpoint) return null;
    revocationEndpoint = conf.revocation_endpoint || '';
    return conf;
  } catch {
    return null;
  }
}

export async function ehrLaunch() {
  const params = new URLSearchParams(location.search);
  const iss = (params.get('iss') || '').replace(/\/$/, '');
  if (!iss || !params.get('launch')) throw new Error('The EHR did not say which server and launch to use (iss and launch).');
  // The app only talks to the server it came from; another iss is refused
  // rather than sent the nurse's sign-in.
  if (iss !== fhirBase()) throw new Error(`This app works with ${fhirBase()} only, not ${iss}.`);
  configure();
  await FHIR.oauth2.authorize({ clientId: CLIENT_ID, scope: EHR_SCOPE, redirectUri: appUrl(), pkceMode: 'required' });
}

export async function standaloneLaunch() {
  configure();
  await FHIR.oauth2.authorize({ clientId: CLIENT_ID, scope: STANDALONE_SCOPE, iss: fhirBase(), redirectUri: appUrl(),
    pkceMode: 'required' });
}

// Whether there is a sign-in to finish: the authorization server's answer in
// the address, or fhirclient's session in this tab.
export function pending() {
  const params = new URLSearchParams(location.search);
  return params.has('code') || params.has('error') || Boolean(sessionStorage.getItem('SMART_KEY'));
}

function session() {
  const token = client.state.tokenResponse || {};
  return {
    token: token.access_token || '',
    patient: client.patient.id || '',
    user: client.getFhirUser() || '',
    canRefresh: Boolean(token.refresh_token),
  };
}

export async function finish() {
  configure();
  client = await FHIR.oauth2.ready();
  // fhirclient took code and state out of the address; the authorization
  // server's iss (RFC 9207) goes too.
  if (location.search) history.replaceState(null, '', location.pathname);
  if (!client.state.tokenResponse?.access_token) throw new Error('the authorization server sent no access token');
  scheduleRefresh();
  return session();
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const expiresAt = client?.state.expiresAt;
  if (!expiresAt || !client.state.tokenResponse?.refresh_token) return;
  const left = expiresAt - Date.now() / 1000;
  const ahead = Math.min(REFRESH_AHEAD_S, Math.max(1, left * 0.2));
  refreshTimer = setTimeout(() => { refreshNow().catch(() => {}); }, Math.max(0, (left - ahead) * 1000));
}

// The new access token, or '' when there is no refresh token or the
// authorization server refused it (then only signing in again helps).
export async function refreshNow() {
  if (!client?.state.tokenResponse?.refresh_token) return '';
  try {
    await client.refresh();
  } catch {
    return '';
  }
  scheduleRefresh();
  const token = client.state.tokenResponse.access_token || '';
  if (token) tokenListener(token);
  return token;
}

// RFC 7009, as a public client; best effort (signing out never waits on it).
function revoke(token) {
  if (!revocationEndpoint || !token) return;
  fetch(revocationEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: 'refresh_token', client_id: CLIENT_ID }),
    credentials: 'omit',
    keepalive: true,
  }).catch(() => {});
}

export function signOut() {
  clearTimeout(refreshTimer);
  revoke(client?.state.tokenResponse?.refresh_token);
  client = null;
  // fhirclient's state: SMART_KEY names the entry holding the tokens.
  const key = sessionStorage.getItem('SMART_KEY');
  if (key) sessionStorage.removeItem(JSON.parse(key));
  sessionStorage.removeItem('SMART_KEY');
}

// A rest-hook receiver for the Subscription tests: Node's own HTTP server on
// 127.0.0.1 (port picked by the OS) that keeps every notification Bundle it
// is sent, answers 200, and can be told to fail (503) or to go away (the
// listener closes; connections are refused) and come back on the same port.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

// The SubscriptionStatus parameters of a notification Bundle (backport R4:
// the first entry is a Parameters resource).
export function parseNotification(bundle) {
  const params = bundle?.entry?.[0]?.resource;
  const all = (name) => (params?.parameter ?? []).filter((p) => p.name === name);
  const one = (name) => all(name)[0];
  const number = (p) => {
    const v = p?.valueString ?? p?.valueInteger64 ?? p?.valueInteger ?? p?.valueUnsignedInt ?? p?.valueDecimal;
    return v === undefined ? undefined : Number(v);
  };
  const part = (p, name) => (p.part ?? []).find((x) => x.name === name);
  return {
    type: one('type')?.valueCode,
    status: one('status')?.valueCode,
    subscription: one('subscription')?.valueReference?.reference,
    topic: one('topic')?.valueCanonical,
    eventsSinceSubscriptionStart: number(one('events-since-subscription-start')),
    events: all('notification-event').map((e) => ({
      number: number(part(e, 'event-number')),
      focus: part(e, 'focus')?.valueReference?.reference,
      timestamp: part(e, 'timestamp')?.valueInstant,
    })),
  };
}

export async function startReceiver() {
  const r = {
    notifications: [], // { ...parseNotification(bundle), bundle, headers, path, at }
    mode: 'ok', // 'ok' | 'fail'
    failures: 0, // requests answered 503
    port: 0,
  };
  const handler = (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (r.mode === 'fail') {
        r.failures++;
        res.writeHead(503);
        res.end();
        return;
      }
      let bundle = null;
      try {
        bundle = JSON.parse(body);
      } catch {
        bundle = { unparsed: body };
      }
      r.notifications.push({ ...parseNotification(bundle), bundle, headers: req.headers, path: req.url, at: Date.now() });
      res.writeHead(200);
      res.end();
    });
  };
  let server = http.createServer(handler);
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  r.port = server.address().port;
  r.url = (path = '/hook') => `http://127.0.0.1:${r.port}${path}`;

  // Notifications for one subscription id (of a given type, if set).
  r.of = (id, type) =>
    r.notifications.filter((n) => n.subscription?.endsWith(`Subscription/${id}`) && (!type || n.type === type));
  // Waits until pred() is truthy; fails after timeoutMs with `what`.
  r.waitFor = async (pred, what, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`receiver: timed out waiting for ${what}`);
      await sleep(25);
    }
  };
  r.down = async () => {
    server.closeAllConnections();
    await new Promise((res) => server.close(res));
  };
  r.up = async () => {
    server = http.createServer(handler);
    await new Promise((res) => server.listen(r.port, '127.0.0.1', res));
  };
  r.close = async () => {
    if (!server.listening) return;
    server.closeAllConnections();
    await new Promise((res) => server.close(res));
  };
  return r;
}

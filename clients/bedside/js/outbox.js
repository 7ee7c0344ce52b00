// The outbox: every save goes through it. An entry is written to
// localStorage before it is sent, so a save survives a failed request, a
// closed tab or a reload, and is sent again with the same X-Request-Id until
// the server answers. The server treats a repeated X-Request-Id as the same
// request (it answers the first result and writes nothing new), so a save
// whose answer was lost is never recorded twice. A queued entry's method,
// path, headers and body never change: the server refuses a reused
// X-Request-Id with another body (409).
//
// The entries hold patient data on this device until they are sent; saved
// entries are removed at once and sign-out deletes all of them (clear()).
import { AuthError, issueText, request } from './fhir.js';

const KEY = 'wmty.outbox.v1';
const MAX_BACKOFF_MS = 60000;

export function newRequestId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function backoffMs(attempts) {
  return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempts, 6));
}

// Events: 'change' (anything), 'saved' (detail: { entry, resource, version }),
// 'auth' (the token was refused; detail: message).
export class Outbox extends EventTarget {
  constructor(getToken) {
    super();
    this.getToken = getToken;
    this.entries = this.#load();
    this.recent = []; // saved entries of this page (labels and versions only, no bodies)
    this.running = false;
    this.timer = null;
    this.paused = false;
    for (const e of this.entries) {
      if (e.state === 'sending') e.state = 'pending';
    }
    globalThis.addEventListener('online', () => this.retryNow());
    globalThis.addEventListener('storage', (ev) => {
      if (ev.key === KEY) {
        this.entries = this.#load();
        this.#changed();
      }
    });
  }

  #load() {
    try {
      const v = JSON.parse(localStorage.getItem(KEY) || '[]');
      return Array.isArray(v) ? v : [];
    } catch {
      return [];
    }
  }

  #store() {
    if (this.entries.length === 0) localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, JSON.stringify(this.entries));
  }

  #changed() {
    this.dispatchEvent(new Event('change'));
  }

  // Queues a write and starts sending. `entry`: { patientId, kind, type,
  // method, path, body (object; none for DELETE), ifMatch, headers (more
  // request headers, e.g. X-Provenance), label, extra }. Returns the entry.
  add(entry) {
    const e = {
      id: newRequestId(),
      createdAt: new Date().toISOString(),
      state: 'pending',
      attempts: 0,
      nextAt: 0,
      error: '',
      ...entry,
      body: JSON.stringify(entry.body),
    };
    this.entries.push(e);
    this.#store();
    this.#changed();
    this.process();
    return e;
  }

  remove(id) {
    this.entries = this.entries.filter((e) => e.id !== id);
    this.#store();
    this.#changed();
  }

  forPatient(patientId) {
    return this.entries.filter((e) => e.patientId === patientId);
  }

  clear() {
    this.entries = [];
    this.recent = [];
    localStorage.removeItem(KEY);
    clearTimeout(this.timer);
    this.#changed();
  }

  retryNow() {
    this.paused = false;
    for (const e of this.entries) {
      if (e.state === 'pending') e.nextAt = 0;
    }
    this.#store();
    this.process();
  }

  pause() {
    this.paused = true;
    clearTimeout(this.timer);
  }

  // Sends due entries one at a time, oldest first (a later edit of the same
  // resource must not overtake an earlier one).
  async process() {
    if (this.running || this.paused) return;
    const token = this.getToken();
    if (!token) return;
    this.running = true;
    clearTimeout(this.timer);
    try {
      for (;;) {
        const head = this.entries.find((e) => e.state === 'pending' || e.state === 'sending');
        if (!head) break;
        const wait = head.nextAt - Date.now();
        if (wait > 0) {
          this.timer = setTimeout(() => this.process(), wait);
          break;
        }
        if (!(await this.#send(head, token))) break;
      }
    } finally {
      this.running = false;
    }
  }

  // Returns false when sending should stop for now.
  async #send(e, token) {
    e.state = 'sending';
    e.attempts += 1;
    this.#store();
    this.#changed();
    const headers = { 'X-Request-Id': e.id, ...(e.headers || {}) };
    if (e.ifMatch) headers['If-Match'] = e.ifMatch;
    let res;
    try {
      res = await request(token, e.method, e.path, { body: e.body, headers });
    } catch (err) {
      if (err instanceof AuthError) {
        e.state = 'pending';
        e.error = 'Sign in again to send';
        this.#store();
        this.pause();
        this.#changed();
        this.dispatchEvent(new CustomEvent('auth', { detail: err.message }));
        return false;
      }
      return this.#retryLater(e, 'No connection');
    }
    if (res.status === 200 || res.status === 201 || res.status === 204) {
      this.entries = this.entries.filter((x) => x.id !== e.id);
      this.#store();
      const saved = { id: e.id, patientId: e.patientId, label: e.label, kind: e.kind, type: e.type,
        resourceId: res.body?.id, ref: e.ref, version: res.version, savedAt: new Date().toISOString() };
      this.recent.unshift(saved);
      this.recent = this.recent.slice(0, 20);
      this.dispatchEvent(new CustomEvent('saved', { detail: { entry: e, saved, resource: res.body } }));
      this.#changed();
      return true;
    }
    if (res.status >= 500 || res.status === 408 || res.status === 429) {
      return this.#retryLater(e, `The server is busy (${res.status})`);
    }
    // 412: the version we edited is no longer current. 409 on the first POST
    // of a List: someone else made the patient's List first. Both are a
    // conflict the nurse resolves; nothing is overwritten.
    if (res.status === 412 && e.method === 'DELETE') {
      // Marking entered in error is a decision about the version seen: a
      // newer one must be looked at first, so there is nothing to merge.
      e.state = 'attention';
      e.error = 'Someone else changed it after you looked. Check the new version, then mark it again if it is still wrong';
    } else if (res.status === 412 || (res.status === 409 && e.type === 'List' && e.method === 'POST')) {
      e.state = 'conflict';
      e.error = 'Someone else changed this first';
    } else {
      e.state = 'attention';
      e.error = issueText(res.body) || `Refused (${res.status})`;
    }
    e.status = res.status;
    this.#store();
    this.#changed();
    return true;
  }

  #retryLater(e, why) {
    e.state = 'pending';
    e.error = why;
    e.nextAt = Date.now() + backoffMs(e.attempts - 1);
    this.#store();
    this.#changed();
    this.timer = setTimeout(() => this.process(), backoffMs(e.attempts - 1));
    return false;
  }
}

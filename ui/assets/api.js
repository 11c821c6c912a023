// The admin API client: every call carries the admin key, answers are
// JSON, and failures become ApiError with the server's code, message and
// field so forms can show them next to the input they are about.

import { toast } from './dom.js';

// The key lives in sessionStorage: it survives a reload of this tab but
// not closing it, and other tabs or sites cannot read it.
const KEY_STORAGE = 'touchpoint.adminKey';

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || '';
}

export function setKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(status, code, message, field, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || '';
    this.body = body;
  }
}

let unauthorized = () => {};

// onUnauthorized registers what happens when the server stops accepting
// the key (it was rotated, or the server restarted with another one).
export function onUnauthorized(fn) {
  unauthorized = fn;
}

// request performs one call. With quiet, failures are only thrown, not
// also announced in a toast; the caller shows them where they belong.
export async function request(method, path, body, { key = getKey(), quiet = false, signal, handle401 = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = 'Bearer ' + key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
      signal,
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    const e = new ApiError(0, 'network', 'The server could not be reached. Is touchpoint still running?');
    toast(e.message, { tone: 'error', title: 'Network error' });
    throw e;
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (resp.ok) return data;

  const err = (data && data.error) || {};
  const e = new ApiError(resp.status, err.code || `http_${resp.status}`,
    err.message || `${resp.status} ${resp.statusText || 'error'}`, err.field, data);
  if (resp.status === 401 && handle401) {
    unauthorized(e);
  } else if ((resp.status >= 500 || !data) && !quiet) {
    toast(e.message, { tone: 'error', title: `Server error ${resp.status}` });
  }
  throw e;
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body, opts);

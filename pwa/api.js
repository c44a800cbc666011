// The MyPage API (same origin, session in an HttpOnly cookie) and the offline copy.
const BASE = '/api/mypage/v1';
const KEY = 'niimin.mypage.';
let csrf = '';
let onLoggedOut = () => {};

export const setCsrf = (t) => { csrf = t || ''; };
export const whenLoggedOut = (fn) => { onLoggedOut = fn; };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const OFFLINE = 'オフラインです。電波の届く場所で、もう一度お試しください。';

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let res;
  try {
    res = await fetch(BASE + path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'offline', OFFLINE);
  }
  let data = {};
  if (res.status !== 204) {
    try { data = await res.json(); } catch { /* not JSON: use the generic message */ }
  }
  if (res.ok) return data;
  const err = new ApiError(res.status, data.code || 'error',
    data.message || `エラーが発生しました（${res.status}）。しばらくしてから、もう一度お試しください。`);
  if (err.code === 'not_logged_in') onLoggedOut(err);
  throw err;
}

// The last figures fetched, for offline use; cleared at logout and withdrawal.
export const saved = {
  get(k) {
    try { return JSON.parse(localStorage.getItem(KEY + k)); } catch { return null; }
  },
  set(k, v) {
    try { localStorage.setItem(KEY + k, JSON.stringify(v)); } catch { /* full or disabled */ }
  },
  clear() {
    try {
      Object.keys(localStorage).filter((k) => k.startsWith(KEY)).forEach((k) => localStorage.removeItem(k));
    } catch { /* disabled */ }
  },
};

// The page's one HTTP client for weftd's JSON API (cookie sessions).
//
// - sends cookies (same origin) and, on unsafe methods, the X-CSRF-Token
//   header with the value of the readable weft_csrf cookie;
// - a 401 on a normal call refreshes the session once (POST /api/auth/refresh,
//   the refresh cookie rotates) and repeats the call; when that fails the
//   session is gone and onAuthLost() is called;
// - answers are parsed JSON (null for 204); errors throw ApiError with the
//   platform's {"error":{"code","message"}} fields, the HTTP status, and
//   retryAfter (seconds) on 429.

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const NO_REFRESH = new Set(['/api/auth/login', '/api/auth/register', '/api/auth/refresh', '/api/auth/logout']);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return null;
}

async function send(path, { method = 'GET', body, headers, signal } = {}) {
  method = method.toUpperCase();
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (!SAFE.has(method)) {
    const csrf = readCookie('weft_csrf');
    if (csrf) h['X-CSRF-Token'] = csrf;
  }
  try {
    return await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Cannot reach the server.');
  }
}

async function parse(res) {
  if (res.status === 204 || res.status === 205) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (res.ok) throw new ApiError(res.status, 'bad_response', 'The server sent an answer that is not JSON.');
    }
  }
  if (res.ok) return data;
  const e = data && typeof data === 'object' ? data.error : null;
  const err = new ApiError(
    res.status,
    (e && e.code) || `http_${res.status}`,
    (e && e.message) || res.statusText || `HTTP ${res.status}`,
  );
  if (res.status === 429) {
    const ra = Number(res.headers.get('Retry-After'));
    err.retryAfter = Number.isFinite(ra) && ra > 0 ? ra : null;
  }
  throw err;
}

/**
 * createApi({onAuthLost}) -> api(path, {method, body, signal}) -> Promise<json>
 * api.refresh() -> Promise<boolean>: renew the session cookies (shared by
 * concurrent callers).
 */
export function createApi({ onAuthLost } = {}) {
  let refreshing = null;

  // Refresh tokens rotate and a reused one revokes the whole session, so
  // two tabs must not refresh with the same cookie: the Web Locks API
  // serialises them across tabs, and a tab that finds the CSRF cookie
  // changed while it waited knows another tab has just refreshed.
  function refresh() {
    if (!refreshing) {
      const before = readCookie('weft_csrf');
      const run = async () => {
        const now = readCookie('weft_csrf');
        if (!before || !now) return false; // never signed in here, or signed out
        if (now !== before) return true;
        try {
          const res = await send('/api/auth/refresh', { method: 'POST', body: {} });
          return res.ok;
        } catch {
          return false;
        }
      };
      const locks = typeof navigator !== 'undefined' && navigator.locks;
      refreshing = (locks ? locks.request('weft-auth-refresh', run) : run()).finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  async function api(path, opts = {}) {
    let res = await send(path, opts);
    if (res.status === 401 && !NO_REFRESH.has(path)) {
      if (await refresh()) {
        res = await send(path, opts);
      }
      if (res.status === 401 && onAuthLost) onAuthLost();
    }
    return parse(res);
  }

  api.refresh = refresh;
  return api;
}

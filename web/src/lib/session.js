// Accounts for the page: who is signed in, sign in, register, sign out.
// Sessions are cookie sessions ("session": "cookie"): HttpOnly access and
// refresh cookies plus a readable weft_csrf cookie (see api.js).

/** The signed-in user, or null. Other errors are thrown. */
export async function currentUser(api) {
  try {
    const res = await api('/api/auth/me');
    return (res && res.user) || null;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function signIn(api, { email, password }) {
  const res = await api('/api/auth/login', { method: 'POST', body: { email, password, session: 'cookie' } });
  return res.user;
}

export async function register(api, { email, username, display_name, password, referral_code }) {
  const body = { email, username, display_name, password, session: 'cookie' };
  if (referral_code) body.referral_code = referral_code;
  const res = await api('/api/auth/register', { method: 'POST', body });
  return res.user;
}

export async function signOut(api) {
  try {
    await api('/api/auth/logout', { method: 'POST', body: {} });
  } catch (e) {
    // Already signed out is fine; anything else is worth a log line only:
    // the cookies are cleared by the answer or expire on their own.
    if (e.status !== 401) console.warn('sign out:', e);
  }
}

/**
 * Which form field an auth error is about: the host's 400 "invalid"
 * messages start with "<field>: ", 409s name it in the code.
 */
export function errorField(e) {
  if (!e) return null;
  if (e.code === 'email_taken') return 'email';
  if (e.code === 'username_taken') return 'username';
  if (e.code === 'unknown_referral_code' || /referral_code/.test(e.message || '')) return 'referral_code';
  const m = /^([a-z_]+):/.exec(e.message || '');
  return m ? m[1] : null;
}

// Shared by the interop chains (saml/chain.mjs, upstream/chain.mjs): the fedgate under test and
// its admin API, and the scripted browser's cookie jar. Node built-ins only, so it needs no
// node_modules of its own.
//
//   FEDGATE, ADMIN_KEY   from FEDGATE_URL (no trailing slash) and FEDGATE_ADMIN_KEY
//   admin(method, path, body)   /admin/v1 call -> { status, json, text }
//   create(path, body)          POST that must answer 201 -> json
//   new Jar()                   cookies per host:port (fedgate and each IdP set their own)

import assert from 'node:assert/strict';

export const FEDGATE = (process.env.FEDGATE_URL || '').replace(/\/+$/, '');
export const ADMIN_KEY = process.env.FEDGATE_ADMIN_KEY || '';

export async function admin(method, path, body) {
  const res = await fetch(`${FEDGATE}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

export async function create(path, body) {
  const r = await admin('POST', path, body);
  assert.equal(r.status, 201, `POST ${path} -> ${r.status} ${r.text}`);
  return r.json;
}

/** Cookie jar per host:port (fedgate and each IdP set their own cookies). */
export class Jar {
  constructor() { this.hosts = new Map(); }
  header(url) {
    const m = this.hosts.get(new URL(url).host);
    return m ? [...m].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }
  store(url, res) {
    const host = new URL(url).host;
    if (!this.hosts.has(host)) this.hosts.set(host, new Map());
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') this.hosts.get(host).delete(name);
      else this.hosts.get(host).set(name, value);
    }
  }
}

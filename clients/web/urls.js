// @ts-check
/**
 * WebSocket addresses for the pages: always the server the page came from (ws:// beside http://,
 * wss:// beside https://), under the same path prefix (so a reverse proxy that serves kol at
 * /kol/ works too), with the page's own ?token= passed on.
 */

/** Caption room names: the browser's copy of ROOM_NAME in server/dialects/protocol.ts (modules.test.ts keeps them in step). */
export const ROOM_NAME = /^[\w.-]{1,64}$/;

/**
 * @param {string} endpoint   relative to the page's folder, e.g. "v1/stream"
 * @param {Record<string, string | number | boolean | null | undefined>} [params]
 * @param {{ href: string }} [page]  the page's location
 * @returns {string}
 */
export function socketUrl(endpoint, params = {}, page = location) {
  const pageUrl = new URL(page.href);
  const url = new URL(endpoint, pageUrl);
  url.protocol = pageUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  url.hash = '';
  url.search = '';
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, String(value));
  }
  const token = pageUrl.searchParams.get('token');
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

/**
 * A page URL relative to this one (e.g. the overlay for a room), keeping ?token=.
 * @param {string} target
 * @param {Record<string, string>} [params]
 * @param {{ href: string }} [page]
 */
export function pageUrl(target, params = {}, page = location) {
  const here = new URL(page.href);
  const url = new URL(target, here);
  url.search = '';
  for (const [key, value] of Object.entries(params)) if (value) url.searchParams.set(key, value);
  const token = here.searchParams.get('token');
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

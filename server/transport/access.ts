/**
 * Who may connect: API keys (with their scope) and browser origins. The gateway asks these at the
 * upgrade, /metrics asks `authenticate` for its own requests.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { KolError } from '../../engine/errors.js';
import { parseApiKey, type KeyScope } from '../config.js';

export interface Caller {
  /** The API key's secret used, or null on an open server. */
  key: string | null;
  scope: KeyScope;
}

/**
 * Keys come as `Authorization: Bearer KEY` (or `Token KEY`), or, since browsers cannot set headers,
 * `?token=KEY` or a WebSocket subprotocol the way the vendors' browser clients send them.
 * Throws `unauthorized`.
 */
export function authenticate(apiKeys: string[], req: IncomingMessage, url: URL): Caller {
  if (apiKeys.length === 0) return { key: null, scope: 'all' };
  const header = req.headers.authorization;
  const presented = header?.startsWith('Bearer ') ? header.slice(7).trim() : header?.startsWith('Token ') ? header.slice(6).trim() : (keyFromSubprotocols(req) ?? url.searchParams.get('token'));
  if (!presented) throw new KolError('unauthorized', 'An API key is required: send "Authorization: Bearer KEY" or add ?token=KEY to the URL.');
  for (const entry of apiKeys) {
    const { secret, scope } = parseApiKey(entry);
    if (sameSecret(secret, presented)) return { key: secret, scope };
  }
  throw new KolError('unauthorized', 'The API key is not valid.');
}

/** A request without an Origin (not a browser) is allowed; an empty list or `*` allows every origin. */
export function originAllowed(origin: string | undefined, allowedOrigins: string[]): boolean {
  return !origin || allowedOrigins.length === 0 || allowedOrigins.includes(origin) || allowedOrigins.includes('*');
}

/** OpenAI's browser client offers `openai-insecure-api-key.KEY`; Deepgram's offers `token`, `KEY`. */
const OPENAI_KEY_PROTOCOL = 'openai-insecure-api-key.';

function keyFromSubprotocols(req: IncomingMessage): string | null {
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const openai = offered.find((p) => p.startsWith(OPENAI_KEY_PROTOCOL));
  if (openai) return openai.slice(OPENAI_KEY_PROTOCOL.length);
  return offered[0] === 'token' && offered[1] ? offered[1] : null;
}

/** The subprotocol to answer with: the client's first one that is not a key (`realtime`, `token`). */
export function chooseSubprotocol(offered: Set<string>): string | false {
  for (const protocol of offered) if (!protocol.startsWith(OPENAI_KEY_PROTOCOL)) return protocol;
  return false;
}

/** Constant-time comparison, so response timing does not reveal how much of a key was right. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The browser clients (clients/web) served from the gateway itself, so that `kol serve` alone is
 * enough to open the microphone page at `/` and the caption overlay at `/overlay`: no CDN, no
 * second server.
 *
 * Only files with a known web content type are served (never the tests, type declarations or
 * documentation beside them), never a dotfile, and never anything outside the folder, however the
 * path is encoded or wherever a symlink points. Files are revalidated on every load (ETag, 304): the
 * names carry no content hash, so a deploy is seen at the next reload.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { HttpRoute } from './transport/gateway.js';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/**
 * Pages may talk to their own server (WebSocket included) and load their own files, nothing else.
 * `ws:`/`wss:` are listed because older browsers do not count them as 'self'.
 */
const PAGE_CSP = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "script-src 'self'",
  "style-src 'self'",
  "worker-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'none'",
  "object-src 'none'",
].join('; ');

export interface StaticOptions {
  /** The folder served. */
  root: string;
  /** Clean URLs: path → file in root, e.g. { '/': 'index.html', '/overlay': 'overlay.html' }. */
  pages?: Record<string, string>;
}

export function staticRoute(options: StaticOptions): HttpRoute {
  const root = path.resolve(options.root);
  const pages = options.pages ?? {};
  let realRoot: Promise<string> | null = null;

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const relative = pages[url.pathname] ?? fileFor(url.pathname);
    if (relative === null) return false;
    const file = path.join(root, relative);
    if (!file.startsWith(root + path.sep)) return false;

    let stat;
    try {
      realRoot ??= fs.realpath(root);
      const [real, rootReal] = await Promise.all([fs.realpath(file), realRoot]);
      if (!real.startsWith(rootReal + path.sep)) return false;
      stat = await fs.stat(real);
    } catch {
      return false;
    }
    if (!stat.isFile()) return false;

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ code: 'method_not_allowed', message: `${req.method} is not allowed here; use GET.` }));
      return true;
    }

    const ext = path.extname(file).toLowerCase();
    const etag = `W/"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    const headers: Record<string, string | number> = {
      'content-type': CONTENT_TYPES[ext] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      etag,
      'last-modified': stat.mtime.toUTCString(),
      'x-content-type-options': 'nosniff',
      // Page URLs may carry ?token=KEY: never hand it to another site.
      'referrer-policy': 'no-referrer',
    };
    if (ext === '.html') headers['content-security-policy'] = PAGE_CSP;
    if (matchesEtag(req.headers['if-none-match'], etag)) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    headers['content-length'] = stat.size;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    await new Promise<void>((resolve) => {
      const stream = createReadStream(file);
      stream.on('error', () => {
        res.destroy();
        resolve();
      });
      stream.on('end', resolve);
      stream.pipe(res);
    });
    return true;
  };
}

/**
 * The file a URL path names, relative to the root, or null when it cannot be one of ours: an
 * undecodable or odd path, a dotfile or `..` in any form, or a type that is not served.
 */
export function fileFor(pathname: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.slice(1).split('/');
  if (segments.some((s) => s === '' || s.startsWith('.'))) return null;
  const relative = segments.join('/');
  if (!Object.hasOwn(CONTENT_TYPES, path.posix.extname(relative).toLowerCase())) return null;
  return relative;
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || bare(tag) === bare(etag));
}

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from '../engine/paths.js';
import { fileFor, staticRoute } from './static.js';

let server: http.Server;
let base: string;
let root: string;

before(async () => {
  // A served folder with the traps in it: a dotfile, a test file, a symlink out of the folder.
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-static-'));
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>home</title>');
  fs.writeFileSync(path.join(root, 'overlay.html'), '<!doctype html><title>overlay</title>');
  fs.writeFileSync(path.join(root, 'app.js'), 'export {};\n');
  fs.writeFileSync(path.join(root, 'style.css'), 'body{}');
  fs.writeFileSync(path.join(root, '.env'), 'SECRET=1');
  fs.writeFileSync(path.join(root, 'page.test.ts'), 'secret test');
  fs.mkdirSync(path.join(root, 'sub'));
  fs.writeFileSync(path.join(root, 'sub', 'deep.js'), '1');
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-outside-'));
  fs.writeFileSync(path.join(outside, 'secret.js'), 'secret');
  fs.symlinkSync(path.join(outside, 'secret.js'), path.join(root, 'link.js'));

  const route = staticRoute({ root, pages: { '/': 'index.html', '/overlay': 'overlay.html' } });
  server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!(await route(req, res, url))) res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

after(() => {
  server.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A raw request, so that the path goes out exactly as written (fetch would normalise "..") */
function raw(pathname: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${pathname}`, { method, headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.path = pathname;
    req.on('error', reject);
    req.end();
  });
}

test('pages at clean URLs, files with their content types, revalidated with ETags', async () => {
  const home = await raw('/');
  assert.equal(home.status, 200);
  assert.match(home.body, /<title>home/);
  assert.equal(home.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(home.headers['cache-control'], 'no-cache');
  assert.equal(home.headers['x-content-type-options'], 'nosniff');
  assert.equal(home.headers['referrer-policy'], 'no-referrer');
  assert.match(String(home.headers['content-security-policy']), /connect-src 'self' ws: wss:/);
  assert.match((await raw('/overlay')).body, /<title>overlay/);
  assert.equal((await raw('/app.js')).headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal((await raw('/style.css')).headers['content-type'], 'text/css; charset=utf-8');
  assert.equal((await raw('/sub/deep.js')).status, 200);

  const etag = String(home.headers.etag);
  const again = await raw('/', 'GET', { 'if-none-match': etag });
  assert.equal(again.status, 304);
  assert.equal(again.body, '');
  const head = await raw('/app.js', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '11');
  assert.equal(head.body, '');
  const post = await raw('/app.js', 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});

test('nothing outside the folder, no dotfiles, no tests or other unlisted types', async () => {
  for (const attempt of [
    '/../package.json',
    '/%2e%2e/package.json',
    '/..%2fpackage.json',
    '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/sub/..%2f..%2fpackage.json',
    '/..%5c..%5cpackage.json',
    '/.env',
    '/%2eenv',
    '/page.test.ts',
    '/link.js',
    '/sub',
    '/sub/',
    '//etc/passwd',
    '/app.js%00.html',
    '/%E0%A4%A',
    '/missing.js',
  ]) {
    const res = await raw(attempt);
    assert.equal(res.status, 404, `${attempt} answered ${res.status}: ${res.body.slice(0, 60)}`);
  }
});

test('fileFor maps URL paths to files, or refuses', () => {
  assert.equal(fileFor('/app.js'), 'app.js');
  assert.equal(fileFor('/sub/deep.js'), 'sub/deep.js');
  assert.equal(fileFor('/%61pp.js'), 'app.js');
  for (const bad of ['/', '/../x.js', '/a/../../x.js', '/.hidden.js', '/x.ts', '/x.d.ts', '/x.md', '/x', '/a//b.js', '/a\\b.js', '/x.constructor', '/%ZZ']) {
    assert.equal(fileFor(bad), null, bad);
  }
});

test('the real client folder: every page and script the pages load is served', async () => {
  const route = staticRoute({ root: path.join(REPO_ROOT, 'clients', 'web'), pages: { '/': 'index.html', '/overlay': 'overlay.html' } });
  const real = http.createServer(async (req, res) => {
    if (!(await route(req, res, new URL(req.url ?? '/', 'http://localhost')))) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => real.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(real.address() as net.AddressInfo).port}`;
  try {
    for (const page of ['/', '/overlay']) {
      const html = await (await fetch(`${url}${page}`)).text();
      const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((r) => !r.startsWith('http'));
      assert.ok(refs.length >= 3, `${page} loads its files`);
      for (const ref of refs) assert.equal((await fetch(new URL(ref, `${url}${page}`))).status, 200, `${page} → ${ref}`);
    }
    // Modules imported by other modules (and the worklet) are there too.
    for (const file of fs.readdirSync(path.join(REPO_ROOT, 'clients', 'web')).filter((f) => f.endsWith('.js'))) {
      const source = fs.readFileSync(path.join(REPO_ROOT, 'clients', 'web', file), 'utf8');
      for (const m of source.matchAll(/from '\.\/([^']+)'|new URL\('\.\/([^']+)'/g)) {
        const res = await fetch(`${url}/${m[1] ?? m[2]}`);
        assert.equal(res.status, 200, `${file} imports ${m[1] ?? m[2]}`);
        assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
      }
    }
    assert.equal((await fetch(`${url}/web.test.ts`)).status, 404);
    assert.equal((await fetch(`${url}/resampler.d.ts`)).status, 404);
  } finally {
    real.close();
  }
});

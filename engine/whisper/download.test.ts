import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { refusedPort, startFileServer, type FileServer } from '../../test/helpers/file-server.js';
import { isKolError } from '../errors.js';
import { downloadFile, partialPath } from './download.js';

let server: FileServer;
let dir: string;

before(async () => {
  server = await startFileServer();
});
after(async () => {
  await server.close();
});
beforeEach(() => {
  server.requests.length = 0;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-download-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function sha256Of(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('downloadFile', () => {
  it('follows redirects, verifies both digests, reports progress and leaves only the final file', async () => {
    const dest = path.join(dir, 'nested', 'model.bin');
    const progress: [number, number | undefined][] = [];
    await downloadFile({
      url: `${server.url}/redirect`,
      dest,
      expectedSize: server.payload.length,
      sha256: server.sha256,
      sha1: server.sha1,
      onProgress: (received, total) => progress.push([received, total]),
    });
    assert.equal(sha256Of(dest), server.sha256);
    assert.equal(fs.existsSync(partialPath(dest)), false);
    assert.deepEqual(server.requests.map((r) => r.path), ['/redirect', '/redirect-2', '/file']);
    assert.deepEqual(progress[0], [0, server.payload.length]);
    assert.deepEqual(progress.at(-1), [server.payload.length, server.payload.length]);
    assert.ok(progress.every(([received], i) => i === 0 || received >= progress[i - 1][0]), 'progress never goes back');
  });

  it('resumes with a Range request when the connection is cut halfway', async () => {
    const dest = path.join(dir, 'model.bin');
    const half = server.payload.length >> 1;
    server.cutAfter(half);
    const progress: number[] = [];
    await downloadFile({ url: `${server.url}/file`, dest, expectedSize: server.payload.length, sha256: server.sha256, onProgress: (r) => progress.push(r) });

    assert.equal(sha256Of(dest), server.sha256);
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0].range, undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(server.requests[1].range ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= half, `resumed at byte ${resumedAt}`);
    // After the cut, progress resumes from what reached the disk (a little behind what arrived), not from 0.
    const drop = progress.findIndex((r, i) => i > 0 && r < progress[i - 1]);
    if (drop !== -1) assert.equal(progress[drop], resumedAt);
    assert.ok(progress.slice(Math.max(drop, 0)).every((r, i, rest) => i === 0 || r >= rest[i - 1]));
    assert.equal(progress.at(-1), server.payload.length);
  });

  it('resumes a partial file left by an earlier run, hashing what it already has', async () => {
    const dest = path.join(dir, 'model.bin');
    fs.writeFileSync(partialPath(dest), server.payload.subarray(0, 1_000_000));
    const progress: number[] = [];
    await downloadFile({ url: `${server.url}/file`, dest, expectedSize: server.payload.length, sha256: server.sha256, onProgress: (r) => progress.push(r) });
    assert.equal(sha256Of(dest), server.sha256);
    assert.deepEqual(server.requests.map((r) => r.range), ['bytes=1000000-']);
    assert.equal(progress[0], 1_000_000);
  });

  it('starts over cleanly when the server ignores the Range header', async () => {
    const restarting = await startFileServer();
    try {
      restarting.ignoreRanges();
      const dest = path.join(dir, 'model.bin');
      fs.writeFileSync(partialPath(dest), restarting.payload.subarray(0, 500_000));
      await downloadFile({ url: `${restarting.url}/file`, dest, expectedSize: restarting.payload.length, sha256: restarting.sha256 });
      assert.equal(sha256Of(dest), restarting.sha256);
      assert.deepEqual(restarting.requests.map((r) => r.range), ['bytes=500000-']);
    } finally {
      await restarting.close();
    }
  });

  it('finishes a complete partial file without a request', async () => {
    const dest = path.join(dir, 'model.bin');
    fs.writeFileSync(partialPath(dest), server.payload);
    await downloadFile({ url: `${server.url}/file`, dest, expectedSize: server.payload.length, sha256: server.sha256 });
    assert.equal(sha256Of(dest), server.sha256);
    assert.equal(server.requests.length, 0);
  });

  it('rejects a wrong payload with a checksum error and leaves nothing behind', async () => {
    const dest = path.join(dir, 'model.bin');
    await assert.rejects(
      downloadFile({ url: `${server.url}/wrong`, dest, expectedSize: server.payload.length, sha256: server.sha256 }),
      (err) => isKolError(err, 'model_checksum_mismatch') && err.message.includes(`expected ${server.sha256}`) && err.message.includes(dest),
    );
    assert.equal(fs.existsSync(dest), false);
    assert.equal(fs.existsSync(partialPath(dest)), false);
  });

  it('catches a corrupt partial file by its checksum and deletes it', async () => {
    const dest = path.join(dir, 'model.bin');
    fs.writeFileSync(partialPath(dest), Buffer.alloc(1_000_000, 1));
    await assert.rejects(downloadFile({ url: `${server.url}/file`, dest, sha1: server.sha1 }), (err) => isKolError(err, 'model_checksum_mismatch'));
    assert.equal(fs.existsSync(dest), false);
    assert.equal(fs.existsSync(partialPath(dest)), false);
  });

  it('refuses a file whose size differs from the published one before downloading it', async () => {
    const dest = path.join(dir, 'model.bin');
    await assert.rejects(
      downloadFile({ url: `${server.url}/file`, dest, expectedSize: server.payload.length + 1 }),
      (err) => isKolError(err, 'model_checksum_mismatch') && err.message.includes(`${server.payload.length + 1} bytes`),
    );
    assert.equal(fs.existsSync(dest), false);
  });

  it('says which URL to fetch and where to put it when the connection is refused', async () => {
    const dest = path.join(dir, 'model.bin');
    const url = `http://127.0.0.1:${await refusedPort()}/ggml-model.bin`;
    await assert.rejects(downloadFile({ url, dest }), (err) => {
      assert.ok(isKolError(err, 'model_download_failed'));
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(err.message.includes(url), err.message);
      assert.ok(err.message.includes(`save it as ${dest}`), err.message);
      return true;
    });
    assert.equal(fs.existsSync(dest), false);
  });

  it('gives up on a server that never answers', async () => {
    const dest = path.join(dir, 'model.bin');
    await assert.rejects(downloadFile({ url: `${server.url}/stall`, dest, idleTimeoutMs: 300 }), (err) => isKolError(err, 'model_download_failed') && /no data for 0.3 s/.test(err.message));
  });

  it('reports an HTTP error status', async () => {
    const dest = path.join(dir, 'model.bin');
    await assert.rejects(downloadFile({ url: `${server.url}/missing`, dest }), (err) => isKolError(err, 'model_download_failed') && err.message.includes('HTTP 404'));
  });

  it('joins a download of the same file already running in this process', async () => {
    const dest = path.join(dir, 'model.bin');
    const request = { url: `${server.url}/file`, dest, sha256: server.sha256 };
    await Promise.all([downloadFile(request), downloadFile(request)]);
    assert.equal(sha256Of(dest), server.sha256);
    assert.equal(server.requests.length, 1);
  });
});

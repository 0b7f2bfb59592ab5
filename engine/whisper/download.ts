/**
 * Downloads one large file (a model) over HTTP(S): follows redirects (Hugging Face answers with a
 * redirect to its CDN), writes to `<dest>.partial` and resumes it with a Range request, checks the size
 * and the SHA-256/SHA-1 it was promised, and only then renames the file into place, so `dest` either
 * does not exist or holds verified bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KolError } from '../errors.js';

/** Called as bytes arrive; `totalBytes` is undefined when neither the caller nor the server knows it. */
export type DownloadProgress = (receivedBytes: number, totalBytes: number | undefined) => void;

export interface DownloadRequest {
  url: string;
  /** The final path; the download grows in `<dest>.partial` beside it. */
  dest: string;
  expectedSize?: number;
  /** Lower-case hex digests; each one given is checked. */
  sha256?: string;
  sha1?: string;
  onProgress?: DownloadProgress;
  /** Give up on a connection that delivers nothing for this long, connecting included. Default 30 s. */
  idleTimeoutMs?: number;
}

const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 10;
/** A transfer cut off after making progress is resumed at once, at most this many times per download. */
const MAX_RESUMES = 5;

export function partialPath(dest: string): string {
  return `${dest}.partial`;
}

const inFlight = new Map<string, Promise<void>>();

/**
 * Downloads `url` to `dest`. Rejects with a KolError: `model_download_failed` when the server cannot be
 * reached or answers with an error (the message names the URL and the path to put the file at by
 * hand), `model_checksum_mismatch` when the bytes are not the promised ones (nothing is left behind).
 * A second call for the same `dest` while one runs in this process joins the first.
 */
export function downloadFile(request: DownloadRequest): Promise<void> {
  const key = path.resolve(request.dest);
  const running = inFlight.get(key);
  if (running) return running;
  const download = downloadResumably(request).finally(() => inFlight.delete(key));
  inFlight.set(key, download);
  return download;
}

type Attempt =
  | { kind: 'done' }
  /** The partial file was unusable and is gone: go again from byte 0. */
  | { kind: 'restart' }
  | { kind: 'interrupted'; progressed: boolean; cause: unknown };

async function downloadResumably(request: DownloadRequest): Promise<void> {
  await mkdir(path.dirname(request.dest), { recursive: true });
  for (let resumes = 0; ; ) {
    const attempt = await downloadOnce(request);
    if (attempt.kind === 'done') return;
    if (attempt.kind === 'restart') continue; // cannot repeat: the next attempt has no partial file
    if (!attempt.progressed || resumes++ >= MAX_RESUMES) throw unreachable(request, attempt.cause);
  }
}

/** One HTTP exchange: resume (or start) the partial file, and finish it if the bytes all arrive. */
async function downloadOnce(request: DownloadRequest): Promise<Attempt> {
  const partial = partialPath(request.dest);
  let offset = fileSize(partial);
  if (request.expectedSize !== undefined && offset > request.expectedSize) {
    await removePartial(request);
    offset = 0;
  }

  let digests = newDigests(request);
  if (offset > 0) await hashFile(partial, digests);
  if (offset > 0 && offset === request.expectedSize) {
    // An earlier run got every byte but stopped before the rename.
    if (digestsMatch(digests)) {
      await moveIntoPlace(partial, request.dest);
      return { kind: 'done' };
    }
    await removePartial(request);
    offset = 0;
    digests = newDigests(request);
  }

  let response: http.IncomingMessage;
  try {
    response = await get(new URL(request.url), offset, request.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  } catch (cause) {
    return { kind: 'interrupted', progressed: false, cause };
  }

  const status = response.statusCode ?? 0;
  const resumedAt = status === 206 ? contentRangeStart(response) : undefined;
  if (offset > 0 && (status === 416 || (status === 206 && resumedAt !== offset))) {
    // The server will not continue this partial file where it ends: start over.
    response.resume();
    await removePartial(request);
    return { kind: 'restart' };
  }
  if (status !== 200 && status !== 206) {
    response.resume();
    throw new KolError('model_download_failed', `${request.url} answered HTTP ${status} ${response.statusMessage ?? ''}.${manualHint(request)}`);
  }
  if (status === 200 && offset > 0) {
    // No range support: the whole file is coming again, so start the partial and the digests afresh.
    offset = 0;
    digests = newDigests(request);
  }

  const total = announcedTotal(response, offset) ?? request.expectedSize;
  if (request.expectedSize !== undefined && total !== request.expectedSize) {
    response.resume();
    await removePartial(request);
    throw new KolError('model_checksum_mismatch', `${request.url} offers ${total} bytes, but the model is published as ${request.expectedSize} bytes.${manualHint(request)}`);
  }

  let received = offset;
  request.onProgress?.(received, total);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      for (const d of digests) d.hash.update(chunk);
      received += chunk.length;
      request.onProgress?.(received, total);
      done(null, chunk);
    },
  });
  const out = fs.createWriteStream(partial, { flags: offset > 0 ? 'a' : 'w' });
  try {
    await pipeline(response, counter, out);
  } catch (cause) {
    // Let the last write land before the next attempt measures the partial file.
    if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
    return { kind: 'interrupted', progressed: received > offset, cause };
  }
  if (total !== undefined && received < total) {
    return { kind: 'interrupted', progressed: received > offset, cause: new Error(`the connection closed after ${received} of ${total} bytes`) };
  }

  const wrongSize = request.expectedSize !== undefined && received !== request.expectedSize;
  const problem = wrongSize ? `${received} bytes instead of ${request.expectedSize}` : digestMismatch(digests);
  if (problem) {
    await removePartial(request);
    throw new KolError('model_checksum_mismatch', `The download of ${request.url} is corrupt (${problem}); it was deleted. Try again, or fetch the file by hand and save it as ${request.dest}.`);
  }
  await moveIntoPlace(partial, request.dest);
  return { kind: 'done' };
}

/** GET with `Range: bytes=<offset>-` when resuming, following redirects; resolves at the final response's headers. */
async function get(url: URL, offset: number, idleTimeoutMs: number): Promise<http.IncomingMessage> {
  for (let redirects = 0; ; redirects++) {
    const response = await getOnce(url, offset, idleTimeoutMs);
    const location = response.headers.location;
    if (![301, 302, 303, 307, 308].includes(response.statusCode ?? 0) || location === undefined) return response;
    response.resume();
    if (redirects === MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
    url = new URL(location, url);
  }
}

function getOnce(url: URL, offset: number, idleTimeoutMs: number): Promise<http.IncomingMessage> {
  const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (client === undefined) return Promise.reject(new Error(`unsupported protocol ${url.protocol}`));
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'user-agent': 'kol-model-download' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const req = client.get(url, { headers }, resolve);
    // The socket timeout covers connecting and every pause in the body, so a stalled transfer fails too.
    req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`no data for ${idleTimeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}

function contentRangeStart(response: http.IncomingMessage): number | undefined {
  const match = /^bytes (\d+)-/.exec(response.headers['content-range'] ?? '');
  return match ? Number(match[1]) : undefined;
}

/** The whole file's size as the server states it: Content-Range's total when resuming, else Content-Length. */
function announcedTotal(response: http.IncomingMessage, offset: number): number | undefined {
  if (response.statusCode === 206) {
    const match = /\/(\d+)$/.exec(response.headers['content-range'] ?? '');
    if (match) return Number(match[1]);
  }
  const length = response.headers['content-length'];
  return length === undefined ? undefined : offset + Number(length);
}

interface Digest {
  algorithm: 'sha256' | 'sha1';
  expected: string;
  hash: Hash;
}

function newDigests(request: DownloadRequest): Digest[] {
  const digests: Digest[] = [];
  if (request.sha256) digests.push({ algorithm: 'sha256', expected: request.sha256.toLowerCase(), hash: createHash('sha256') });
  if (request.sha1) digests.push({ algorithm: 'sha1', expected: request.sha1.toLowerCase(), hash: createHash('sha1') });
  return digests;
}

/** Finalises the digests; the first that differs, described, or undefined when all match. */
function digestMismatch(digests: Digest[]): string | undefined {
  for (const d of digests) {
    const actual = d.hash.digest('hex');
    if (actual !== d.expected) return `${d.algorithm} ${actual}, expected ${d.expected}`;
  }
  return undefined;
}

function digestsMatch(digests: Digest[]): boolean {
  return digestMismatch(digests) === undefined;
}

async function hashFile(file: string, digests: Digest[]): Promise<void> {
  if (digests.length === 0) return;
  for await (const chunk of fs.createReadStream(file)) for (const d of digests) d.hash.update(chunk as Buffer);
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

async function removePartial(request: DownloadRequest): Promise<void> {
  await rm(partialPath(request.dest), { force: true });
}

/** fsync, then rename: after a crash `dest` holds either nothing or the whole verified file. */
async function moveIntoPlace(partial: string, dest: string): Promise<void> {
  const handle = await open(partial, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(partial, dest);
}

function manualHint(request: DownloadRequest): string {
  return ` To install it by hand, download ${request.url} on a machine with network access and save it as ${request.dest}, or point KOL_MODEL (or --model) at a ggml model file you already have.`;
}

function unreachable(request: DownloadRequest, cause: unknown): KolError {
  const reason = describe(cause);
  const kept = fileSize(partialPath(request.dest));
  const resume = kept > 0 ? ` The ${kept} bytes received so far are kept in ${partialPath(request.dest)}; running again resumes from there.` : '';
  return new KolError('model_download_failed', `Could not download ${request.url}: ${reason}.${resume}${manualHint(request)}`, { cause });
}

/** A network error in words; Node's connection errors can be an AggregateError with an empty message. */
function describe(cause: unknown): string {
  if (cause instanceof AggregateError && cause.errors.length > 0) return [...new Set(cause.errors.map(describe))].join('; ');
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as NodeJS.ErrnoException).code;
  return cause.message || code || cause.name;
}

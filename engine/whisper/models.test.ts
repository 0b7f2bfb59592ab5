import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { startFileServer, type FileServer } from '../../test/helpers/file-server.js';
import { isKolError } from '../errors.js';
import { partialPath } from './download.js';
import { cachedModelPath, cacheState, defaultModelName, MODELS, modelsDir, pullModel, requireModel, resolveModel, type ModelEntry } from './models.js';

let cache: string;
const savedCacheDir = process.env.KOL_CACHE_DIR;

beforeEach(() => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-models-'));
  process.env.KOL_CACHE_DIR = cache;
});
afterEach(() => {
  if (savedCacheDir === undefined) delete process.env.KOL_CACHE_DIR;
  else process.env.KOL_CACHE_DIR = savedCacheDir;
  fs.rmSync(cache, { recursive: true, force: true });
});

/** A cached model file of the published size (sparse: no gigabytes are written). */
function placeInCache(entry: ModelEntry, bytes = entry.sizeBytes ?? 1): string {
  const file = cachedModelPath(entry);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, bytes);
  return file;
}

describe('the model registry', () => {
  it('has unique names and file names, https URLs, published sizes and well-formed digests', () => {
    assert.equal(new Set(MODELS.map((m) => m.name)).size, MODELS.length);
    assert.equal(new Set(MODELS.map((m) => m.fileName)).size, MODELS.length);
    for (const m of MODELS) {
      assert.match(m.url, /^https:\/\/huggingface\.co\//, m.name);
      assert.ok(Number.isInteger(m.sizeBytes) && m.sizeBytes! > 10_000_000, `${m.name} size`);
      if (m.sha256 !== undefined) assert.match(m.sha256, /^[0-9a-f]{64}$/, m.name);
      if (m.sha1 !== undefined) assert.match(m.sha1, /^[0-9a-f]{40}$/, m.name);
    }
    for (const name of ['ivrit-turbo', 'large-v3-turbo', 'large-v3-turbo-q5_0', 'large-v3-turbo-q8_0', 'small', 'small-q8_0', 'base', 'base-q8_0', 'tiny']) {
      assert.ok(requireModel(name), name);
    }
  });

  it('defaults to the Hebrew turbo with a GPU and to base-q8_0 without', () => {
    assert.equal(defaultModelName({ gpu: true }), 'ivrit-turbo');
    assert.equal(requireModel('ivrit-turbo').url, 'https://huggingface.co/ivrit-ai/whisper-large-v3-turbo-ggml/resolve/2130c78e4a9cb4914cc4df91a1c3031407789705/ggml-model.bin');
    assert.equal(defaultModelName({ gpu: false }), 'base-q8_0');
  });

  it('keeps models under <KOL_CACHE_DIR>/models', () => {
    assert.equal(modelsDir(), path.join(cache, 'models'));
    assert.equal(cachedModelPath(requireModel('small')), path.join(cache, 'models', 'ggml-small.bin'));
  });
});

describe('resolveModel', () => {
  it('uses an existing file as it is, relative paths made absolute', async () => {
    const file = path.join(cache, 'my model.bin');
    fs.writeFileSync(file, 'ggml');
    assert.equal(await resolveModel(file), file);
    assert.equal(await resolveModel(path.relative(process.cwd(), file)), file);
  });

  it('names a path that does not exist', async () => {
    const missing = path.join(cache, 'nowhere', 'ggml-large.bin');
    await assert.rejects(resolveModel(missing), (err) => isKolError(err, 'model_not_found') && err.message.includes(missing));
    await assert.rejects(resolveModel('./ggml-nothing-here.bin'), (err) => isKolError(err, 'model_not_found') && err.message.includes(path.resolve('ggml-nothing-here.bin')));
  });

  it('refuses a directory', async () => {
    await assert.rejects(resolveModel(cache), (err) => isKolError(err, 'model_not_found') && err.message.includes('directory'));
  });

  it('lists the known names for an unknown one', async () => {
    await assert.rejects(resolveModel('large-v9'), (err) => {
      assert.ok(isKolError(err, 'model_unknown'));
      for (const m of MODELS) assert.ok(err.message.includes(m.name), `${m.name} listed`);
      return true;
    });
  });

  it('finds a known model already in the cache without downloading it', async () => {
    const entry = requireModel('tiny');
    const file = placeInCache(entry);
    let progressCalls = 0;
    assert.equal(await resolveModel('tiny', { allowDownload: true, onProgress: () => progressCalls++ }), file);
    assert.equal(await resolveModel('tiny'), file);
    assert.equal(progressCalls, 0);
  });

  it('says how to get a known model that is not downloaded, when downloads are off', async () => {
    await assert.rejects(
      resolveModel('small'),
      (err) => isKolError(err, 'model_not_found') && err.message.includes(cachedModelPath(requireModel('small'))) && err.message.includes('kol models pull small'),
    );
  });

  it('refuses a cached file of the wrong size', async () => {
    const file = placeInCache(requireModel('base'), 1234);
    await assert.rejects(resolveModel('base'), (err) => isKolError(err, 'model_checksum_mismatch') && err.message.includes(file));
  });
});

describe('pullModel', () => {
  let server: FileServer;
  before(async () => {
    server = await startFileServer(2 * 1024 * 1024);
  });
  after(async () => {
    await server.close();
  });

  function testEntry(): ModelEntry {
    return {
      name: 'test-model',
      url: `${server.url}/file`,
      fileName: 'ggml-test.bin',
      sizeBytes: server.payload.length,
      sha256: server.sha256,
      sha1: server.sha1,
      description: 'served from 127.0.0.1',
    };
  }

  it('downloads a model into the cache once, verified', async () => {
    server.requests.length = 0;
    const entry = testEntry();
    assert.equal(cacheState(entry).state, 'missing');
    const file = await pullModel(entry);
    assert.equal(file, path.join(cache, 'models', 'ggml-test.bin'));
    assert.equal(createHash('sha256').update(fs.readFileSync(file)).digest('hex'), server.sha256);
    assert.deepEqual(cacheState(entry), { state: 'cached', path: file });
    assert.equal(await pullModel(entry), file);
    assert.equal(server.requests.length, 1);
  });

  it('fetches <mirror>/<file name> from a mirror instead of the published URL', async () => {
    server.requests.length = 0;
    const file = await pullModel({ ...testEntry(), url: 'https://huggingface.co/unreachable-from-tests.bin' }, { mirrorBaseUrl: `${server.url}/mirror/` });
    assert.deepEqual(server.requests.map((r) => r.path), ['/mirror/ggml-test.bin']);
    assert.equal(fs.statSync(file).size, server.payload.length);
  });

  it('reports a partial download in the cache state', () => {
    const entry = testEntry();
    fs.mkdirSync(modelsDir(), { recursive: true });
    fs.writeFileSync(partialPath(cachedModelPath(entry)), server.payload.subarray(0, 1000));
    assert.deepEqual(cacheState(entry), { state: 'missing', path: cachedModelPath(entry), partialBytes: 1000 });
  });
});

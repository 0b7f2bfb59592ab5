/**
 * The configuration as `kol serve` sees it, through the real command line: defaults < config file <
 * environment < flags, shown by `--print-config` with where each value came from (keys masked), and
 * bad values refused at start with every one of them named.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cleanEnv, KolProcess } from '../../test/helpers/production.js';
import { configuredModel } from '../config.js';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kol-config-'));
}

test('--print-config merges file < environment < flags and says where each value came from', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'kol.config.json');
    fs.writeFileSync(file, JSON.stringify({ maxSessions: 50, port: 9001, workers: 4, allowedOrigins: ['https://a.example'] }));
    const keys = path.join(dir, 'keys.txt');
    fs.writeFileSync(keys, '# viewers\nviewer-secret-1:view\n\nfile-key-abcdefgh  # comment\n');
    const kol = new KolProcess(
      ['serve', '--print-config', '--config', file, '--workers', '3', '--worker-url', 'http://gpu-a:8910', '--worker-url', 'http://gpu-b:8910'],
      cleanEnv({ KOL_PORT: '9100', KOL_API_KEYS: 'env-key-12345678,env-pub-key-1:publish', KOL_API_KEYS_FILE: keys, KOL_GPU: 'on', KOL_GPU_FALLBACK: 'refuse', REDIS_URL: 'redis://:redis-pass-word@r:6379' }),
    );
    const exit = await kol.exited;
    assert.equal(exit.code, 0, kol.lines.join('\n'));
    const { config, origin } = JSON.parse(kol.stdout) as { config: Record<string, unknown>; origin: Record<string, string> };
    assert.equal(config.maxSessions, 50);
    assert.equal(origin.maxSessions, `file ${file}`);
    assert.equal(config.port, 9100, 'the environment beats the file');
    assert.equal(origin.port, 'env KOL_PORT');
    assert.equal(config.workers, 3, 'a flag beats the file');
    assert.equal(origin.workers, 'flag');
    assert.deepEqual(config.workerUrls, ['http://gpu-a:8910', 'http://gpu-b:8910']);
    assert.equal(config.gpu, 'on');
    assert.equal(config.gpuFallback, 'refuse');
    assert.equal(config.redisUrl, 'redis://:***@r:6379', 'the Redis password is not shown');
    assert.equal(config.maxFrameBytes, 256 * 1024, 'a default');
    assert.equal(origin.maxFrameBytes, undefined);
    // Keys from the environment and the keys file, shown masked only (at most a quarter, with the scope).
    assert.deepEqual(config.apiKeys, ['env-…', 'env…:publish', 'vie…:view', 'file…']);
    assert.ok(!kol.stdout.includes('12345678') && !kol.stdout.includes('abcdefgh') && !kol.stdout.includes('secret') && !kol.stdout.includes('pass-word'), 'no key or password is printed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a short or malformed key is refused at start, named by position; no key is ever printed beyond a short prefix', async () => {
  const dir = tempDir();
  try {
    const keys = path.join(dir, 'keys.txt');
    // 7 characters and a ":view" suffix: 12 in all, but the secret alone is too short.
    fs.writeFileSync(keys, 'Qz7Xw3v:view\nfile-good-key-9R4tW1\n');
    const good = 'env-good-key-7Hq2Zp';
    for (const args of [['serve', '--print-config'], ['serve']]) {
      const kol = new KolProcess(args, cleanEnv({ KOL_API_KEYS: `${good},Zq:publish,Kp4Vw,with:colon-key-123`, KOL_API_KEYS_FILE: keys }));
      const exit = await kol.exited;
      assert.equal(exit.code, 1, `${args.join(' ')} refuses to start`);
      const output = `${kol.stdout}\n${kol.lines.join('\n')}`;
      assert.match(output, /invalid_config/);
      assert.match(output, /apiKeys \(env KOL_API_KEYS, KOL_API_KEYS\): key 2 \(…\) is 2 character\(s\) long; a key needs at least 8/);
      assert.match(output, /key 3 \(K…\) is 5 character\(s\) long/);
      assert.match(output, /key 4 \(with…\) holds a space, comma or ":"/);
      assert.match(output, /apiKeysFile .*keys\.txt: key 1 \(Q…\) is 7 character\(s\) long/);
      // Not one key, good or bad, beyond its first quarter.
      for (const secret of [good, 'Zq', 'Kp4Vw', 'with:colon-key-123', 'Qz7Xw3v', 'file-good-key-9R4tW1']) {
        const tooMuch = secret.slice(0, Math.max(2, Math.floor(secret.length / 4) + 1));
        assert.ok(!output.includes(tooMuch), `${args.join(' ')}: "${tooMuch}" (more than a quarter of a key) is not printed:\n${output}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad values are refused at start, every one named with where it came from', async () => {
  const dir = tempDir();
  try {
    const file = path.join(dir, 'kol.config.json');
    fs.writeFileSync(file, JSON.stringify({ gpu: 'maybe', maxSesions: 10 }));
    const kol = new KolProcess(['serve', '--config', file, '--workers', '-1'], cleanEnv({ KOL_PORT: 'eighty', KOL_MAX_FRAME_BYTES: '10', KOL_WORKER_URLS: 'not a url' }));
    const exit = await kol.exited;
    assert.equal(exit.code, 1);
    const stderr = kol.lines.join('\n');
    assert.match(stderr, /kol: error \[invalid_config\]/);
    for (const expected of [/port \(env KOL_PORT, KOL_PORT\)/, /maxFrameBytes \(env KOL_MAX_FRAME_BYTES/, /gpu \(file .*kol\.config\.json, KOL_GPU\)/, /workers \(flag, KOL_WORKERS\)/, /workerUrls \(env KOL_WORKER_URLS/, /unknown setting\(s\) maxSesions/]) {
      assert.match(stderr, expected);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kol worker refuses a bad port before building anything', async () => {
  const kol = new KolProcess(['worker', '--port', '99999'], cleanEnv({}));
  const exit = await kol.exited;
  assert.equal(exit.code, 1);
  assert.match(kol.lines.join('\n'), /invalid_config.*port must be 1–65535/);
});

test('outside serve the model is the --model flag, else KOL_MODEL; empty means the host default', () => {
  assert.equal(configuredModel('small', { KOL_MODEL: 'tiny' }), 'small');
  assert.equal(configuredModel(undefined, { KOL_MODEL: 'tiny' }), 'tiny');
  assert.equal(configuredModel(undefined, { KOL_MODEL: '' }), '');
  assert.equal(configuredModel(undefined, {}), '');
});

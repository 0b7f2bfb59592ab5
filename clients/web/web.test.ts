/**
 * The browser clients in a real browser: Debian's Chromium driven by playwright-core, its fake
 * microphone playing a shared Hebrew clip, against a real server with real whisper workers.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { decodeAudioFile, encodeWav16k } from '../../engine/audio/wav.js';
import { normalizeText, wordErrorRate } from '../../engine/wer.js';
import { assetPath, haveAssets, REAL_MODEL } from '../../test/helpers/assets.js';
import { ARTIFACTS_DIR, haveChromium, launchChromium } from '../../test/helpers/browser.js';
import { alphaAt, decodePng } from '../../test/helpers/png.js';
import { startTestServer } from '../../test/helpers/server.js';
import { kolTranscribe } from '../../test/helpers/transcribe.js';

const CLIP = assetPath('audio', 'he', 'Hashlama112_0024.wav');
const REFERENCE = assetPath('audio', 'he', 'Hashlama112_0024.txt');
/** Silence around the clip, longer than the server's 500 ms endpoint: one pass of the loop is one utterance. */
const PAD_SECONDS = 1.5;

test('the microphone page transcribes a spoken clip as well as `kol transcribe`, and the overlay shows it live', { timeout: 120_000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL, CLIP, REFERENCE)) return;
  if (!haveChromium(t)) return;
  const reference = fs.readFileSync(REFERENCE, 'utf8').trim();

  // Chromium's fake microphone loops its file. With silence either side of the clip, a pass of
  // the loop is one utterance wherever in the file the capture happens to begin, and the page
  // (stop_after) stops after exactly one pass: the page hears the clip once, as `kol transcribe` does.
  const clip = await decodeAudioFile(CLIP);
  const pad = new Float32Array(Math.round(PAD_SECONDS * 16000));
  const fakeMic = new Float32Array(pad.length * 2 + clip.pcm.length);
  fakeMic.set(clip.pcm, pad.length);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-web-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const fakeMicWav = path.join(tmp, 'fake-mic.wav');
  fs.writeFileSync(fakeMicWav, encodeWav16k(fakeMic));
  const onePass = fakeMic.length / 16000;

  const server = await startTestServer();
  t.after(() => server.close());
  const http = `http://127.0.0.1:${server.port}`;
  // `kol transcribe` on the same clip, meanwhile (its own process: see kolTranscribe).
  const baseline = kolTranscribe(CLIP);
  baseline.catch(() => {});

  const browser = await launchChromium({ fakeAudioWav: fakeMicWav });
  t.after(() => browser.close());
  const room = `web-test-${process.pid}`;

  const overlay = await browser.context.newPage();
  await overlay.setViewportSize({ width: 1280, height: 720 });
  collectErrors(overlay, 'overlay');
  await overlay.goto(`${http}/overlay?room=${room}&fade=0&lines=2`);
  // A room nobody publishes to says so.
  await overlay.waitForSelector('#status:not([hidden])');
  assert.match(await overlay.textContent('#status') ?? '', /No one is publishing/);

  const mic = await browser.context.newPage();
  const micErrors = collectErrors(mic, 'mic page');
  await mic.goto(`${http}/?room=${room}&language=he&stop_after=${onePass.toFixed(3)}`);
  assert.equal(await mic.getAttribute('#transcript', 'dir'), 'rtl');
  await mic.click('#toggle');
  await mic.waitForSelector('html[data-phase="running"]');
  await mic.waitForSelector('#status[data-state="live"]', { timeout: 15_000 });
  // While it runs, the overlay follows: the publisher is announced and the status goes.
  await overlay.waitForSelector('html[data-publishers="1"]', { timeout: 10_000 });

  await mic.waitForSelector('html[data-phase="idle"]', { timeout: 60_000 });
  const finals = await mic.$$eval('#transcript .segment.final', (rows) =>
    rows.map((row) => ({ text: row.querySelector('.text')?.textContent ?? '', start: Number((row as HTMLElement).dataset.start), latency: row.querySelector('.latency')?.textContent ?? '' })),
  );
  assert.ok(finals.length > 0, 'the page showed no final');
  for (const final of finals) assert.match(final.latency, /^\d+\.\d\d s$/, 'each segment shows its latency');
  const pageText = finals.map((f) => f.text).join(' ');
  const baselineText = await baseline;
  const pageWer = wordErrorRate(reference, pageText).wer;
  const cliWer = wordErrorRate(reference, baselineText).wer;
  t.diagnostic(`page (${finals.length} final(s)): WER ${pageWer.toFixed(3)}  "${pageText}"`);
  t.diagnostic(`kol transcribe:  WER ${cliWer.toFixed(3)}  "${baselineText}"`);
  assert.ok(pageWer <= cliWer + 0.05, `the page's WER ${pageWer.toFixed(3)} is more than 0.05 above kol transcribe's ${cliWer.toFixed(3)}`);
  assert.deepEqual(micErrors, []);

  // The overlay shows the same words (its last lines: the last final at least).
  const lastFinal = normalizeText(finals[finals.length - 1].text);
  await overlay.waitForFunction((expected) => {
    const shown = (document.getElementById('captions')?.textContent ?? '').replace(/[\p{P}\p{S}]/gu, ' ').replace(/\s+/g, ' ');
    return expected.split(' ').every((word: string) => shown.includes(word));
  }, lastFinal);
  // The publisher left: the overlay says so again, and keeps the captions.
  await overlay.waitForSelector('html[data-publishers="0"]');

  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const micShot = path.join(ARTIFACTS_DIR, 'web-mic-page.png');
  const overlayShot = path.join(ARTIFACTS_DIR, 'web-overlay.png');
  await mic.screenshot({ path: micShot });
  const png = await overlay.screenshot({ path: overlayShot, omitBackground: true });
  t.diagnostic(`screenshots: ${micShot}, ${overlayShot}`);

  // Transparent for OBS: nothing is painted behind the captions, in the styles and in the pixels.
  const backgrounds = await overlay.evaluate(() => [getComputedStyle(document.documentElement).backgroundColor, getComputedStyle(document.body).backgroundColor]);
  assert.deepEqual(backgrounds, ['rgba(0, 0, 0, 0)', 'rgba(0, 0, 0, 0)']);
  const image = decodePng(png);
  for (const [x, y] of [[0, 0], [image.width - 1, 0], [0, image.height - 1], [image.width - 1, image.height - 1], [image.width >> 1, 10]]) {
    assert.equal(alphaAt(image, x, y), 0, `pixel ${x},${y} of the overlay is not transparent`);
  }
  let opaque = 0;
  for (let i = 3; i < image.rgba.length; i += 4) if (image.rgba[i] === 255) opaque++;
  assert.ok(opaque > 2000, `the overlay's captions were not drawn (${opaque} opaque pixels)`);
});

test('the overlay without a room explains how to use it', { timeout: 60_000 }, async (t) => {
  if (!haveChromium(t)) return;
  const server = await startTestServer({ workers: 1 });
  t.after(() => server.close());
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.context.newPage();
  const errors = collectErrors(page, 'overlay');
  await page.goto(`http://127.0.0.1:${server.port}/overlay`);
  assert.equal(await page.isVisible('#help'), true);
  assert.equal(await page.isVisible('#stage'), false);
  assert.match((await page.textContent('#help')) ?? '', /overlay\?room=NAME/);
  await page.goto(`http://127.0.0.1:${server.port}/overlay?room=bad%20name`);
  assert.match((await page.textContent('#help')) ?? '', /"bad name" is not a room name/);
  assert.deepEqual(errors, []);
});

/** Page errors and console errors, which a working page has none of. */
function collectErrors(page: Page, label: string): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`${label}: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${label} console: ${message.text()}`);
  });
  return errors;
}

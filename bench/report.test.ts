/** The bench's pure parts: argument parsing, profile attribution, the report and the plots. No servers, no models. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { attribute, categorize } from './capacity/probe.js';
import { machineInfo } from './lib/machine.js';
import { processTree } from './lib/proc.js';
import { dist } from './lib/stats.js';
import { cdfChart, lineChart } from './lib/svg.js';
import type { LatencyResult } from './lib/result.js';
import { parseArgs, renderMarkdown, renderPlots, shapeRows, type BenchReport } from './run.js';
import { shapeStats } from './shapes.js';
import type { BenchStream } from '../corpus/streams.js';
import type { StreamRun } from './stream-run.js';

function result(system: string, concurrency: number, p50: number, wer: number): LatencyResult {
  const d = dist([p50, p50 * 1.5]);
  return {
    system, variant: 'x', concurrency, utterances: 2, unfinalized: 0, eosToFinal: d, eosToFinalMs: [p50, p50 * 1.5], segEndToFinal: d, firstText: d, firstPartial: d,
    partialGapS: dist([0.5]), partials: 3, wer, audioSeconds: 10, wallS: 11, serverCores: 0.1, workerCores: 1, cpuSecondsPerAudioSecond: 1.1, serverRssMB: 100,
    workerRssMB: 200, busyFraction: 0.5, finalQueueWait: d, partialsDropped: 0, loadBefore: '1.00/2', loadAfter: '1.00/2', foreignCores: 0.1, gpu: null, notes: [],
  };
}

test('parseArgs: an unknown argument is refused with the usage, not run for tens of minutes', () => {
  assert.throws(() => parseArgs(['--quik']), /unknown argument "--quik"[\s\S]*kol bench \[--quick\]/);
  assert.throws(() => parseArgs(['--streams', '1', 'extra']), /unknown argument "extra"/);
  assert.doesNotThrow(() => parseArgs(['--quick', '--streams', '1,4', '--skip', 'peers', '--gpu']));
});

test('parseArgs: quick defaults and explicit options', () => {
  const quick = parseArgs(['--quick']);
  assert.deepEqual(quick.concurrency, [1, 4]);
  assert.equal(quick.quick, true);
  const full = parseArgs(['--streams', '1,2', '--workers', '3', '--skip', 'peers,capacity']);
  assert.deepEqual(full.concurrency, [1, 2]);
  assert.equal(full.workers, 3);
  assert.ok(full.skip.has('peers') && full.skip.has('capacity'));
});

test('categorize: transport, VAD and the rest', () => {
  assert.match(categorize('receiverOnData', 'file:///x/node_modules/ws/lib/receiver.js'), /^transport: ws/);
  assert.match(categorize('onStreamRead', 'node:internal/stream_base_commons'), /^transport: node/);
  assert.match(categorize('run', 'file:///x/node_modules/onnxruntime-node/dist/backend.js'), /onnxruntime/);
  assert.equal(categorize('(idle)', ''), 'idle');
});

test('attribute: self time per category from a .cpuprofile', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'prof-')), 'p.cpuprofile');
  fs.writeFileSync(
    file,
    JSON.stringify({
      nodes: [
        { id: 1, callFrame: { functionName: '(idle)', url: '' } },
        { id: 2, callFrame: { functionName: 'receiverOnData', url: 'file:///r/node_modules/ws/lib/receiver.js' } },
        { id: 3, callFrame: { functionName: 'run', url: 'file:///r/node_modules/onnxruntime-node/dist/backend.js' } },
      ],
      samples: [1, 2, 3, 3, 3],
      timeDeltas: [1000, 1000, 1000, 1000, 1000],
      startTime: 0,
      endTime: 5000,
    }),
  );
  const r = attribute(file);
  assert.equal(r.busyMs, 4);
  assert.equal(r.transportShare, 0.25);
  assert.equal(r.shares[0].category, 'VAD: onnxruntime session.run');
});

test('the report: ratios against each baseline, and well-formed SVG plots', () => {
  const report: BenchReport = {
    mode: 'quick', machine: machineInfo(), command: 'npm run bench -- --quick', model: 'm.bin', streamSeconds: 30, clips: ['a', 'b'], startedLoad: '1.00',
    offline: { clips: 2, audioSeconds: 10, wer: 0.3, perClip: [], inference: dist([1000]), rtf: 0.2, cpuSecondsPerAudioSecond: 0.4, wallS: 5, command: 'kol transcribe', loadBefore: '1', loadAfter: '1', foreignCores: 0 },
    offlineJoined: {}, shapes: [],
    sweep: [result('kol', 1, 800, 0.33), result('kol', 4, 1600, 0.33)], variants: [], naive: [result('naive', 1, 4000, 0.36)], peers: [result('WhisperLive', 1, 3200, 0.4)],
    capacity: [{ mode: 'batched', capacity: 1000, holdS: 5, steps: [] }], transportOnly: null, profile: null, decode: null, notes: [], minutes: 3,
  };
  const md = renderMarkdown(report);
  assert.match(md, /WER, kol streaming \(1 stream\) \/ offline whole clips \| 0\.330 \/ 0\.300 \| 1\.10×/);
  assert.match(md, /kol \/ naive 5 s chunks \(1 stream\) \| 0\.80 \/ 4\.00 s \| 0\.20×/);
  assert.match(md, /kol \/ WhisperLive \(1 stream\) \| 0\.80 \/ 3\.20 s \| 0\.25×/);
  const plots = renderPlots(report);
  assert.ok(plots['latency-vs-concurrency.svg'].startsWith('<svg') && plots['latency-vs-concurrency.svg'].includes('<path'));
  assert.ok(plots['latency-cdf.svg'].includes('WhisperLive'));
  assert.ok(lineChart([], { title: 't', xLabel: 'x', yLabel: 'y' }).endsWith('</svg>'));
  assert.ok(cdfChart([{ name: 'a', values: [1, 2, 3] }], { title: 't', xLabel: 'x', yLabel: 'y' }).includes('<path'));
});

test('processTree finds this process', () => {
  assert.ok(processTree(process.pid).some((p) => p.pid === process.pid && p.cpuSeconds >= 0));
});

test('the shapes table: continuous speech first, streamed − offline on the same files, cut reasons and degraded finals counted', () => {
  const stream: BenchStream = { pcm16: new Int16Array(0), seconds: 12, speechSeconds: 10, utterances: [
    { name: 'a', reference: 'אחת שתיים שלוש', start: 0.5, end: 4 },
    { name: 'b', reference: 'ארבע חמש שש', start: 4.25, end: 10.75 },
  ] };
  const final = (start: number, end: number, reason: 'silence' | 'max_length' | 'eof', degraded: boolean) => ({ start, end, reason, latencyMs: 900, inferenceMs: 700, queueMs: 100, degraded });
  const run: StreamRun = {
    finals: [
      { utterance: 'a', endOfSpeechToFinalMs: 1200, serverLatencyMs: 1100, segmentEndToFinalMs: 800, inferenceMs: 700, queueMs: 100 },
      { utterance: 'b', endOfSpeechToFinalMs: 2400, serverLatencyMs: 2300, segmentEndToFinalMs: 2000, inferenceMs: 900, queueMs: 1500 },
    ],
    segments: [final(0.5, 8.5, 'max_length', false), final(8.5, 10.75, 'eof', true)],
    firstPartialMs: [600], partialGapsS: [0.5], firstTextMs: [700], unfinalized: 0, wer: 0.4, hypothesis: '', partials: 8,
  };
  const speech = shapeStats([stream], [run]);
  assert.deepEqual(speech.reasons, { silence: 0, max_length: 1, flush: 0, eof: 1 });
  assert.equal(speech.degraded, 1);
  assert.equal(speech.eosSource, 'client');
  assert.equal(speech.eosToFinal.max, 2400);
  // Without a transcript the wait is the server's own latency_ms of every final.
  const recording = shapeStats([{ ...stream, utterances: [] }], [{ ...run, finals: [] }]);
  assert.equal(recording.eosSource, 'server');
  assert.equal(recording.eosToFinal.n, 2);

  const kol = (shape: 'continuous' | 'paused' | 'asimov', n: number, wer: number) => ({ ...result('kol', n, 1000, wer), shape, speech: shape === 'asimov' ? recording : speech });
  const offline = (wer: number) => ({ clips: 1, audioSeconds: 12, wer, perClip: [{ reference: 'אחת שתיים שלוש ארבע', hypothesis: wer > 0.2 ? 'אחת שתיים' : 'אחת שתיים שלוש ארבע' }], inference: dist([1000]), rtf: 0.2, cpuSecondsPerAudioSecond: 0.4, wallS: 5, command: 'kol transcribe', loadBefore: '1', loadAfter: '1', foreignCores: 0 });
  const report: BenchReport = {
    mode: 'full', machine: machineInfo(), command: 'npm run bench', model: 'm.bin', streamSeconds: 30, clips: ['a', 'b'], startedLoad: '1.00', offline: null,
    offlineJoined: { continuous: offline(0.5), paused: offline(0) },
    shapes: [kol('continuous', 1, 0.6), kol('continuous', 4, 0.7), kol('asimov', 1, NaN)],
    sweep: [kol('paused', 1, 0.1), kol('paused', 2, 0.1), kol('paused', 4, 0.2)], variants: [], naive: [], peers: [], capacity: [], transportOnly: null, profile: null, decode: null, notes: [], minutes: 30,
  };
  const rows = shapeRows(report);
  assert.deepEqual(rows.map((x) => `${x.shape} ${x.speakers}`), ['continuous 1', 'continuous 4', 'paused 1', 'paused 4', 'asimov 1']);
  // The offline WER is that of the transcribed file (2 of 4 reference words missed), not the stored total.
  assert.equal(rows[0].offline?.wer, 0.5);
  const md = renderMarkdown(report);
  const table = md.slice(md.indexOf('## Shapes of speech'));
  assert.match(table, /\| continuous \| 1 \| 2 \(2\/2\) \| 1\.20 \| 2\.40 \| 2\.40 \| 0\.70 \/ 0\.70 \| 0\.10 \| 2\.3 \/ 2\.3 \/ 8\.0 \/ 8\.0 \| 0 \/ 1 \/ 0 \/ 1 \| 1 \| 0\.80 \| 0\.60 \| 0\.600 \| 0\.500 \| \+0\.100 \(1\.20×\) \|/);
  assert.match(table, /\| continuous \| 4 \|.*\| 0\.500 \(1 of 4 files\) \|/);
  assert.match(table, /\| asimov \| 1 \| 2 \| 0\.90 ¹ \|.*\| – \| – \| – \|\n\n¹ No transcript/);
  const continuousHeadline = md.indexOf('| WER, continuous speech streamed (1 speaker) / offline, same joined file | 0.600 / 0.500 | 1.20× |');
  assert.ok(continuousHeadline > 0 && continuousHeadline < md.indexOf('| WER, paused speech streamed (1 speaker)'));
});

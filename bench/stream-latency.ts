/**
 * Streaming latency on this machine: N concurrent clients each play the Hebrew clips joined with
 * known pauses, at real-time pace, to a real `kol serve` (in process) with real workers. As in the
 * full bench, client i hears the clips rotated by i and starts 0.25·i s later: people do not speak
 * in lockstep.
 *   node --import tsx bench/stream-latency.ts [--streams 1,4] [--workers 2] [--threads 0]
 *     [--final-audio-ctx full|auto|FRAMES] [--partials on|off]
 * Defaults are the server's own (threads 0 = every core for each worker).
 * Prints one table row per concurrency: end of speech → final p50/p95/max, the finals' inference and
 * queueing (the server's figures), first partial, partial cadence, WER.
 */
import os from 'node:os';
import { startServer } from '../server/app.js';
import { DEFAULT_CONFIG } from '../server/config.js';
import { clips, REAL_MODEL } from '../test/helpers/assets.js';
import { percentile, rotatedBenchStreams, runStaggered } from './streams.js';

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const concurrencies = arg('streams', '1,4').split(',').map(Number);
const workers = Number(arg('workers', String(DEFAULT_CONFIG.workers)));
const threads = Number(arg('threads', String(DEFAULT_CONFIG.threads)));
const ctxArg = arg('final-audio-ctx', String(DEFAULT_CONFIG.finalAudioCtx));
const finalAudioCtx = ctxArg === 'full' || ctxArg === 'auto' ? ctxArg : Number(ctxArg);
const partials = arg('partials', 'on') === 'on';
// Admission would refuse the streams this bench adds on purpose: capacity up to the session limit.
const server = await startServer({ ...DEFAULT_CONFIG, port: 0, model: REAL_MODEL, workers, threads, finalAudioCtx, partials, gpu: 'off', logLevel: 'warn', capacity: DEFAULT_CONFIG.maxSessions });
const streams = await rotatedBenchStreams(clips('he'), Math.max(...concurrencies));

const rows: string[] = [];
for (const n of concurrencies) {
  const runs = await runStaggered(`${server.url}/v1/stream`, streams.slice(0, n));
  const latencies = runs.flatMap((r) => r.finals.map((f) => f.endOfSpeechToFinalMs));
  const inference = runs.flatMap((r) => r.finals.map((f) => f.inferenceMs));
  const queue = runs.flatMap((r) => r.finals.map((f) => f.queueMs));
  const firstPartial = runs.flatMap((r) => r.firstPartialMs);
  const gaps = runs.flatMap((r) => r.partialGapsS);
  const wer = runs.reduce((sum, r) => sum + r.wer, 0) / runs.length;
  const f = (ms: number) => (ms / 1000).toFixed(2);
  rows.push(
    `| ${n} | ${latencies.length} | ${f(percentile(latencies, 50))} | ${f(percentile(latencies, 95))} | ${f(Math.max(...latencies))} | ${f(percentile(inference, 50))} / ${f(percentile(inference, 95))} | ${f(percentile(queue, 95))} | ${f(percentile(firstPartial, 50))} | ${percentile(gaps, 50).toFixed(2)} / ${percentile(gaps, 95).toFixed(2)} | ${runs.reduce((s, r) => s + r.partials, 0)} | ${wer.toFixed(3)} |`,
  );
}
await server.close();

console.log(`\n${streams[0].seconds.toFixed(0)} s Hebrew stream per client (clips rotated, starts 0.25 s apart), ${workers} workers × ${threads || 'all'} threads, finals audio_ctx ${finalAudioCtx}, partials ${partials ? 'on' : 'off'}, base q8_0, ${os.cpus().length} cores (${os.cpus()[0].model})\n`);
console.log('| streams | finals | end of speech → final p50 (s) | p95 (s) | max (s) | final inference p50 / p95 (s) | final queueing p95 (s) | first partial p50 (s) | partial gap p50 / p95 (s of audio) | partials | WER |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
console.log(rows.join('\n'));

/**
 * Streaming latency and accuracy on this machine, per shape of speech: N concurrent clients play the
 * same shape at real-time pace to a real `kol serve` (bench/server-proc.ts, its own process) with real
 * workers. As in the full bench, client i hears the clips rotated by i (the recording: rotated to a
 * quiet point i/N of the way in) and starts 0.25·i s later: people do not speak in lockstep.
 *   node --import tsx bench/stream-latency.ts [--shape continuous,paused,asimov] [--streams 1,4]
 *     [--workers 2] [--threads 0] [--final-audio-ctx full|auto|FRAMES] [--partials on|off]
 *     [--clips N] [--seconds N] [--offline on|off] [--prompt-previous on|off] [--degrade on|off]
 * Defaults are the server's own (threads 0 = every core for each worker). --clips keeps the first N
 * Hebrew clips, --seconds the first N s of asimov.wav (short checks); --offline off skips the offline
 * baseline. Prints one table row per shape × concurrency (bench/shapes.ts); for the joined shapes,
 * WER of `kol transcribe` on the same joined files, measured first in the same run.
 */
import path from 'node:path';
import { defaultThreads } from '../engine/whisper/local-workers.js';
import { DEFAULT_CONFIG } from '../server/config.js';
import { clips, REAL_MODEL } from '../corpus/assets.js';
import { offlineWerOf, runOfflineJoined, type OfflineResult } from './baselines.js';
import { measureOurs, startOurServer, warmUp } from './latency.js';
import { machineInfo } from './lib/machine.js';
import { shapeRowOf, shapeTable, type ShapeRow } from './shapes.js';
import { SHAPE_AUDIO, shapeStreams, STREAM_SHAPES, type BenchStream, type StreamShape } from '../corpus/streams.js';

const argv = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1] : fallback;
}

const shapes = arg('shape', STREAM_SHAPES.join(',')).split(',') as StreamShape[];
const unknown = shapes.filter((x) => !STREAM_SHAPES.includes(x));
if (unknown.length > 0) throw new Error(`--shape: unknown ${unknown.join(', ')}; use ${STREAM_SHAPES.join(', ')}`);
const concurrencies = arg('streams', '1,4').split(',').map(Number);
const workers = Number(arg('workers', String(DEFAULT_CONFIG.workers)));
const threads = Number(arg('threads', String(DEFAULT_CONFIG.threads)));
const ctxArg = arg('final-audio-ctx', String(DEFAULT_CONFIG.finalAudioCtx));
const finalAudioCtx = ctxArg === 'full' || ctxArg === 'auto' ? ctxArg : Number(ctxArg);
const partials = arg('partials', 'on') === 'on';
const clipLimit = Number(arg('clips', '0'));
const seconds = argv.includes('--seconds') ? Number(arg('seconds', '0')) : undefined;
const offlineOn = arg('offline', 'on') === 'on';
// The previous final as prompt, and degraded finals under load: server settings, for comparison runs.
const promptWithPreviousFinal = arg('prompt-previous', DEFAULT_CONFIG.promptWithPreviousFinal ? 'on' : 'off') === 'on';
const degradeFinals = arg('degrade', DEFAULT_CONFIG.degradeFinals ? 'on' : 'off') === 'on';

const set = clipLimit > 0 ? clips('he').slice(0, clipLimit) : clips('he');
if (set.length === 0) throw new Error('No shared Hebrew clips: set KOL_ASSETS or put ../shared/assets beside the repository.');
const maxN = Math.max(...concurrencies);
const threadsPerWorker = threads || defaultThreads();
const m = machineInfo();
const log = (line: string) => process.stderr.write(`stream-latency [${new Date().toISOString().slice(11, 19)}] ${line}\n`);

const streams = new Map<StreamShape, BenchStream[]>();
for (const shape of shapes) streams.set(shape, await shapeStreams(shape, maxN, { clips: set, seconds }));

// The offline baseline first, before the server's workers exist: each distinct joined file streamed
// (rotations repeat past the number of clips), whole, through the real `kol transcribe`.
const offline = new Map<StreamShape, OfflineResult>();
if (offlineOn) {
  for (const shape of shapes.filter((x) => x !== 'asimov')) {
    const files = streams.get(shape)!.slice(0, Math.min(maxN, set.length));
    log(`offline: kol transcribe on ${files.length} joined ${shape} file(s)`);
    offline.set(shape, await runOfflineJoined(files, shape, { model: REAL_MODEL, threads: threadsPerWorker }));
  }
}

const server = await startOurServer({ model: REAL_MODEL, workers, threads, finalAudioCtx, partials, promptWithPreviousFinal, degradeFinals, gpu: 'off' });
const rows: ShapeRow[] = [];
try {
  await warmUp(server, set[0]);
  for (const shape of shapes) {
    for (const n of concurrencies) {
      log(`${shape}: ${n} concurrent stream(s)`);
      const result = await measureOurs(server, streams.get(shape)!.slice(0, n), { variant: shape, shape });
      const o = offline.get(shape);
      const row = shapeRowOf(result, o ? offlineWerOf(o, n) : null);
      if (row) rows.push(row);
    }
  }
} finally {
  await server.close();
}

const audio = shapes.map((shape) => `${shape}: ${SHAPE_AUDIO[shape]}, ${streams.get(shape)![0].seconds.toFixed(1)} s`).join('; ');
console.log(
  `\n${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; model ${path.basename(REAL_MODEL)}; ${workers} workers × ${threadsPerWorker} threads, finals audio_ctx ${finalAudioCtx}, partials ${partials ? 'on' : 'off'}, previous final as prompt ${promptWithPreviousFinal ? 'on' : 'off'}, degraded finals under load ${degradeFinals ? 'on' : 'off'}; ` +
    `commit ${m.commit}${m.dirty ? ' + uncommitted changes' : ''}; ${m.date}; command: node --import tsx bench/stream-latency.ts ${argv.join(' ')}`,
);
console.log(`Audio per client (clips rotated by client, starts 0.25 s apart): ${audio}.`);
if (offline.size > 0) console.log('Offline: `kol transcribe` (beam 5, full window, one worker) on each joined file as a whole, measured first in this run.');
console.log('Inference, queueing and segment lengths: every final (server figures). Partials per s of speech: partials received / seconds of speech sent.\n');
console.log(shapeTable(rows));
process.exit(0);

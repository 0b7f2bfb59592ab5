/**
 * `kol bench` / `npm run bench`: latency, throughput and accuracy of kol side by side with its
 * baselines (offline whole-clip transcription; naive fixed chunks) and a peer (WhisperLive on the
 * same weights), all in one run on the same audio; plus the gateway's capacity with transcription
 * switched off. Writes a markdown report and SVG plots under bench/results/, raw JSON under
 * bench/results/raw/ (gitignored), and prints the report.
 *
 *   npm run bench -- --quick          reduced sweep, about 5–6 minutes on 2 cores
 *   npm run bench                     the full run (about 40–50 minutes on 2 cores)
 *   npm run bench -- --gpu            on a CUDA machine: random-weight large-v3-turbo, nvidia-smi sampling
 * Options: --streams 1,2,4 (concurrency sweep), --workers N, --threads N, --model PATH, --clips N (first N clips),
 *   --skip kol,continuous,asimov,sweeps,offline,naive,peers,capacity, --out DIR; --render RAW.json re-renders an earlier run's report.
 * Shapes of speech: the continuous stream (clips joined by breaths) and, in the full run, asimov.wav, at 1 and
 * 4 speakers, next to the paused stream of the sweep (corpus/streams.ts, bench/shapes.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger } from '../engine/log.js';
import { REPO_ROOT } from '../engine/paths.js';
import { defaultThreads } from '../engine/whisper/local-workers.js';
import { clips as sharedClips, REAL_MODEL, type Clip } from '../corpus/assets.js';
import { offlineWerOf, runNaive, runOffline, runOfflineJoined, type OfflineResult } from './baselines.js';
import { probeCapacity, profileGateway, type CapacityResult, type ProfileResult } from './capacity/probe.js';
import { measureOurs, startOurServer, warmUp, type OurServer } from './latency.js';
import { decodeBudget, ensureRandomTurbo, gpuSampler, hasNvidiaSmi, type DecodeBudgetRow } from './lib/gpu.js';
import { load1, machineInfo, type MachineInfo } from './lib/machine.js';
import type { LatencyResult } from './lib/result.js';
import { fixed, mdTable, ratio, s } from './lib/stats.js';
import { cdfChart, lineChart, type Series } from './lib/svg.js';
import { measureWhisperLive, startWhisperLive, whisperLiveInstalled } from './peers/whisperlive.js';
import { shapeRowOf, shapeTable, type ShapeRow } from './shapes.js';
import { SHAPE_AUDIO, shapeStreams, type StreamShape } from '../corpus/streams.js';

export interface BenchOptions {
  quick: boolean;
  gpu: boolean;
  concurrency: number[];
  workers: number;
  /** Threads per whisper worker; 0 = the product default (all cores, at most 8, per worker). */
  threads: number;
  model: string;
  /** Only the first N clips of the set (0: all): short checks. */
  clips: number;
  skip: Set<string>;
  out: string;
  argv: string[];
}

export interface BenchReport {
  mode: 'quick' | 'full' | 'gpu';
  machine: MachineInfo;
  command: string;
  model: string;
  streamSeconds: number;
  clips: string[];
  startedLoad: string;
  offline: OfflineResult | null;
  /** `kol transcribe` on the joined continuous and paused files, each as a whole. */
  offlineJoined: Partial<Record<StreamShape, OfflineResult>>;
  /** kol on the continuous stream and asimov.wav, at 1 and 4 speakers (the paused stream is the sweep's). */
  shapes: LatencyResult[];
  sweep: LatencyResult[];
  variants: LatencyResult[];
  naive: LatencyResult[];
  peers: LatencyResult[];
  capacity: CapacityResult[];
  transportOnly: CapacityResult | null;
  profile: ProfileResult | null;
  decode: DecodeBudgetRow[] | null;
  notes: string[];
  minutes: number;
}

const P95_LIMIT_MS = 2000;

/** The flags `kol bench` takes: those with a value, then switches. */
const VALUE_FLAGS = ['streams', 'workers', 'threads', 'model', 'clips', 'skip', 'out', 'render'];
const SWITCHES = ['quick', 'gpu'];

const USAGE = `kol bench [--quick] [--gpu] [--streams 1,2,4] [--workers N] [--threads N] [--model PATH] [--clips N]
          [--skip kol,continuous,asimov,sweeps,offline,naive,peers,capacity] [--out DIR] [--render RAW.json]
A full run takes tens of minutes on 2 cores; --quick about a quarter of that. See bench/README.md.
`;

/** Throws on a flag it does not know, so that a typo does not start a run of tens of minutes. */
export function parseArgs(argv: string[]): BenchOptions {
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (VALUE_FLAGS.includes(name)) i++;
    else if (!SWITCHES.includes(name)) throw new Error(`kol bench: unknown argument ${JSON.stringify(argv[i])}.\n${USAGE}`);
  }
  const value = (name: string) => {
    const at = argv.indexOf(`--${name}`);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const gpu = argv.includes('--gpu');
  const concurrency = (value('streams') ?? (quick ? '1,4' : gpu ? '1,2,4,8,16,32,64' : '1,2,4,8,16,32')).split(',').map(Number);
  return {
    quick,
    gpu,
    concurrency,
    workers: Number(value('workers') ?? 2),
    threads: Number(value('threads') ?? 0),
    model: value('model') ?? '',
    clips: Number(value('clips') ?? 0),
    skip: new Set((value('skip') ?? '').split(',').filter(Boolean)),
    out: path.resolve(value('out') ?? path.join(REPO_ROOT, 'bench', 'results')),
    argv,
  };
}

const log = (line: string) => process.stderr.write(`bench [${new Date().toISOString().slice(11, 19)} load ${load1()}] ${line}\n`);

/** The clips of the streams: all 12 Hebrew clips, or (quick) five of them, about 22 s of speech. */
function benchClips(quick: boolean, limit: number): Clip[] {
  const all = sharedClips('he');
  if (all.length === 0) throw new Error('No shared Hebrew clips: set KOL_ASSETS or put ../shared/assets beside the repository.');
  const set = quick ? all.filter((c) => ['Aharon_Fogel_0002', 'Hashlama112_0024', 'Lod_0053', 'Meat_0089', 'Robo_Shaul_1_0017'].includes(c.name)) : all;
  return limit > 0 ? set.slice(0, limit) : set;
}

/** The shapes of speech are compared at these numbers of concurrent speakers (of those swept). */
const SHAPE_SPEAKERS = [1, 4];

export async function runBench(options: BenchOptions, engineLog: Logger): Promise<BenchReport> {
  const started = performance.now();
  const mode = options.gpu ? 'gpu' : options.quick ? 'quick' : 'full';
  const notes: string[] = [];
  if (options.gpu && !hasNvidiaSmi()) throw new Error('--gpu: nvidia-smi is not available on this machine. Run the CPU bench, or run this on a CUDA host (see bench/README.md).');
  const model = options.model || (options.gpu ? ensureRandomTurbo() : REAL_MODEL);
  const randomWeights = model.includes('random');
  if (randomWeights) notes.push('Random-weight model: the text is nonsense, so WER is not meaningful; timings are those of the real model shape.');
  const set = benchClips(options.quick, options.clips);
  const maxC = Math.max(...options.concurrency, 4);
  const streams = await shapeStreams('paused', maxC, { clips: set });
  const speakers = SHAPE_SPEAKERS.filter((n) => options.concurrency.includes(n));
  // Continuous speech first: it is what captioning users meet. asimov.wav (125 s) in the full run only.
  const extraShapes = speakers.length === 0 ? [] : (['continuous', ...(options.quick ? [] : ['asimov'])] as StreamShape[]).filter((x) => !options.skip.has(x));
  const shapeSets = new Map(await Promise.all(extraShapes.map(async (x) => [x, await shapeStreams(x, Math.max(...speakers), { clips: set })] as const)));
  const gpu = options.gpu ? gpuSampler() : undefined;
  const serverBase = { model, workers: options.workers, threads: options.threads, gpu: options.gpu ? ('on' as const) : ('off' as const), gpuFallback: 'refuse' as const };
  const report: BenchReport = {
    mode,
    machine: machineInfo(),
    command: `npm run bench --${options.argv.length ? ` ${options.argv.join(' ')}` : ''}`,
    model: path.basename(model),
    streamSeconds: streams[0].seconds,
    clips: set.map((c) => c.name),
    startedLoad: load1(),
    offline: null,
    offlineJoined: {},
    shapes: [],
    sweep: [],
    variants: [],
    naive: [],
    peers: [],
    capacity: [],
    transportOnly: null,
    profile: null,
    decode: null,
    notes,
    minutes: 0,
  };
  // What is measured so far, saved after every part: a run cut short still leaves its numbers
  // (render them with --render).
  const save = () => {
    report.minutes = (performance.now() - started) / 60_000;
    fs.mkdirSync(path.join(options.out, 'raw'), { recursive: true });
    fs.writeFileSync(path.join(options.out, 'raw', `${mode}-in-progress.json`), JSON.stringify(report, null, 1));
  };
  const threadsPerWorker = options.threads || defaultThreads();
  log(`${mode} run: ${set.length} clips per stream (${streams[0].seconds.toFixed(1)} s), model ${report.model}, ${options.workers} workers × ${threadsPerWorker} threads`);

  // 1. Offline: the accuracy and compute floor.
  if (!options.skip.has('offline')) {
    log('offline: kol transcribe on the whole clips');
    report.offline = await runOffline(set, { model, threads: threadsPerWorker, gpu: options.gpu });
    save();
    // The same joined files the streams play, each whole: quick transcribes client 0's file only.
    const files = options.quick ? 1 : Math.min(Math.max(...speakers, 1), set.length);
    for (const [shape, joined] of [['continuous', shapeSets.get('continuous')], ['paused', streams]] as const) {
      if (!joined) continue;
      log(`offline: kol transcribe on ${files} joined ${shape} file(s), each whole`);
      report.offlineJoined[shape] = await runOfflineJoined(joined.slice(0, files), shape, { model, threads: threadsPerWorker, gpu: options.gpu });
      save();
    }
  }

  // 2. kol: continuous speech (and asimov.wav) at 1 and 4 speakers, then the concurrency sweep on the paused stream until p95 passes 2 s.
  const withServer = async <T>(config: Record<string, unknown>, body: (server: OurServer) => Promise<T>): Promise<T> => {
    const server = await startOurServer({ ...serverBase, ...config });
    try {
      await warmUp(server, set[0]);
      return await body(server);
    } finally {
      await server.close();
    }
  };
  if (!options.skip.has('kol')) await withServer({}, async (server) => {
    for (const [shape, shapeSet] of shapeSets) {
      for (const n of speakers) {
        log(`kol: ${shape} speech, ${n} concurrent streams`);
        const r = await measureOurs(server, shapeSet.slice(0, n), { variant: `defaults, ${shape}`, shape, onGpuSample: gpu });
        report.shapes.push(r);
        save();
        log(`kol: ${shape}, ${n} streams: end of speech → final p50 ${s(r.speech?.eosToFinal.p50 ?? NaN)} s, p95 ${s(r.speech?.eosToFinal.p95 ?? NaN)} s, WER ${fixed(r.wer, 3)}`);
      }
    }
    for (const n of options.concurrency) {
      log(`kol: ${n} concurrent streams`);
      const r = await measureOurs(server, streams.slice(0, n), { variant: 'defaults, paused', shape: 'paused', onGpuSample: gpu });
      report.sweep.push(r);
      save();
      log(`kol: ${n} streams: end of speech → final p50 ${s(r.eosToFinal.p50)} s, p95 ${s(r.eosToFinal.p95)} s, WER ${fixed(r.wer, 3)}`);
      // Until p95 passes 2 s — but always through 4 streams, for the ratios at 1 and 4.
      if ((!(r.eosToFinal.p95 <= P95_LIMIT_MS) || r.unfinalized > 0) && n >= 4) break;
    }
  });

  // 3. Sweeps: audio_ctx, partials, workers.
  if (!options.skip.has('sweeps') && !options.quick) {
    const at = [1, 4];
    log(`variants: finalAudioCtx auto at ${at.join(', ')} streams`);
    await withServer({ finalAudioCtx: 'auto' }, async (server) => {
      for (const n of at) report.variants.push(await measureOurs(server, streams.slice(0, n), { variant: 'finalAudioCtx auto', onGpuSample: gpu }));
      save();
    });
    log('variants: partials off');
    await withServer({ partials: false }, async (server) => {
      for (const n of at) report.variants.push(await measureOurs(server, streams.slice(0, n), { variant: 'partials off', onGpuSample: gpu }));
    });
    for (const workers of [1, 3].filter((w) => w !== options.workers)) {
      log(`variants: ${workers} workers`);
      await withServer({ workers }, async (server) => {
        for (const n of at) report.variants.push(await measureOurs(server, streams.slice(0, n), { variant: `${workers} worker${workers === 1 ? '' : 's'}`, onGpuSample: gpu }));
      });
    }
  }

  // 4. The naive design: fixed 5 s chunks, no VAD, no partials.
  if (!options.skip.has('naive')) {
    for (const n of options.quick ? [1] : [1, 4]) {
      log(`naive: 5 s chunks, ${n} streams`);
      report.naive.push(await runNaive(streams.slice(0, n), { model, workers: options.workers, threads: options.threads || undefined, gpu: options.gpu, logger: engineLog }));
      save();
    }
  }

  // 5. Peers.
  if (!options.skip.has('peers')) {
    if (options.gpu) notes.push('Peers not run in --gpu mode: WhisperLive on a GPU needs the real torch and CUDA CTranslate2 libraries, which bench/peers/setup.sh deliberately does not install.');
    else if (!whisperLiveInstalled()) notes.push('WhisperLive skipped: run `bash bench/peers/setup.sh` first.');
    else {
      for (const n of options.quick ? [1] : [1, 4]) {
        log(`WhisperLive: ${n} streams`);
        const wl = await startWhisperLive({ maxClients: n + 1, threads: threadsPerWorker });
        try {
          // No warm-up session: the model loads when the first client connects, before SERVER_READY,
          // which is where the clock starts; and every session pays its own first-inference stall anyway.
          report.peers.push(await measureWhisperLive(wl, streams.slice(0, n)));
          save();
        } finally {
          await wl.close();
        }
      }
    }
    notes.push(
      'whisperlivekit (ufal whisper_streaming LocalAgreement) not run: it imports torch at module level (its Silero VAD iterator and its own whisper decoder), and the only torch on PyPI for Linux is the CUDA build, 539 MB plus 17 nvidia-*/cuda-* wheels (checked with `pip install --dry-run torch`, torch 2.15.0).',
    );
  }

  // 6. Gateway capacity, transcription off.
  if (!options.skip.has('capacity')) {
    const holdS = options.quick ? 5 : 10;
    const batchedSteps = options.quick ? [250, 1000] : [100, 250, 500, 750, 1000, 1250, 1500, 2000];
    log('capacity: VAD batched');
    report.capacity.push(await probeCapacity({ mode: 'batched', steps: batchedSteps, holdS, log }));
    save();
    if (!options.quick) {
      log('capacity: VAD unbatched');
      report.capacity.push(await probeCapacity({ mode: 'unbatched', steps: [50, 100, 200, 300, 400, 600, 800, 1000], holdS, log }));
      const at = Math.max(100, report.capacity[0].capacity || 100);
      log(`capacity: transport only, ${at} streams`);
      report.transportOnly = await probeCapacity({ mode: 'transport', steps: [at], holdS, log });
      log(`capacity: CPU profile at ${at} streams`);
      report.profile = await profileGateway({ streams: at, holdS, dir: path.join(options.out, 'raw', 'profiles') });
    }
  }

  if (options.gpu) {
    log('decode budget: direct whisper-server requests, temperature fallback off');
    report.decode = await decodeBudget({ model, gpu: true, threads: options.threads || undefined, logger: engineLog });
  }
  report.minutes = (performance.now() - started) / 60_000;
  return report;
}

// ── report

/** Rows of the shapes table: continuous speech first, then the sweep's paused stream, then asimov.wav. */
export function shapeRows(r: BenchReport): ShapeRow[] {
  const shapes = r.shapes ?? [];
  const ordered = [
    ...shapes.filter((x) => x.shape === 'continuous'),
    ...r.sweep.filter((x) => SHAPE_SPEAKERS.includes(x.concurrency)),
    ...shapes.filter((x) => x.shape === 'asimov'),
  ];
  return ordered.flatMap((x) => {
    const offline = x.shape ? r.offlineJoined?.[x.shape] : undefined;
    const row = shapeRowOf(x, offline ? offlineWerOf(offline, x.concurrency) : null);
    return row ? [row] : [];
  });
}

/** kol's continuous-speech runs, which line up with the sweep and the baselines (asimov has no known end of speech). */
const continuousRuns = (r: BenchReport) => (r.shapes ?? []).filter((x) => x.shape === 'continuous');

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(0)} %` : '–');

function latencyRows(results: LatencyResult[]): Array<Array<string | number>> {
  return results.map((r) => [
    r.system,
    r.variant,
    r.concurrency,
    `${r.utterances - r.unfinalized}/${r.utterances}`,
    s(r.eosToFinal.p50),
    s(r.eosToFinal.p95),
    s(r.eosToFinal.max),
    s(r.segEndToFinal.p50),
    s(r.firstText.p50),
    s(r.firstPartial.p50),
    r.partialGapS.n ? `${fixed(r.partialGapS.p50)} / ${fixed(r.partialGapS.p95)}` : '–',
    fixed(r.wer, 3),
    fixed(r.cpuSecondsPerAudioSecond),
    `${fixed(r.serverCores)} + ${fixed(r.workerCores)}`,
    `${r.serverRssMB.toFixed(0)} + ${r.workerRssMB.toFixed(0)}`,
    pct(r.busyFraction),
    r.finalQueueWait.n ? `${s(r.finalQueueWait.p50)} / ${s(r.finalQueueWait.p95)}` : '–',
    r.gpu ? `${fixed(r.gpu.utilPct.mean, 0)} % / ${fixed(r.gpu.memMiB.max, 0)} MiB` : '–',
    `${r.loadBefore} → ${r.loadAfter}`,
    r.foreignCores === null ? '–' : fixed(r.foreignCores),
  ]);
}

const LATENCY_HEADER = [
  'system',
  'variant',
  'streams',
  'finalized',
  'end of speech → final p50 (s)',
  'p95 (s)',
  'max (s)',
  'segment end → final p50 (s)',
  'speech start → first text p50 (s)',
  'speech_start → first partial p50 (s)',
  'update gap p50 / p95 (s of audio)',
  'WER',
  'CPU s per audio s',
  'cores: server + workers',
  'RSS MB: server + workers',
  'workers busy',
  'final queue wait p50 / p95 (s)',
  'GPU util / mem',
  'load 1 min before → after',
  'others\' load (cores)',
];

export function renderMarkdown(r: BenchReport): string {
  const m = r.machine;
  const lines: string[] = [];
  const one = r.sweep.find((x) => x.concurrency === 1);
  const four = r.sweep.find((x) => x.concurrency === 4);
  const naive1 = r.naive.find((x) => x.concurrency === 1);
  const wl1 = r.peers.find((x) => x.concurrency === 1);
  const sustained = r.sweep.filter((x) => x.eosToFinal.p95 <= P95_LIMIT_MS && x.unfinalized === 0).map((x) => x.concurrency);
  lines.push(`# kol bench — ${r.mode} run`);
  lines.push('');
  lines.push(`- date: ${m.date}; took ${r.minutes.toFixed(1)} min`);
  lines.push(`- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB${m.gpu ? `, GPU ${m.gpu}` : ', no GPU'}; Node ${m.node}; commit ${m.commit}${m.dirty ? ' + uncommitted changes' : ''}`);
  lines.push(`- model: ${r.model}; command: \`${r.command}\``);
  lines.push(`- audio: ${r.clips.length} Hebrew clips; paused stream (the sweep, the baselines, the peers): ${SHAPE_AUDIO.paused}, ${r.streamSeconds.toFixed(1)} s per stream; client i starts 0.25·i s later with the clips rotated by i`);
  const extra = (['continuous', 'asimov'] as const).filter((x) => (r.shapes ?? []).some((y) => y.shape === x));
  if (extra.length > 0) lines.push(`- also at ${SHAPE_SPEAKERS.join(' and ')} speakers: ${extra.map((x) => `${x}: ${SHAPE_AUDIO[x]}`).join('; ')}${extra.includes('asimov') ? ' (client i hears it rotated to a quiet point i/N of the way in)' : ''}`);
  lines.push(`- load average (1 min) at the start: ${r.startedLoad} on ${m.cores} cores. "others' load" below is CPU used by processes outside this bench during each run (in cores): where it is well above 0 the machine was shared and the timings are pessimistic.`);
  for (const note of [...r.notes, ...[...r.sweep, ...r.variants, ...r.naive, ...r.peers].flatMap((x) => x.notes)]) lines.push(`- ${note}`);
  lines.push('');

  lines.push('## Headline: ratios, ours / baseline (lower is better)');
  lines.push('');
  const headline: Array<Array<string | number>> = [];
  // Continuous speech first: streamed against offline on the same joined file, and its wait at 1 and 4 speakers.
  const rows = shapeRows(r);
  for (const row of rows.filter((x) => x.shape === 'continuous' || (x.shape === 'paused' && x.offline))) {
    if (row.offline) headline.push([`WER, ${row.shape} speech streamed (${row.speakers} speaker${row.speakers > 1 ? 's' : ''}) / offline, same joined file${row.offline.files > 1 ? 's' : ''}`, `${fixed(row.wer, 3)} / ${fixed(row.offline.wer, 3)}`, ratio(row.wer, row.offline.wer)]);
  }
  for (const row of rows.filter((x) => x.shape === 'continuous')) {
    headline.push([`end of speech → final p50 / p95, continuous speech, ${row.speakers} speaker${row.speakers > 1 ? 's' : ''}`, `${s(row.stats.eosToFinal.p50)} / ${s(row.stats.eosToFinal.p95)} s`, '']);
  }
  if (one && r.offline) headline.push(['WER, kol streaming (1 stream) / offline whole clips', `${fixed(one.wer, 3)} / ${fixed(r.offline.wer, 3)}`, ratio(one.wer, r.offline.wer)]);
  if (one && naive1) {
    headline.push(['end of speech → final p50, kol / naive 5 s chunks (1 stream)', `${s(one.eosToFinal.p50)} / ${s(naive1.eosToFinal.p50)} s`, ratio(one.eosToFinal.p50, naive1.eosToFinal.p50)]);
    headline.push(['end of speech → final p95, kol / naive (1 stream)', `${s(one.eosToFinal.p95)} / ${s(naive1.eosToFinal.p95)} s`, ratio(one.eosToFinal.p95, naive1.eosToFinal.p95)]);
    headline.push(['WER, kol / naive (1 stream)', `${fixed(one.wer, 3)} / ${fixed(naive1.wer, 3)}`, ratio(one.wer, naive1.wer)]);
  }
  if (one && wl1) {
    headline.push(['end of speech → final p50, kol / WhisperLive (1 stream)', `${s(one.eosToFinal.p50)} / ${s(wl1.eosToFinal.p50)} s`, ratio(one.eosToFinal.p50, wl1.eosToFinal.p50)]);
    headline.push(['end of speech → final p95, kol / WhisperLive (1 stream)', `${s(one.eosToFinal.p95)} / ${s(wl1.eosToFinal.p95)} s`, ratio(one.eosToFinal.p95, wl1.eosToFinal.p95)]);
    headline.push(['speech start → first text p50, kol / WhisperLive', `${s(one.firstText.p50)} / ${s(wl1.firstText.p50)} s`, ratio(one.firstText.p50, wl1.firstText.p50)]);
    headline.push(['WER, kol / WhisperLive (1 stream)', `${fixed(one.wer, 3)} / ${fixed(wl1.wer, 3)}`, ratio(one.wer, wl1.wer)]);
    headline.push(['CPU seconds per audio second, kol / WhisperLive', `${fixed(one.cpuSecondsPerAudioSecond)} / ${fixed(wl1.cpuSecondsPerAudioSecond)}`, ratio(one.cpuSecondsPerAudioSecond, wl1.cpuSecondsPerAudioSecond)]);
  }
  const ctx1 = r.variants.find((x) => x.variant === 'finalAudioCtx auto' && x.concurrency === 1);
  if (one && ctx1) headline.push(['finalAudioCtx auto / full: end of speech → final p50; WER', `${s(ctx1.eosToFinal.p50)} / ${s(one.eosToFinal.p50)} s; ${fixed(ctx1.wer, 3)} / ${fixed(one.wer, 3)}`, `${ratio(ctx1.eosToFinal.p50, one.eosToFinal.p50)}; ${ratio(ctx1.wer, one.wer)}`]);
  const batched = r.capacity.find((c) => c.mode === 'batched');
  const unbatched = r.capacity.find((c) => c.mode === 'unbatched');
  if (batched && unbatched) headline.push(['gateway capacity (streams), VAD batched / unbatched', `${batched.capacity} / ${unbatched.capacity}`, ratio(batched.capacity, unbatched.capacity)]);
  headline.push(['streams sustained at real time with p95 ≤ 2 s (kol)', sustained.length ? `${Math.max(...sustained)} (tested ${r.sweep.map((x) => x.concurrency).join(', ')})` : `none of ${r.sweep.map((x) => x.concurrency).join(', ')}`, '']);
  if (four && one) headline.push(['end of speech → final p95 at 4 streams / at 1', `${s(four.eosToFinal.p95)} / ${s(one.eosToFinal.p95)} s`, ratio(four.eosToFinal.p95, one.eosToFinal.p95)]);
  if (batched) headline.push(['gateway capacity, transcription off (goal 1000)', `${batched.capacity} streams`, '']);
  lines.push(mdTable(['what', 'values', 'ratio'], headline));
  lines.push('');

  if (rows.length > 0) {
    lines.push(`## Shapes of speech: continuous and paused, ${SHAPE_SPEAKERS.join(' and ')} speakers`);
    lines.push('');
    lines.push('Continuous: sentences joined by breaths shorter than the endpoint, what captioning users meet; paused: the sweep\'s stream, a pause after every sentence. Inference, queueing, segment lengths and cut reasons are over every final (server figures); degraded: finals decoded more cheaply because finals queued; partials per s of speech: partials received / seconds of speech sent. Offline: `kol transcribe` (beam 5, full window) on the same joined files, each whole, in this run.');
    lines.push('');
    lines.push(shapeTable(rows));
    lines.push('');
  }

  if (r.offline) {
    const o = r.offline;
    lines.push('## Offline floor (`kol transcribe`, whole clips, beam 5, one worker)');
    lines.push('');
    lines.push(
      mdTable(
        ['clips', 'audio (s)', 'WER', 'inference per clip p50 / p95 / max (s)', 'inference s per audio s', 'CPU s per audio s (whole process)', 'load before → after', 'others\' load (cores)'],
        [[o.clips, o.audioSeconds.toFixed(1), fixed(o.wer, 3), `${s(o.inference.p50)} / ${s(o.inference.p95)} / ${s(o.inference.max)}`, fixed(o.rtf), fixed(o.cpuSecondsPerAudioSecond), `${o.loadBefore} → ${o.loadAfter}`, o.foreignCores === null ? '–' : fixed(o.foreignCores)]],
      ),
    );
    lines.push('');
  }

  lines.push('## Latency and accuracy, same audio, same run');
  lines.push('');
  lines.push('kol: continuous speech at 1 and 4 streams; concurrency sweep on the paused stream (stops at the first level from 4 streams on whose p95 passes 2 s), then variants; naive: 5 s chunks posted one after another, beam 5; WhisperLive: its own protocol, 4096-sample frames, completed segments as finals (an utterance counts as finalized when a completed segment reaches within 0.5 s of its end).');
  lines.push('');
  lines.push(mdTable(LATENCY_HEADER, latencyRows([...continuousRuns(r), ...r.sweep, ...r.variants, ...r.naive, ...r.peers])));
  lines.push('');
  lines.push('Columns: *end of speech → final* is from the client sending the utterance\'s last sample to receiving the final that covers it; *segment end → final* is from the segment\'s last audio (its closing pause included) to that final; *first text* is the first partial or final covering the utterance, from its first sample. CPU is the server process and its whisper workers (naive: the workers only; WhisperLive: its one process).');
  lines.push('');

  if (r.capacity.length > 0) {
    lines.push('## Gateway capacity, transcription off');
    lines.push('');
    lines.push('The real gateway, native endpoint, sessions, Silero VAD, segmenter and scheduler over a pool stub that never transcribes (`bench/capacity/server.ts`); clients in a separate process send 100 ms frames at real time. A step passes while event-loop lag p99 ≤ 50 ms and the VAD classifies ≥ 97 % of the audio sent.');
    lines.push('');
    const rows = [...r.capacity, ...(r.transportOnly ? [r.transportOnly] : [])].flatMap((c) =>
      c.steps.map((st) => [c.mode, st.streams, fixed(st.lagP99Ms, 1), fixed(st.lagMaxMs, 0), fixed(st.serverCores), `${st.vadStreams.toFixed(0)} / ${st.sentStreams.toFixed(0)}`, fixed(st.vadRunsPerS, 0), st.serverRssMB.toFixed(0), fixed(st.clientCores), st.load, st.ok ? 'ok' : `no: ${st.why}`]),
    );
    lines.push(mdTable(['mode', 'streams', 'lag p99 (ms)', 'lag max (ms)', 'server cores', 'VAD / sent (streams of audio per s)', 'VAD runs per s', 'server RSS MB', 'client swarm cores', 'load', 'passes'], rows));
    lines.push('');
    for (const c of r.capacity) lines.push(`- ${c.mode}: capacity ${c.capacity} streams (${c.holdS} s per step)`);
    if (r.transportOnly && batched) {
      const t = r.transportOnly.steps[0];
      const b = batched.steps.find((x) => x.streams === t?.streams);
      if (t && b) lines.push(`- transport alone (ws receive, no VAD) at ${t.streams} streams: ${fixed(t.serverCores)} cores, i.e. ${pct(t.serverCores / b.serverCores)} of the full gateway's ${fixed(b.serverCores)} cores.`);
    }
    lines.push('');
  }
  if (r.profile) {
    const p = r.profile;
    lines.push(`## Where the gateway's CPU goes (${p.streams} streams, ${p.mode}, --cpu-prof, ${p.seconds.toFixed(0)} s, ${(p.busyMs / 1000 / p.seconds).toFixed(2)} cores busy)`);
    lines.push('');
    lines.push(mdTable(['category', 'CPU ms', 'share of busy time'], p.shares.map((x) => [x.category, x.ms.toFixed(0), pct(x.share)])));
    lines.push('');
    lines.push(`Transport (ws + node sockets): ${pct(p.transportShare)} of busy time; at most ${pct(p.transportShareUpper)} counting all unattributed native time. Profile: \`${p.file}\`.`);
    lines.push('');
  }
  if (r.decode) {
    lines.push('## One decode on this GPU (direct whisper-server requests, temperature fallback off)');
    lines.push('');
    lines.push(mdTable(['audio (s)', 'beam', 'ms p50 / p95', 'tokens decoded (mean)', 'ms per token'], r.decode.map((d) => [d.audioS, d.beam, `${d.ms.p50.toFixed(0)} / ${d.ms.p95.toFixed(0)}`, fixed(d.tokens.mean, 0), fixed(d.msPerToken)])));
    lines.push('');
  }
  return lines.join('\n');
}

export function renderPlots(r: BenchReport): Record<string, string> {
  const plots: Record<string, string> = {};
  const bySystem = new Map<string, LatencyResult[]>();
  for (const x of [...continuousRuns(r), ...r.sweep, ...r.variants, ...r.naive, ...r.peers]) {
    const key = x.system === 'kol' ? `kol (${x.variant})` : x.system;
    bySystem.set(key, [...(bySystem.get(key) ?? []), x]);
  }
  const series: Series[] = [];
  [...bySystem].forEach(([name, results], color) => {
    const sorted = [...results].sort((a, b) => a.concurrency - b.concurrency);
    series.push({ name: `${name} p50`, points: sorted.map((x) => [x.concurrency, x.eosToFinal.p50 / 1000]), color });
    series.push({ name: `${name} p95`, points: sorted.map((x) => [x.concurrency, x.eosToFinal.p95 / 1000]), dashed: true, color });
  });
  plots['latency-vs-concurrency.svg'] = lineChart(series, {
    title: `End of speech → final vs concurrent streams (${r.mode}, ${r.machine.cores} cores)`,
    xLabel: 'concurrent real-time streams',
    yLabel: 'seconds',
    logX: true,
    hLine: { y: 2, label: '2 s' },
  });
  const cdf = [...r.sweep.filter((x) => x.concurrency === 1 || x.concurrency === 4), ...r.naive, ...r.peers].map((x) => ({
    name: `${x.system === 'kol' ? 'kol' : x.system}, ${x.concurrency} stream${x.concurrency > 1 ? 's' : ''}`,
    values: x.eosToFinalMs.map((v) => v / 1000),
    dashed: x.concurrency > 1,
    color: ['kol', 'naive', 'WhisperLive'].indexOf(x.system),
  }));
  plots['latency-cdf.svg'] = cdfChart(cdf, { title: `End of speech → final, CDF (${r.mode})`, xLabel: 'seconds', yLabel: 'fraction of utterances' });
  const cap = r.capacity.map((c) => ({ name: `VAD ${c.mode}`, points: c.steps.map((st) => [st.streams, st.lagP99Ms] as [number, number]) }));
  if (cap.length > 0) plots['capacity-lag.svg'] = lineChart(cap, { title: 'Gateway event-loop lag p99 vs streams (transcription off)', xLabel: 'concurrent real-time streams', yLabel: 'ms', hLine: { y: 50, label: '50 ms' } });
  return plots;
}

export function writeReport(r: BenchReport, out: string): string {
  fs.mkdirSync(path.join(out, 'raw'), { recursive: true });
  const markdown = renderMarkdown(r);
  const plots = renderPlots(r);
  const stamp = r.machine.date.replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(out, 'raw', `${r.mode}-${stamp}.json`), JSON.stringify(r, null, 1));
  const links = Object.keys(plots).map((name) => `![${name}](${r.mode}-${name})`);
  fs.writeFileSync(path.join(out, `${r.mode}.md`), `${markdown}\n## Plots\n\n${links.join('\n\n')}\n`);
  for (const [name, svg] of Object.entries(plots)) fs.writeFileSync(path.join(out, `${r.mode}-${name}`), svg);
  return markdown;
}

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  let options: BenchOptions;
  try {
    options = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}`);
    process.exitCode = 2;
    return;
  }
  const render = argv.indexOf('--render');
  if (render >= 0) {
    // Re-render the report and plots of an earlier run from its raw JSON (no measuring).
    const report = JSON.parse(fs.readFileSync(argv[render + 1], 'utf8')) as BenchReport;
    process.stdout.write(`${writeReport(report, options.out)}\n`);
    return;
  }
  // Worker start/restart lines would drown the progress lines; warnings still show.
  const report = await runBench(options, createLogger(process.env.KOL_LOG_LEVEL ?? 'warn'));
  const markdown = writeReport(report, options.out);
  process.stdout.write(`${markdown}\n`);
  log(`wrote ${path.relative(process.cwd(), path.join(options.out, `${report.mode}.md`))} and its plots (${report.minutes.toFixed(1)} min)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main(process.argv.slice(2));
  process.exit(process.exitCode ?? 0);
}

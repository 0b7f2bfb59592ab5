/**
 * Soak: a real `kol serve` process under N concurrent real-time streams for a long time, its memory
 * sampled throughout. Every stream loops over the shared Hebrew clips (joined with pauses) at
 * real-time pace, reconnecting after each pass; at the end, RSS over time is printed as a table and
 * judged flat or not.
 *
 *   node --import tsx bench/soak.ts                         600 s, 8 streams (KOL_SOAK_SECONDS, KOL_SOAK_STREAMS)
 *   node --import tsx bench/soak.ts --seconds 3600 --streams 8
 *   node --import tsx bench/soak.ts --url ws://host:8009     against a running server (RSS not sampled)
 *   … --no-partials --final-beam-size 1                     finals only, greedy (a small CPU machine)
 *
 * The server runs with KOL_MODEL (default: the shared base model), 2 workers, 1 thread each, CPU.
 * bench/soak.test.ts runs a shortened soak in CI (40 s unless KOL_SOAK_SECONDS says more).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { streamAudio } from '../clients/cli/stream-client.js';
import { REPO_ROOT } from '../engine/paths.js';
import { configuredModel } from '../server/config.js';
import { REAL_MODEL } from '../corpus/assets.js';
import { processTree } from './lib/proc.js';
import { hebrewBenchStream } from '../corpus/streams.js';
import { percentile } from './lib/stats.js';

export interface SoakSample {
  /** Seconds since the soak began. */
  t: number;
  /** The kol server process (node), MiB. */
  serverRssMiB: number;
  /** Its whisper-server children together, MiB. */
  workersRssMiB: number;
  sessions: number;
  finals: number;
}

export interface SoakResult {
  samples: SoakSample[];
  passes: number;
  finals: number;
  errors: Record<string, number>;
  abnormalCloses: number[];
  /** Server RSS growth from the end of the warm-up to the end (medians of 3 samples), MiB. */
  growthMiB: number;
  /** Least-squares slope of server RSS after the warm-up, MiB per minute. */
  slopeMiBPerMin: number;
  flat: boolean;
  /** Server-reported end-of-speech → final latency of every final, ms (p50/p95 show whether the workers kept up). */
  latenciesMs: number[];
}

export interface SoakOptions {
  seconds: number;
  streams: number;
  /** A running server; default: start one in a child process (and sample its memory). */
  url?: string;
  sampleEverySeconds?: number;
  /** Partials on (default) or off (half the worker load: for a machine with too few cores for N streams). */
  partials?: boolean;
  /** Pauses between the clips of each stream (s, cycled); longer pauses mean less speech per stream. */
  gapsS?: number[];
  /** After the end, how long sessions may take to deliver their pending finals before they are cut (s). */
  drainGraceSeconds?: number;
  /** Extra environment for the server process (e.g. KOL_FINAL_BEAM_SIZE=1 on a small CPU machine). */
  serverEnv?: Record<string, string>;
  onSample?: (sample: SoakSample) => void;
}

/** Admission (KOL_CAPACITY) is left to the session limit: the soak loads the server on purpose. */
async function startServerProcess(extra: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const env = { ...process.env, KOL_MODEL: configuredModel() || REAL_MODEL, KOL_PORT: '0', KOL_HOST: '127.0.0.1', KOL_WORKERS: '2', KOL_THREADS: '1', KOL_GPU: 'off', KOL_LOG_LEVEL: 'info', KOL_CAPACITY: '200', ...extra };
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'kol.js'), 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let pending = '';
    const tail: string[] = [];
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        if (line.includes('"kol is listening"')) resolve(String((JSON.parse(line) as { url: string }).url).replace(/\/v1\/stream$/, ''));
      }
    });
    child.once('exit', (code) => reject(new Error(`kol serve exited (${code}) before listening:\n${tail.join('\n')}`)));
  });
  return { child, url };
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const every = options.sampleEverySeconds ?? Math.max(5, Math.round(options.seconds / 40));
  const server = options.url ? null : await startServerProcess(options.serverEnv);
  const base = options.url ?? server!.url;
  const stream = await hebrewBenchStream(options.gapsS);
  const query = options.partials === false ? '?partials=false' : '';
  const cut = new AbortController();
  const audio = new Uint8Array(stream.pcm16.buffer, stream.pcm16.byteOffset, stream.pcm16.byteLength);
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const end = new AbortController();
  const endTimer = setTimeout(() => end.abort(), options.seconds * 1000);
  // Sessions still delivering finals long after the end are cut off (and counted as abnormal closes).
  const cutTimer = setTimeout(() => cut.abort(), (options.seconds + (options.drainGraceSeconds ?? 120)) * 1000);
  const latenciesMs: number[] = [];

  let passes = 0;
  let finals = 0;
  let open = 0;
  const errors: Record<string, number> = {};
  const abnormalCloses: number[] = [];
  const samples: SoakSample[] = [];
  const sample = () => {
    const pid = server?.child.pid;
    const tree = pid ? processTree(pid) : [];
    const mib = (procs: typeof tree) => procs.reduce((sum, p) => sum + p.rssBytes, 0) / 2 ** 20;
    const s: SoakSample = {
      t: (performance.now() - started) / 1000,
      serverRssMiB: pid ? mib(tree.filter((p) => p.pid === pid)) : NaN,
      workersRssMiB: pid ? mib(tree.filter((p) => p.pid !== pid)) : NaN,
      sessions: open,
      finals,
    };
    samples.push(s);
    options.onSample?.(s);
  };
  sample();
  const sampler = setInterval(sample, every * 1000);

  const client = async (index: number) => {
    // Staggered starts, so that the streams' speech does not line up.
    await new Promise((resolve) => setTimeout(resolve, (index * 1500) % 10_000));
    while (performance.now() < deadline) {
      open++;
      try {
        const result = await streamAudio({
          url: `${base}/v1/stream${query}`,
          audio,
          speed: 1,
          chunkMs: 100,
          endSignal: end.signal,
          signal: cut.signal,
          onMessage: (m) => {
            if (m.type === 'final' && m.text) finals++;
          },
        });
        passes++;
        latenciesMs.push(...result.finals.filter((f) => f.text).map((f) => f.latency_ms));
        for (const m of result.messages) if (m.message.type === 'error') errors[m.message.code] = (errors[m.message.code] ?? 0) + 1;
        if (result.closeCode !== 1000) abnormalCloses.push(result.closeCode);
      } finally {
        open--;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.streams }, (_, i) => client(i)));
  } finally {
    clearTimeout(endTimer);
    clearTimeout(cutTimer);
    clearInterval(sampler);
    sample();
    if (server) {
      server.child.kill('SIGTERM');
      await new Promise((resolve) => server.child.once('exit', resolve));
    }
  }

  // Flat: after a warm-up (the first fifth, at least 20 s), the server's RSS neither keeps climbing
  // (slope) nor ends much above where the warm-up left it.
  const warm = Math.max(20, options.seconds / 5);
  const steady = samples.filter((s) => s.t >= warm && Number.isFinite(s.serverRssMiB));
  let growthMiB = NaN;
  let slopeMiBPerMin = NaN;
  let flat = true;
  if (steady.length >= 4) {
    growthMiB = percentile(steady.slice(-3).map((s) => s.serverRssMiB), 50) - percentile(steady.slice(0, 3).map((s) => s.serverRssMiB), 50);
    const n = steady.length;
    const mt = steady.reduce((a, s) => a + s.t, 0) / n;
    const mr = steady.reduce((a, s) => a + s.serverRssMiB, 0) / n;
    const cov = steady.reduce((a, s) => a + (s.t - mt) * (s.serverRssMiB - mr), 0);
    const varT = steady.reduce((a, s) => a + (s.t - mt) ** 2, 0);
    slopeMiBPerMin = varT > 0 ? (cov / varT) * 60 : 0;
    const base = steady[0].serverRssMiB;
    // Allowance: 32 MiB or 10 % (heap sizing settles for a while), and for long runs under 1 MiB/min.
    flat = growthMiB < Math.max(32, base * 0.1) && (options.seconds < 300 || slopeMiBPerMin < 1);
  }
  return { samples, passes, finals, errors, abnormalCloses, growthMiB, slopeMiBPerMin, flat, latenciesMs };
}

export function formatSoakTable(result: SoakResult): string {
  const rows = [['t (s)', 'server RSS (MiB)', 'workers RSS (MiB)', 'open sessions', 'finals']];
  for (const s of result.samples) rows.push([s.t.toFixed(0), s.serverRssMiB.toFixed(1), s.workersRssMiB.toFixed(1), String(s.sessions), String(s.finals)]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => c.padStart(widths[i])).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  lines.push(
    '',
    `final latency (server, end of speech → final): p50 ${percentile(result.latenciesMs, 50)} ms, p95 ${percentile(result.latenciesMs, 95)} ms`,
    `passes ${result.passes}, finals ${result.finals}, errors ${JSON.stringify(result.errors)}, abnormal closes ${JSON.stringify(result.abnormalCloses)}`,
    `server RSS after warm-up: growth ${result.growthMiB.toFixed(1)} MiB, slope ${result.slopeMiBPerMin.toFixed(2)} MiB/min → ${result.flat ? 'FLAT' : 'GROWING'}`,
  );
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name: string) => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  const seconds = Number(arg('seconds') ?? process.env.KOL_SOAK_SECONDS ?? 600);
  const streams = Number(arg('streams') ?? process.env.KOL_SOAK_STREAMS ?? 8);
  const partials = !process.argv.includes('--no-partials');
  const beam = arg('final-beam-size');
  process.stderr.write(`soak: ${streams} streams for ${seconds} s\n`);
  const result = await runSoak({
    seconds,
    streams,
    url: arg('url'),
    partials,
    serverEnv: beam ? { KOL_FINAL_BEAM_SIZE: beam } : {},
    onSample: (s) => process.stderr.write(`  t=${s.t.toFixed(0)} s  server ${s.serverRssMiB.toFixed(1)} MiB  workers ${s.workersRssMiB.toFixed(1)} MiB  open ${s.sessions}  finals ${s.finals}\n`),
  });
  process.stdout.write(`${formatSoakTable(result)}\n`);
  process.exit(result.flat && result.abnormalCloses.length === 0 ? 0 : 1);
}

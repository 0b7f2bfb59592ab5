/**
 * Peer: WhisperLive (collabora/WhisperLive, PyPI `whisper-live`), faster-whisper backend, on the same
 * weights in CTranslate2 form, driven through its own WebSocket protocol with the same audio and clock
 * as kol. Needs `bash bench/peers/setup.sh` first.
 *
 * Its protocol (whisper_live/client.py): a JSON options message {uid, language, task, model, use_vad,
 * ...}; the server answers {message: "SERVER_READY"}; the client sends float32 16 kHz frames (its own
 * client sends 4096 samples a time) and the bytes "END_OF_AUDIO" at the end; the server sends
 * {uid, segments: [{start, end, text, completed}]} — the last few segments each time, `completed`
 * marking the ones it will not revise. A completed segment is its "final".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { REPO_ROOT } from '../../engine/paths.js';
import { freePort } from '../../engine/whisper/worker.js';
import { sampleUsage } from '../lib/proc.js';
import { dist, EMPTY, loadNow, usageFields, werOf, type LatencyResult } from '../lib/result.js';
import type { BenchStream } from '../../corpus/streams.js';
import { SAMPLE_RATE, s16ToFloats } from '../../engine/audio/format.js';

export const VENV = path.join(REPO_ROOT, 'bench', '.venv');
export const CT2_MODEL = path.join(VENV, 'models', 'whisper-base-ct2');
const PYTHON = path.join(VENV, 'bin', 'python');

export function whisperLiveInstalled(): boolean {
  return fs.existsSync(PYTHON) && fs.existsSync(path.join(CT2_MODEL, 'model.bin'));
}

/** WhisperLive's client sends 4096-sample frames; so do we. */
const FRAME_SAMPLES = 4096;
/** A completed segment "covers" an utterance when it reaches this close to its end (whisper's own timestamps are coarse). */
const COVER_TOLERANCE_S = 0.5;

export interface WhisperLiveServer {
  port: number;
  pid: number;
  threads: number;
  close(): Promise<void>;
}

export async function startWhisperLive(options: { maxClients: number; threads: number }): Promise<WhisperLiveServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    PYTHON,
    [path.join(REPO_ROOT, 'bench', 'peers', 'whisperlive_server.py'), '--port', String(port), '--model', CT2_MODEL, '--max-clients', String(options.maxClients)],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PYTHONPATH: path.join(REPO_ROOT, 'bench', 'peers', 'shims'),
        // CTranslate2's CPU threads (its default would be 4 on these 2 cores).
        OMP_NUM_THREADS: String(options.threads),
        HOME: path.join(VENV, 'home'),
        HF_HUB_OFFLINE: '1',
      },
    },
  );
  const log: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    log.push(d);
    if (log.length > 50) log.shift();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`WhisperLive did not listen within 120 s:\n${log.join('')}`)), 120_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('WHISPERLIVE_LISTENING')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`WhisperLive exited with ${code}:\n${log.join('')}`));
    });
  });
  return {
    port,
    pid: child.pid ?? 0,
    threads: options.threads,
    async close() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await new Promise((resolve) => child.once('exit', resolve));
      clearTimeout(timer);
    },
  };
}

interface WlSegment {
  start: string | number;
  end: string | number;
  text: string;
  completed: boolean;
}

interface WlRun {
  eosToFinalMs: number[];
  segEndToFinalMs: number[];
  firstTextMs: number[];
  updateGapsS: number[];
  updates: number;
  unfinalized: number;
  text: string;
  /** Stream start → its first message with text (s). */
  firstUpdateS: number;
}

/** Plays one stream to WhisperLive at real time and times its completed segments. */
export async function runWhisperLiveStream(port: number, stream: BenchStream, uid: string): Promise<WlRun> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  const sentAt: Array<{ s: number; at: number }> = [];
  const received: Array<{ at: number; sentSeconds: number; segments: WlSegment[] }> = [];
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { uid?: string; message?: string; status?: string; segments?: WlSegment[] };
    if (message.message === 'SERVER_READY') ready();
    if (message.status === 'WAIT' || message.status === 'ERROR') throw new Error(`WhisperLive refused the client: ${JSON.stringify(message)}`);
    if (message.segments) received.push({ at: performance.now(), sentSeconds: sentAt.at(-1)?.s ?? 0, segments: message.segments });
  });
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(
    JSON.stringify({
      uid,
      language: 'he',
      task: 'transcribe',
      model: CT2_MODEL,
      use_vad: true,
      send_last_n_segments: 10,
      no_speech_thresh: 0.45,
      clip_audio: false,
      same_output_threshold: 10,
    }),
  );
  await isReady;

  const pcm = s16ToFloats(stream.pcm16);
  const started = performance.now();
  for (let offset = 0; offset < pcm.length; offset += FRAME_SAMPLES) {
    const frame = pcm.slice(offset, offset + FRAME_SAMPLES);
    ws.send(Buffer.from(frame.buffer));
    const s = (offset + frame.length) / SAMPLE_RATE;
    sentAt.push({ s, at: performance.now() });
    const wait = started + s * 1000 - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  // Give it the time it needs to complete what it heard (it completes a segment on later audio, or
  // after repeating the same text): until 8 s pass without a new message, at most 60 s.
  const audioEnd = performance.now();
  while (performance.now() - audioEnd < 60_000 && performance.now() - (received.at(-1)?.at ?? audioEnd) < 8000) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  ws.send(Buffer.from('END_OF_AUDIO'));
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5000))]);
  ws.terminate();

  const whenSent = (s: number) => sentAt.find((x) => x.s >= s)?.at ?? sentAt.at(-1)!.at;
  // First sighting of every completed segment (the server repeats the last n in every message).
  const finals: Array<{ start: number; end: number; text: string; at: number }> = [];
  const seen = new Set<string>();
  for (const r of received) {
    for (const seg of r.segments) {
      if (!seg.completed) continue;
      const key = `${Number(seg.start).toFixed(2)}|${seg.text}`;
      if (seen.has(key)) continue;
      seen.add(key);
      finals.push({ start: Number(seg.start), end: Number(seg.end), text: seg.text, at: r.at });
    }
  }
  finals.sort((a, b) => a.start - b.start);
  const eosToFinalMs: number[] = [];
  let unfinalized = 0;
  for (const u of stream.utterances) {
    const covering = finals.filter((f) => f.end >= u.end - COVER_TOLERANCE_S && f.start < u.end).sort((a, b) => a.at - b.at)[0];
    if (covering) eosToFinalMs.push(covering.at - whenSent(u.end));
    else unfinalized++;
  }
  const firstTextMs: number[] = [];
  for (const u of stream.utterances) {
    const startedAt = whenSent(u.start);
    const first = received.find((r) => r.at >= startedAt && r.segments.some((seg) => seg.text.trim() !== '' && Number(seg.start) < u.end && Number(seg.end) > u.start));
    if (first) firstTextMs.push(first.at - startedAt);
  }
  const updateGapsS: number[] = [];
  for (let i = 1; i < received.length; i++) updateGapsS.push(received[i].sentSeconds - received[i - 1].sentSeconds);
  // What a user ends up reading: the completed segments, then whatever was still pending at the end.
  const last = received.at(-1)?.segments.filter((seg) => !seg.completed).map((seg) => seg.text) ?? [];
  return {
    eosToFinalMs,
    segEndToFinalMs: finals.map((f) => f.at - whenSent(f.end)),
    firstTextMs,
    updateGapsS,
    updates: received.length,
    unfinalized,
    text: [...finals.map((f) => f.text), ...last].join(' '),
    firstUpdateS: ((received.find((r) => r.segments.some((seg) => seg.text.trim() !== ''))?.at ?? NaN) - started) / 1000,
  };
}

export async function measureWhisperLive(server: WhisperLiveServer, streams: BenchStream[], staggerMs = 250): Promise<LatencyResult> {
  const loadBefore = loadNow();
  const usage = sampleUsage(server.pid);
  const runs = await Promise.all(
    streams.map(async (stream, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * staggerMs));
      return runWhisperLiveStream(server.port, stream, `bench-${i}-${Date.now()}`);
    }),
  );
  const window = usage.stop();
  const audioSeconds = streams.reduce((sum, st) => sum + st.seconds, 0);
  const eos = runs.flatMap((r) => r.eosToFinalMs);
  const fields = usageFields(window, audioSeconds);
  return {
    system: 'WhisperLive',
    variant: `0.10.0, faster-whisper int8, ${server.threads} threads, use_vad`,
    concurrency: streams.length,
    utterances: streams.reduce((sum, st) => sum + st.utterances.length, 0),
    unfinalized: runs.reduce((sum, r) => sum + r.unfinalized, 0),
    eosToFinal: dist(eos),
    eosToFinalMs: eos,
    segEndToFinal: dist(runs.flatMap((r) => r.segEndToFinalMs)),
    firstText: dist(runs.flatMap((r) => r.firstTextMs)),
    firstPartial: EMPTY,
    partialGapS: dist(runs.flatMap((r) => r.updateGapsS)),
    partials: runs.reduce((sum, r) => sum + r.updates, 0),
    wer: werOf(streams, runs.map((r) => r.text)),
    audioSeconds,
    ...fields,
    // One Python process does everything: count it all as "server".
    busyFraction: NaN,
    finalQueueWait: EMPTY,
    partialsDropped: 0,
    loadBefore,
    loadAfter: loadNow(),
    gpu: null,
    notes: [
      `WhisperLive, ${streams.length} stream(s): first text ${runs.map((r) => r.firstUpdateS.toFixed(1)).join(', ')} s after each stream started (its first inference runs on the first ~1 s of audio, mostly silence; whisper hallucinates on it and faster-whisper's temperature fallback retries: that stall is WhisperLive's own behaviour and is counted)`,
      'WhisperLive wall time includes a tail after the audio (until 8 s without a message, at most 60 s) for it to complete segments',
    ],
  };
}

/**
 * One row per shape of speech × concurrent speakers: how long people wait for finals, how the
 * segmenter cut the speech, how the finals were decoded, and WER against offline transcription of
 * the same files. Shared by `bench/stream-latency.ts` and the full bench's report.
 */
import { dist, fixed, mdTable, percentile, s } from './lib/stats.js';
import type { LatencyResult, ShapeStats } from './lib/result.js';
import type { BenchStream, StreamShape } from '../corpus/streams.js';
import type { StreamRun } from './stream-run.js';
import { SEGMENT_END_REASONS } from '../engine/vad/segmenter.js';

export function shapeStats(streams: BenchStream[], runs: StreamRun[]): ShapeStats {
  const segments = runs.flatMap((r) => r.segments);
  const known = streams.every((st) => st.utterances.length > 0);
  const lengths = segments.map((f) => f.end - f.start);
  const reasons = Object.fromEntries(SEGMENT_END_REASONS.map((reason) => [reason, segments.filter((f) => f.reason === reason).length])) as ShapeStats['reasons'];
  return {
    finals: segments.length,
    covered: runs.reduce((sum, r) => sum + r.finals.length, 0),
    utterances: streams.reduce((sum, st) => sum + st.utterances.length, 0),
    eosToFinal: dist(known ? runs.flatMap((r) => r.finals.map((f) => f.endOfSpeechToFinalMs)) : segments.map((f) => f.latencyMs)),
    eosSource: known ? 'client' : 'server',
    inference: dist(segments.map((f) => f.inferenceMs)),
    queue: dist(segments.map((f) => f.queueMs)),
    segmentS: dist(lengths),
    segmentP5S: percentile(lengths, 5),
    reasons,
    degraded: segments.filter((f) => f.degraded).length,
    partials: runs.reduce((sum, r) => sum + r.partials, 0),
    speechSeconds: streams.reduce((sum, st) => sum + st.speechSeconds, 0),
    firstPartial: dist(runs.flatMap((r) => r.firstPartialMs)),
  };
}

/** Offline WER of the same joined files, and how many of the row's files it covers. */
export interface OfflineWer {
  wer: number;
  files: number;
}

export interface ShapeRow {
  shape: StreamShape;
  speakers: number;
  stats: ShapeStats;
  /** Streamed WER (NaN without a transcript). */
  wer: number;
  offline: OfflineWer | null;
}

export const SHAPE_HEADER = [
  'shape',
  'speakers',
  'finals (utterances covered)',
  'end of speech → final p50 (s)',
  'p95 (s)',
  'max (s)',
  'final inference p50 / p95 (s)',
  'final queueing p95 (s)',
  'segment length p5 / p50 / p95 / max (s)',
  'cut: silence / max_length / flush / eof',
  'degraded finals',
  'partials per s of speech',
  'first partial p50 (s)',
  'WER',
  'offline WER, same files',
  'streamed − offline',
];

/** Marks end-of-speech figures that are the server's own latency_ms (no known end of speech). */
export const SERVER_LATENCY_MARK = '¹';
export const SERVER_LATENCY_NOTE = `${SERVER_LATENCY_MARK} No transcript, so no known end of speech: the server's own \`latency_ms\` of every final (its last audio of speech received → final sent).`;

export function shapeCells(row: ShapeRow): string[] {
  const st = row.stats;
  const mark = st.eosSource === 'server' ? ` ${SERVER_LATENCY_MARK}` : '';
  const offline = row.offline;
  const diff = offline && Number.isFinite(row.wer) && Number.isFinite(offline.wer) ? `${row.wer - offline.wer >= 0 ? '+' : ''}${(row.wer - offline.wer).toFixed(3)} (${(row.wer / offline.wer).toFixed(2)}×)` : '–';
  return [
    row.shape,
    String(row.speakers),
    st.utterances > 0 ? `${st.finals} (${st.covered}/${st.utterances})` : String(st.finals),
    `${s(st.eosToFinal.p50)}${mark}`,
    `${s(st.eosToFinal.p95)}${mark}`,
    `${s(st.eosToFinal.max)}${mark}`,
    `${s(st.inference.p50)} / ${s(st.inference.p95)}`,
    s(st.queue.p95),
    `${fixed(st.segmentP5S, 1)} / ${fixed(st.segmentS.p50, 1)} / ${fixed(st.segmentS.p95, 1)} / ${fixed(st.segmentS.max, 1)}`,
    SEGMENT_END_REASONS.map((reason) => st.reasons[reason]).join(' / '),
    String(st.degraded),
    fixed(st.partials / st.speechSeconds),
    s(st.firstPartial.p50),
    fixed(row.wer, 3),
    offline ? `${fixed(offline.wer, 3)}${offline.files < row.speakers ? ` (${offline.files} of ${row.speakers} files)` : ''}` : '–',
    diff,
  ];
}

export function shapeTable(rows: ShapeRow[]): string {
  const table = mdTable(SHAPE_HEADER, rows.map(shapeCells));
  return rows.some((r) => r.stats.eosSource === 'server') ? `${table}\n\n${SERVER_LATENCY_NOTE}` : table;
}

/** A kol latency run as a shape row (its `speech` stats are measured by `measureOurs`). */
export function shapeRowOf(result: LatencyResult, offline: OfflineWer | null): ShapeRow | null {
  if (!result.speech || !result.shape) return null;
  return { shape: result.shape, speakers: result.concurrency, stats: result.speech, wer: result.wer, offline };
}

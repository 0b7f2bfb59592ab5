/**
 * Soak: 8 concurrent real-time streams into a real `kol serve` process with RSS sampled throughout
 * (the harness beside it, soak.ts). CI RUNS A SHORTENED SOAK (40 s: 20 s of warm-up, 20 s measured); the full 10 minutes is
 *   KOL_SOAK_SECONDS=600 node --import tsx --test bench/soak.test.ts
 * and longer ones run from bench/ (node --import tsx bench/soak.ts --seconds 3600).
 * On 2 shared CPU cores, 8 real-time streams with partials are more work than the two base-model
 * workers can do (finals queue up without end, and a soak over capacity measures the queue, not a
 * leak), so by default this test streams finals only (partials off), greedy (KOL_FINAL_BEAM_SIZE=1),
 * with 2–3 s pauses between utterances. KOL_SOAK_PARTIALS=1 runs the product defaults (partials on,
 * beam 5) for a machine with the cores, or a GPU.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSoakTable, runSoak } from './soak.js';
import { clips, REAL_MODEL } from '../corpus/assets.js';
import { haveAssets } from '../test/helpers/assets.js';

const SECONDS = Number(process.env.KOL_SOAK_SECONDS ?? 40);
const PARTIALS = process.env.KOL_SOAK_PARTIALS === '1';

test(`soak: 8 concurrent real-time streams for ${SECONDS} s, server RSS flat, every session closed normally`, { timeout: (SECONDS + 240) * 1000 }, async (t) => {
  if (!haveAssets(t, REAL_MODEL, ...clips('he').map((c) => c.wav))) return;
  if (SECONDS < 600) t.diagnostic(`SHORTENED SOAK (${SECONDS} s); set KOL_SOAK_SECONDS=600 for the full 10 minutes`);
  const result = await runSoak({
    seconds: SECONDS,
    streams: 8,
    partials: PARTIALS,
    gapsS: PARTIALS ? undefined : [2, 3, 2.5],
    serverEnv: PARTIALS ? {} : { KOL_FINAL_BEAM_SIZE: '1' },
    drainGraceSeconds: 120,
  });
  for (const line of formatSoakTable(result).split('\n')) t.diagnostic(line);
  assert.deepEqual(result.abnormalCloses, [], 'every session closed with 1000');
  assert.ok(result.finals > 0, 'finals were delivered');
  assert.deepEqual(Object.keys(result.errors), [], 'no errors reached the clients');
  assert.ok(Number.isFinite(result.growthMiB), 'enough samples after the warm-up');
  assert.ok(result.flat, `server RSS flat (growth ${result.growthMiB.toFixed(1)} MiB, slope ${result.slopeMiBPerMin.toFixed(2)} MiB/min)`);
});

/**
 * Stages everything bench/gpu/check.sh needs on a bare GPU host (no Node.js, no network, only a copy of
 * the working tree of at most 64 MiB) into the ignored folder .gpu-payload/:
 *
 *   whisper.cpp.tar.xz      the pinned whisper.cpp with our SOURCE_PATCHES applied (build.ts's staging),
 *                           without history, models, tests, bindings or backends we never build
 *   ggml-base-q5_1.bin      real Whisper base weights small enough to travel
 *   make_random_ggml.py     writes the random-weight large-v3-turbo there
 *   clips/*.wav             a few shared clips, as the exact bytes kol sends whisper-server
 *   manifest.json           CMake flags (build.ts's), request fields (client.ts's), and the text the CPU
 *                           engine gives for each clip with the same model file and fields
 *
 *   bash bench/gpu/prepare.sh        (node --import tsx bench/gpu/prepare.ts)
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { decodeAudioFile, encodeWav16k } from '../../engine/audio/wav.js';
import { REPO_ROOT } from '../../engine/paths.js';
import { normalizeText } from '../../engine/wer.js';
import { cmakeFlags, pinnedSourceDir, sourceVersion, stageSource } from '../../engine/whisper/build.js';
import { audioCtxFor, inferenceFields, requestInference } from '../../engine/whisper/client.js';
import { createLocalWorkers } from '../../engine/whisper/local-workers.js';
import type { TranscribeOptions } from '../../engine/whisper/types.js';
import { DEFAULT_SEGMENTER_OPTIONS } from '../../engine/vad/segmenter.js';
import { createLogger, type Logger } from '../../engine/log.js';
import { benchEngine } from '../lib/engine.js';
import { DEFAULT_CONFIG } from '../../server/config.js';
import { assetPath, clips } from '../../corpus/assets.js';
import { rotatedBenchStreams } from '../../corpus/streams.js';
import { SAMPLE_RATE } from '../../engine/audio/format.js';
import { FRAME_SAMPLES } from '../../engine/vad/frames.js';

export const PAYLOAD_DIR = path.join(REPO_ROOT, '.gpu-payload');
/** What may travel to the GPU host: the working tree and the payload together. */
const TRAVEL_LIMIT_BYTES = 64 * 1024 * 1024;
const MODEL = assetPath('models', 'ggml-base-q5_1.bin');
const RANDOM_MODEL_TOOL = path.join(REPO_ROOT, '..', 'shared', 'tools', 'make_random_ggml.py');
/** Short clips (about 2–11 s, 0.8 MB together): Hebrew, and jfk.wav as a known English text. */
const CLIPS = [
  ['he', 'Corona4_0007'],
  ['he', 'Hashlama117_0009'],
  ['he', 'Mom3_0007'],
  ['he', 'Lod_0053'],
  ['en', 'jfk'],
] as const;
/** The request kol sends for a final: beam 5, full 30 s window, temperature fallback on. */
const FINAL_OPTIONS: TranscribeOptions = { beamSize: 5 };
/** Folders of the whisper.cpp tree that whisper-server's build never reads (CMake adds them only when asked). */
const PRUNE = [
  'bindings', 'tests', 'samples', 'media', 'scripts', 'ci', 'grammars', '.github', '.devops',
  ...['talk-llama', 'wchess', 'whisper.android', 'whisper.android.java', 'whisper.objc', 'whisper.swiftui', 'whisper.nvim',
    'lsp', 'stream', 'command', 'whisper.wasm', 'stream.wasm', 'command.wasm', 'bench.wasm', 'addon.node', 'python', 'sycl'].map((d) => `examples/${d}`),
  ...['blas', 'cann', 'hip', 'metal', 'musa', 'rpc', 'virtgpu', 'sycl', 'vulkan', 'webgpu', 'zdnn', 'opencl', 'hexagon', 'zendnn', 'openvino', 'kompute']
    .map((b) => `ggml/src/ggml-${b}`),
];
/** Files inside pruned folders that CMake still reads at configure time. */
const KEEP = ['bindings/javascript/package-tmpl.json'];
/** Strings that exercise each rule of normalizeText, so check.py can prove its port agrees. */
const NORMALISATION_PROBES = ['שָׁלוֹם, עוֹלָם!', 'צה״ל ו-"צה"ל" — ג׳ירפה', 'Ask not, what YOUR country can do…', '\u200Fשלום\u200E  עולם?', 'don\u2019t stop: 3 × 4 = 12'];

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function bytesOf(target: string): number {
  const stat = fs.lstatSync(target, { throwIfNoEntry: false });
  if (!stat || stat.isSymbolicLink()) return 0;
  if (!stat.isDirectory()) return stat.size;
  return fs.readdirSync(target).reduce((sum, name) => sum + bytesOf(path.join(target, name)), 0);
}

/** Bytes of the files that travel besides the payload: tracked, and untracked but not ignored. */
async function workingTreeBytes(): Promise<number> {
  const { stdout } = await execa('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT });
  return stdout.split('\0').filter(Boolean).reduce((sum, file) => sum + bytesOf(path.join(REPO_ROOT, file)), 0);
}

async function stageWhisperSource(dest: string, log: Logger): Promise<{ version: string; patches: string[]; prunedFrom: number; bytes: number }> {
  const sourceDir = path.resolve(process.env.WHISPER_CPP_SRC ?? pinnedSourceDir());
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kol-gpu-payload-'));
  try {
    const tree = path.join(tmp, 'whisper.cpp');
    const patches = stageSource(sourceDir, tree, log);
    const prunedFrom = bytesOf(tree);
    const kept = KEEP.map((file) => [file, fs.readFileSync(path.join(tree, file))] as const);
    for (const dir of PRUNE) fs.rmSync(path.join(tree, dir), { recursive: true, force: true });
    for (const [file, data] of kept) {
      fs.mkdirSync(path.dirname(path.join(tree, file)), { recursive: true });
      fs.writeFileSync(path.join(tree, file), data);
    }
    await execa('tar', ['-cJf', dest, '-C', tmp, 'whisper.cpp'], { env: { XZ_OPT: '-9' } });
    return { version: sourceVersion(sourceDir), patches, prunedFrom, bytes: bytesOf(tree) };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

interface ClipReference {
  name: string;
  language: string;
  wav: string;
  seconds: number;
  /** The reduced window kol would use for this clip (finalAudioCtx "auto"), for the history check. */
  audioCtx: number;
  cpuText: string;
  cpuNormalised: string;
  /** The full-window text again, after a reduced-window request on the same worker: must not change. */
  cpuTextAfterReduced: string;
}

/** Transcribes the clips with kol's CPU engine, the same model file and the fields check.py sends. */
async function cpuReference(clipsDir: string, log: Logger): Promise<{ clips: ClipReference[]; engine: unknown; threads: number }> {
  const engine = await benchEngine(false, log);
  const threads = Math.max(1, Math.min(8, os.availableParallelism()));
  const [worker] = createLocalWorkers({ binary: engine.binary, model: MODEL, count: 1, threads, logger: log });
  await worker.start();
  const clips: ClipReference[] = [];
  try {
    for (const [language, name] of CLIPS) {
      const { pcm } = await decodeAudioFile(assetPath('audio', language, `${name}.wav`));
      const wav = path.join(clipsDir, `${name}.wav`);
      fs.writeFileSync(wav, encodeWav16k(pcm));
      const options = { ...FINAL_OPTIONS, language };
      const full = await requestInference(worker.baseUrl, worker.id, pcm, options);
      await requestInference(worker.baseUrl, worker.id, pcm, { ...options, audioCtx: 'auto' });
      const again = await requestInference(worker.baseUrl, worker.id, pcm, options);
      clips.push({
        name,
        language,
        wav: path.relative(PAYLOAD_DIR, wav),
        seconds: pcm.length / SAMPLE_RATE,
        audioCtx: audioCtxFor(pcm.length),
        cpuText: full.text,
        cpuNormalised: normalizeText(full.text),
        cpuTextAfterReduced: again.text,
      });
      process.stderr.write(`prepare: ${name} (${(pcm.length / SAMPLE_RATE).toFixed(1)} s): ${full.text}\n`);
    }
  } finally {
    await worker.stop();
  }
  const buildJson = path.join(path.dirname(path.dirname(engine.binary)), 'build.json');
  return { clips, engine: fs.existsSync(buildJson) ? JSON.parse(fs.readFileSync(buildJson, 'utf8')) : { binary: engine.binary }, threads };
}

/**
 * What the streams-per-GPU estimate takes from the pipeline, measured or set here (docs/DEPLOY.md,
 * "Streams per GPU"): how often one speaker produces a final, how much audio a final carries, and how
 * long after the end of speech its transcription starts.
 */
async function sizingInputs() {
  const [stream] = await rotatedBenchStreams(clips('he'), 1);
  const speech = stream.utterances.reduce((sum, u) => sum + (u.end - u.start), 0) / stream.utterances.length;
  const vadFrameS = FRAME_SAMPLES / SAMPLE_RATE;
  return {
    latencyTargetS: 1,
    // The bench's Hebrew stream: 12 utterances with 0.9–2.0 s pauses (corpus/streams.ts).
    secondsPerFinal: stream.seconds / stream.utterances.length,
    // An utterance plus the segmenter's pre-roll and tail.
    finalAudioSeconds: speech + (DEFAULT_SEGMENTER_OPTIONS.preRollMs + DEFAULT_SEGMENTER_OPTIONS.tailPadMs) / 1000,
    // A final starts inside the pause (once it outlasts the tail) only when a worker is free then
    // (engine/stream.ts, updateSpeculation); under load, at the p95, it starts when the endpoint
    // pause has passed, seen one VAD frame later.
    speculativeStartS: DEFAULT_SEGMENTER_OPTIONS.tailPadMs / 1000 + vadFrameS,
    finalStartS: DEFAULT_CONFIG.endpointMs / 1000 + vadFrameS,
    // Headroom: the workers' target busy fraction, so finals rarely queue behind each other.
    targetBusy: 0.7,
  };
}

async function main(): Promise<void> {
  const log = createLogger();
  fs.rmSync(PAYLOAD_DIR, { recursive: true, force: true });
  const clipsDir = path.join(PAYLOAD_DIR, 'clips');
  fs.mkdirSync(clipsDir, { recursive: true });

  process.stderr.write('prepare: staging the patched whisper.cpp source\n');
  const source = await stageWhisperSource(path.join(PAYLOAD_DIR, 'whisper.cpp.tar.xz'), log);
  fs.copyFileSync(MODEL, path.join(PAYLOAD_DIR, path.basename(MODEL)));
  fs.copyFileSync(RANDOM_MODEL_TOOL, path.join(PAYLOAD_DIR, path.basename(RANDOM_MODEL_TOOL)));

  process.stderr.write('prepare: CPU reference texts (kol\'s CPU engine, ggml-base-q5_1.bin)\n');
  const reference = await cpuReference(clipsDir, log);

  const benchFields = (beam: number) => inferenceFields(0, { beamSize: beam, temperatureFallback: false });
  const manifest = {
    createdAt: new Date().toISOString(),
    whisperCpp: { version: source.version, patches: source.patches, archive: 'whisper.cpp.tar.xz', archiveSha256: sha256(path.join(PAYLOAD_DIR, 'whisper.cpp.tar.xz')) },
    // build.ts's flags; check.sh adds CMAKE_CUDA_ARCHITECTURES for the chip it finds.
    cmake: {
      cpu: cmakeFlags(false, []),
      cuda: cmakeFlags(true, []).filter((f) => !f.startsWith('-DCMAKE_CUDA_ARCHITECTURES=')),
    },
    realWeights: {
      model: path.basename(MODEL),
      sha256: sha256(MODEL),
      // Per clip the language differs; everything else is kol's final request.
      fields: inferenceFields(0, FINAL_OPTIONS),
      cpuEngine: reference.engine,
      cpuThreads: reference.threads,
      clips: reference.clips,
    },
    // Timing with random weights: temperature fallback off (a random model fails every check and would
    // decode six times), full window; only beam_size differs.
    bench: { fields: { '1': benchFields(1), '5': benchFields(5) } },
    sizing: await sizingInputs(),
    normalisation: [...NORMALISATION_PROBES, ...reference.clips.map((c) => c.cpuText)].map((text) => ({ text, normalised: normalizeText(text) })),
  };
  fs.writeFileSync(path.join(PAYLOAD_DIR, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  const payload = bytesOf(PAYLOAD_DIR);
  const tree = await workingTreeBytes();
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MiB`;
  process.stderr.write(
    `prepare: whisper.cpp ${source.version}, patches ${source.patches.join(', ') || 'none'}; source ${mib(source.prunedFrom)} → ${mib(source.bytes)} pruned → ${mib(bytesOf(path.join(PAYLOAD_DIR, 'whisper.cpp.tar.xz')))} xz\n` +
      `prepare: payload ${mib(payload)} + working tree ${mib(tree)} = ${mib(payload + tree)} of ${mib(TRAVEL_LIMIT_BYTES)}\n`,
  );
  if (payload + tree > TRAVEL_LIMIT_BYTES) {
    throw new Error(`The working tree and ${PAYLOAD_DIR} come to ${mib(payload + tree)}, over the ${mib(TRAVEL_LIMIT_BYTES)} that can travel.`);
  }
}

await main();

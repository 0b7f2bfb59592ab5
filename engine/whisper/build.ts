/**
 * Builds whisper.cpp's `whisper-server` from source into a cache folder keyed by source version and
 * build flags, so the second call is instant. The pinned source is whisper.cpp 1.9.1 as carried by the
 * npm package nodejs-whisper@0.3.1; WHISPER_CPP_SRC points at another tree (e.g. a newer git tag).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { KolError } from '../errors.js';
import { SILENT_LOGGER, type Logger } from '../log.js';
import { cacheDir } from '../paths.js';

/** A change to the whisper.cpp source, applied to the staged copy: all its edits or none. */
interface SourcePatch {
  name: string;
  file: string;
  edits: ReadonlyArray<{ find: string; replace: string }>;
}

/**
 * Our changes to the whisper.cpp source, applied to a staged copy at build time (the pinned tree in
 * node_modules is never modified). A patch whose anchor is missing (another WHISPER_CPP_SRC) is
 * skipped with a warning rather than failing the build.
 */
export const SOURCE_PATCHES: readonly SourcePatch[] = [
  {
    name: 'reseed-first-decoder',
    file: 'src/whisper.cpp',
    // Beam search draws its candidates from each decoder's RNG. whisper_full reseeds decoders 1..n
    // on every call but decoder 0 only when the state is created, so in a long-running
    // whisper-server the same audio gave different text depending on the requests before it
    // (Hebrew WER 0.27–0.37 over the same 12 clips). Reseeding it makes every request reproducible.
    edits: [
      {
        find: '        decoder.rng = std::mt19937(j);\n    }\n',
        replace: '        decoder.rng = std::mt19937(j);\n    }\n    state->decoders[0].rng = std::mt19937(0); // kol: reproducible beam search per request\n',
      },
    ],
  },
  {
    name: 'mask-cross-attention-padding',
    file: 'src/whisper.cpp',
    // With flash attention the decoder's cross-attention reads the encoder's keys padded to a
    // multiple of 256 (1500 → 1536; an audio_ctx of 400 → 512) with no mask, so the padding cells
    // take part in every softmax. They are zero in a fresh process, but a request with a smaller
    // audio_ctx leaves its keys there, and later requests on the same worker then gave other text
    // (engine/whisper/pool.test.ts). Masking the padding makes results independent of earlier
    // requests, and stops a reduced audio_ctx from diluting attention with up to 255 empty keys.
    edits: [
      {
        find: '    struct ggml_tensor * KQ_mask_f16 = ggml_cast(ctx0, KQ_mask, GGML_TYPE_F16);\n',
        replace:
          '    struct ggml_tensor * KQ_mask_f16 = ggml_cast(ctx0, KQ_mask, GGML_TYPE_F16);\n' +
          '\n' +
          '    // kol: masks the padding of the cross-attention keys (set in whisper_decode_internal)\n' +
          '    struct ggml_tensor * KQ_mask_cross = ggml_new_tensor_3d(ctx0, GGML_TYPE_F32, n_audio_ctx_pad, n_tokens, 1);\n' +
          '    ggml_set_name(KQ_mask_cross, "KQ_mask_cross");\n' +
          '    ggml_set_input(KQ_mask_cross);\n' +
          '    struct ggml_tensor * KQ_mask_cross_f16 = ggml_cast(ctx0, KQ_mask_cross, GGML_TYPE_F16);\n',
      },
      {
        find: 'cur = ggml_flash_attn_ext(ctx0, Q, Kcross, Vcross, nullptr, KQscale, 0.0f, 0.0f);',
        replace: 'cur = ggml_flash_attn_ext(ctx0, Q, Kcross, Vcross, KQ_mask_cross_f16, KQscale, 0.0f, 0.0f);',
      },
      {
        find: '            ggml_backend_tensor_set(KQ_mask, wstate.inp_mask.data(), 0, ggml_nelements(KQ_mask)*sizeof(float));\n        }\n',
        replace:
          '            ggml_backend_tensor_set(KQ_mask, wstate.inp_mask.data(), 0, ggml_nelements(KQ_mask)*sizeof(float));\n' +
          '        }\n' +
          '\n' +
          '        // kol: only the encoder positions of this request take part in cross-attention\n' +
          '        if (struct ggml_tensor * KQ_mask_cross = ggml_graph_get_tensor(gf, "KQ_mask_cross")) {\n' +
          '            const int n_audio_ctx = wstate.exp_n_audio_ctx > 0 ? wstate.exp_n_audio_ctx : hparams.n_audio_ctx;\n' +
          '            const int n_pad = KQ_mask_cross->ne[0];\n' +
          '            std::vector<float> mask(ggml_nelements(KQ_mask_cross), 0.0f);\n' +
          '            for (int j = 0; j < n_tokens; ++j) {\n' +
          '                for (int i = n_audio_ctx; i < n_pad; ++i) mask[j*n_pad + i] = -INFINITY;\n' +
          '            }\n' +
          '            ggml_backend_tensor_set(KQ_mask_cross, mask.data(), 0, ggml_nbytes(KQ_mask_cross));\n' +
          '        }\n',
      },
    ],
  },
  {
    name: 'mask-encoder-padding',
    file: 'src/whisper.cpp',
    // The same flaw in the encoder: with flash attention its self-attention reads keys and values
    // padded to a multiple of 256 with no mask. With a reduced audio_ctx (320 → 512) those cells
    // hold whatever a longer earlier request left there, so the text depended on the worker's
    // history, and even when they are zero they dilute attention: a window sized to the audio lost
    // many words (engine/whisper/pool.test.ts; README "Decoding choices"). Windows that are a
    // multiple of 256 have no padding and are unchanged.
    edits: [
      {
        find: '    const float KQscale = 1.0f/sqrtf(float(n_state_head));\n\n    // ===================================================================\n    // NOTE: experimenting with partial evaluation of the encoder (ignore)\n',
        replace:
          '    const float KQscale = 1.0f/sqrtf(float(n_state_head));\n' +
          '\n' +
          '    // kol: masks the padding of the self-attention keys (set in whisper_encode_internal)\n' +
          '    struct ggml_tensor * KQ_mask_enc_f16 = nullptr;\n' +
          '    if (wctx.params.flash_attn && n_ctx_pad > n_ctx) {\n' +
          '        struct ggml_tensor * KQ_mask_enc = ggml_new_tensor_2d(ctx0, GGML_TYPE_F32, n_ctx_pad, n_ctx);\n' +
          '        ggml_set_name(KQ_mask_enc, "KQ_mask_enc");\n' +
          '        ggml_set_input(KQ_mask_enc);\n' +
          '        KQ_mask_enc_f16 = ggml_cast(ctx0, KQ_mask_enc, GGML_TYPE_F16);\n' +
          '    }\n' +
          '\n' +
          '    // ===================================================================\n' +
          '    // NOTE: experimenting with partial evaluation of the encoder (ignore)\n',
      },
      {
        find: 'cur = ggml_flash_attn_ext(ctx0, Q, K, V, nullptr, KQscale, 0.0f, 0.0f);',
        replace: 'cur = ggml_flash_attn_ext(ctx0, Q, K, V, KQ_mask_enc_f16, KQscale, 0.0f, 0.0f);',
      },
      {
        find: '        ggml_cgraph * gf = whisper_build_graph_encoder(wctx, wstate);\n\n        if (!ggml_backend_sched_alloc_graph(sched, gf)) {\n            // should never happen as we pre-allocate the memory\n            return false;\n        }\n',
        replace:
          '        ggml_cgraph * gf = whisper_build_graph_encoder(wctx, wstate);\n' +
          '\n' +
          '        if (!ggml_backend_sched_alloc_graph(sched, gf)) {\n' +
          '            // should never happen as we pre-allocate the memory\n' +
          '            return false;\n' +
          '        }\n' +
          '\n' +
          '        // kol: only this request\'s encoder positions take part in self-attention\n' +
          '        if (struct ggml_tensor * KQ_mask_enc = ggml_graph_get_tensor(gf, "KQ_mask_enc")) {\n' +
          '            const int n_kv = KQ_mask_enc->ne[0];\n' +
          '            const int n_q  = KQ_mask_enc->ne[1];\n' +
          '            std::vector<float> mask(ggml_nelements(KQ_mask_enc), 0.0f);\n' +
          '            for (int j = 0; j < n_q; ++j) {\n' +
          '                for (int i = n_q; i < n_kv; ++i) mask[j*n_kv + i] = -INFINITY;\n' +
          '            }\n' +
          '            ggml_backend_tensor_set(KQ_mask_enc, mask.data(), 0, ggml_nbytes(KQ_mask_enc));\n' +
          '        }\n',
      },
    ],
  },
];

/** Default CUDA architectures: 86 = RTX 30xx/A10, 89 = RTX 40xx/L4, 90 = H100/H200. */
export const DEFAULT_CUDA_ARCHS = ['86', '89', '90'];

/** KOL_CUDA_ARCHS (comma-separated) or DEFAULT_CUDA_ARCHS: the build the Docker image carries uses the same. */
export function defaultCudaArchitectures(): string[] {
  const fromEnv = process.env.KOL_CUDA_ARCHS?.split(',').map((s) => s.trim()).filter(Boolean);
  return fromEnv && fromEnv.length > 0 ? fromEnv : DEFAULT_CUDA_ARCHS;
}

export interface BuildOptions {
  /** Build with CUDA. Default: when `nvcc` is on the PATH. */
  cuda?: boolean;
  cudaArchitectures?: string[];
  /** whisper.cpp source tree. Default: WHISPER_CPP_SRC, else the pinned copy in nodejs-whisper. */
  sourceDir?: string;
  /** Parallel compile jobs. Default: the number of cores. */
  jobs?: number;
  /** Rebuild even when a cached binary exists. */
  force?: boolean;
  onProgress?: (event: BuildProgress) => void;
  /** Where a warning (a source patch that does not apply) goes; default: nowhere. */
  logger?: Logger;
}

export type BuildProgress =
  | { stage: 'cached'; binary: string }
  | { stage: 'configure'; buildDir: string; flags: string[] }
  | { stage: 'compile'; percent: number; line: string }
  | { stage: 'done'; binary: string; seconds: number };

export interface EngineBuild {
  binary: string;
  version: string;
  cuda: boolean;
  /** The folder the build lives in; its name carries the version and a hash of the flags. */
  dir: string;
}

/** The whisper.cpp tree pinned by package-lock.json: the copy inside the nodejs-whisper package. */
export function pinnedSourceDir(): string {
  return path.join(path.dirname(pinnedPackageJson()), 'cpp', 'whisper.cpp');
}

function pinnedPackageJson(): string {
  return createRequire(import.meta.url).resolve('nodejs-whisper/package.json');
}

function pinnedPackageVersion(): string {
  return (JSON.parse(fs.readFileSync(pinnedPackageJson(), 'utf8')) as { version: string }).version;
}

/** Reads the version from the tree's CMakeLists.txt (`project("whisper.cpp" VERSION x.y.z)`). */
export function sourceVersion(sourceDir: string): string {
  const cmake = path.join(sourceDir, 'CMakeLists.txt');
  if (!fs.existsSync(cmake)) {
    throw new KolError('engine_source_missing', `No whisper.cpp source at ${sourceDir} (CMakeLists.txt missing). Run npm install, or set WHISPER_CPP_SRC to a whisper.cpp checkout.`);
  }
  const match = /project\("whisper\.cpp"\s+VERSION\s+([\d.]+)\)/.exec(fs.readFileSync(cmake, 'utf8'));
  return match ? match[1] : 'unknown';
}

export function hasNvcc(): boolean {
  return findOnPath('nvcc') !== null;
}

function findOnPath(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return null;
}

/** The CMake flags for a build; also what the cache key hashes. */
export function cmakeFlags(cuda: boolean, cudaArchitectures: string[]): string[] {
  const flags = [
    '-DCMAKE_BUILD_TYPE=Release',
    '-DBUILD_SHARED_LIBS=OFF',
    '-DWHISPER_BUILD_TESTS=OFF',
    '-DWHISPER_BUILD_EXAMPLES=ON',
    '-DWHISPER_SDL2=OFF',
    '-DWHISPER_CURL=OFF',
    // Portable: runs on any x86-64 with AVX2. Measured against it, by hand: on an AMD EPYC a native
    // AVX-512 build was slower; on an Intel Xeon with AMX, an AVX-512 build was 5–10 % faster, and a
    // native one (AMX for q8_0) crashed whisper-server 1.9.1 on its first request.
    '-DGGML_NATIVE=OFF',
    '-DGGML_AVX=ON',
    '-DGGML_AVX2=ON',
    '-DGGML_FMA=ON',
    '-DGGML_F16C=ON',
  ];
  if (cuda) flags.push('-DGGML_CUDA=1', `-DCMAKE_CUDA_ARCHITECTURES=${cudaArchitectures.join(';')}`);
  return flags;
}

/** Where the build for these flags lives (whether or not it exists yet). */
export function engineBuildDir(options: BuildOptions = {}): { dir: string; version: string; cuda: boolean; flags: string[]; sourceDir: string } {
  const sourceDir = path.resolve(options.sourceDir ?? process.env.WHISPER_CPP_SRC ?? pinnedSourceDir());
  const version = sourceVersion(sourceDir);
  const cuda = options.cuda ?? hasNvcc();
  const flags = cmakeFlags(cuda, options.cudaArchitectures ?? defaultCudaArchitectures());
  // The pinned tree is the same in every clone (its npm package's version says which): a fresh clone
  // reuses the build. Another tree may carry local changes under the same version: its path joins the key.
  const source = sourceDir === path.resolve(pinnedSourceDir()) ? `nodejs-whisper@${pinnedPackageVersion()}` : sourceDir;
  const key = createHash('sha256').update(JSON.stringify({ flags, source, arch: os.arch(), patches: SOURCE_PATCHES })).digest('hex').slice(0, 10);
  const dir = path.join(cacheDir(), 'engine', `whisper.cpp-${version}-${cuda ? 'cuda' : 'cpu'}-${key}`);
  return { dir, version, cuda, flags, sourceDir };
}

export function binaryPath(buildDir: string, name = 'whisper-server'): string {
  return path.join(buildDir, 'bin', name);
}

/** Returns the cached build when present, else compiles it (one build at a time per machine). */
export async function buildEngine(options: BuildOptions = {}): Promise<EngineBuild> {
  const { dir, version, cuda, flags, sourceDir } = engineBuildDir(options);
  const binary = binaryPath(dir);
  const report = options.onProgress ?? (() => {});
  if (!options.force && fs.existsSync(binary)) {
    report({ stage: 'cached', binary });
    return { binary, version, cuda, dir };
  }
  checkBuildTools(cuda);

  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const release = await acquireLock(`${dir}.lock`);
  try {
    // Another process may have finished the same build while we waited for the lock.
    if (!options.force && fs.existsSync(binary)) {
      report({ stage: 'cached', binary });
      return { binary, version, cuda, dir };
    }
    const started = Date.now();
    const work = `${dir}.build-${process.pid}`;
    fs.rmSync(work, { recursive: true, force: true });
    const staged = path.join(work, 'src');
    const out = path.join(work, 'build');
    const applied = stageSource(sourceDir, staged, options.logger);
    report({ stage: 'configure', buildDir: work, flags });
    await runLogged(execa('cmake', ['-S', staged, '-B', out, ...flags], { all: true }), report, 'configure');
    const jobs = String(options.jobs ?? os.availableParallelism());
    const targets = ['whisper-server'];
    await runLogged(execa('cmake', ['--build', out, '--config', 'Release', '-j', jobs, '--target', ...targets], { all: true }), report, 'compile');

    // Keep only the binaries: the object files are ~100 MB we never need again.
    const done = `${dir}.staged-${process.pid}`;
    fs.rmSync(done, { recursive: true, force: true });
    fs.mkdirSync(path.join(done, 'bin'), { recursive: true });
    for (const name of targets) fs.copyFileSync(binaryPath(out, name), binaryPath(done, name));
    fs.writeFileSync(path.join(done, 'build.json'), JSON.stringify({ version, cuda, flags, sourceDir, patches: applied, builtAt: new Date().toISOString() }, null, 2));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(done, dir);
    fs.rmSync(work, { recursive: true, force: true });
    report({ stage: 'done', binary, seconds: (Date.now() - started) / 1000 });
    return { binary, version, cuda, dir };
  } finally {
    release();
  }
}

/**
 * Copies the source tree (about 35 MB) and applies SOURCE_PATCHES to the copy; returns the names of
 * those applied. Also used to stage the source a GPU host builds from (bench/gpu/prepare.ts).
 */
export function stageSource(sourceDir: string, dest: string, logger: Logger = SILENT_LOGGER): string[] {
  const applied: string[] = [];
  fs.cpSync(sourceDir, dest, { recursive: true, filter: (src) => !/[\\/](\.git|build|models)$/.test(src) || src === sourceDir });
  for (const patch of SOURCE_PATCHES) {
    const file = path.join(dest, patch.file);
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (!patch.edits.every((edit) => text.split(edit.find).length === 2)) {
      logger.warn({ patch: patch.name, file: patch.file }, 'whisper.cpp source patch does not apply to this tree; building without it');
      continue;
    }
    fs.writeFileSync(file, patch.edits.reduce((patched, edit) => patched.replace(edit.find, () => edit.replace), text));
    applied.push(patch.name);
  }
  return applied;
}

function checkBuildTools(cuda: boolean): void {
  const needed: Array<[string, string]> = [
    ['cmake', 'cmake (Debian/Ubuntu: apt-get install cmake; macOS: brew install cmake)'],
    ['c++', 'a C++ compiler (Debian/Ubuntu: apt-get install build-essential; macOS: xcode-select --install)'],
    ['cc', 'a C compiler (Debian/Ubuntu: apt-get install build-essential)'],
  ];
  if (cuda) needed.push(['nvcc', 'the CUDA toolkit (nvcc), or build for CPU without --cuda']);
  const missing = needed.filter(([cmd]) => findOnPath(cmd) === null);
  if (missing.length > 0) {
    throw new KolError('build_tool_missing', `Building whisper.cpp needs ${missing.map(([, what]) => what).join('; ')}. Install it and run \`kol build-engine\` again.`);
  }
}

async function runLogged(child: ResultPromise<{ all: true }>, report: (e: BuildProgress) => void, stage: 'configure' | 'compile'): Promise<void> {
  const tail: string[] = [];
  child.all?.setEncoding('utf8');
  let pending = '';
  child.all?.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      const pct = /^\[\s*(\d+)%\]/.exec(line);
      if (stage === 'compile' && pct) report({ stage: 'compile', percent: Number(pct[1]), line: line.trim() });
    }
  });
  try {
    await child;
  } catch (err) {
    throw new KolError('build_failed', `whisper.cpp ${stage} failed. Last output:\n${tail.join('\n')}`, { cause: err });
  }
}

/** A lock folder (mkdir is atomic). A lock left by a dead process is taken over. */
async function acquireLock(lockDir: string): Promise<() => void> {
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      return () => fs.rmSync(lockDir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(fs.readFileSync(path.join(lockDir, 'pid'), { encoding: 'utf8', flag: 'a+' }) || 0);
      if (owner && !isAlive(owner)) fs.rmSync(lockDir, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The models kol knows by name, where they are cached, and how a name or a path becomes a model file.
 * Which model to use (KOL_MODEL, --model, the host default) is the caller's business.
 *
 * Sizes and checksums, as published. Hugging Face cannot be reached from where this was written, so
 * each figure was read from a stored copy of its source; where none was found it is left undefined.
 * - sha256 and byte size from the Git LFS pointers of ggerganov/whisper.cpp on Hugging Face: commit
 *   98aa99a (large-v3-turbo, large-v3-turbo-q5_0) and 0b364b5 (base-q8_0, large-v3-turbo-q8_0).
 * - sha256 from the files' LFS details pages there: tiny, base, small-q8_0. small-q8_0's size is the
 *   LFS pointer of a mirror holding the same sha256.
 * - Sizes of tiny, base and small, small's sha256, and ivrit-turbo's size and sha256 (revision
 *   2130c78): several independent projects that pin these files, all agreeing.
 * - sha1 from whisper.cpp's models/README.md (tiny, base, small, large-v3-turbo, large-v3-turbo-q5_0)
 *   and the Hugging Face repository's README (base-q8_0, small-q8_0). large-v3-turbo-q8_0's SHA-1 was
 *   found in one unofficial copy only and is left out; its SHA-256 is checked.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KolError } from '../errors.js';
import { cacheDir } from '../paths.js';
import { downloadFile, partialPath, type DownloadProgress } from './download.js';

export interface ModelEntry {
  /** What people type: `kol models pull small`, `KOL_MODEL=small`. */
  name: string;
  url: string;
  /** The file's name in the model cache (the URL's own name can be as vague as ggml-model.bin). */
  fileName: string;
  /** Published size in bytes, undefined where none was found. */
  sizeBytes?: number;
  /** Published digests, lower-case hex, undefined where none was found. */
  sha256?: string;
  sha1?: string;
  description: string;
  /** The model a host uses when none is named: with a GPU, or on CPU alone. */
  defaultFor?: 'gpu' | 'cpu';
}

const WHISPER_CPP = 'https://huggingface.co/ggerganov/whisper.cpp/resolve/main';

export const MODELS: readonly ModelEntry[] = [
  {
    name: 'ivrit-turbo',
    // Pinned to the revision the size and digest below belong to; `main` may move on.
    url: 'https://huggingface.co/ivrit-ai/whisper-large-v3-turbo-ggml/resolve/2130c78e4a9cb4914cc4df91a1c3031407789705/ggml-model.bin',
    fileName: 'ggml-ivrit-large-v3-turbo.bin',
    sizeBytes: 1_624_555_275,
    sha256: 'c8090411113357097bfafc2b8e228ec1639fa7f5fe4ecb5d054ac0ccef8641b1',
    description: 'ivrit.ai Hebrew fine-tune of large-v3-turbo (f16)',
    defaultFor: 'gpu',
  },
  {
    name: 'large-v3-turbo',
    url: `${WHISPER_CPP}/ggml-large-v3-turbo.bin`,
    fileName: 'ggml-large-v3-turbo.bin',
    sizeBytes: 1_624_555_275,
    sha256: '1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69',
    sha1: '4af2b29d7ec73d781377bfd1758ca957a807e941',
    description: 'OpenAI large-v3-turbo, multilingual (f16)',
  },
  {
    name: 'large-v3-turbo-q8_0',
    url: `${WHISPER_CPP}/ggml-large-v3-turbo-q8_0.bin`,
    fileName: 'ggml-large-v3-turbo-q8_0.bin',
    sizeBytes: 874_188_075,
    sha256: '317eb69c11673c9de1e1f0d459b253999804ec71ac4c23c17ecf5fbe24e259a1',
    description: 'large-v3-turbo quantised to 8 bits',
  },
  {
    name: 'large-v3-turbo-q5_0',
    url: `${WHISPER_CPP}/ggml-large-v3-turbo-q5_0.bin`,
    fileName: 'ggml-large-v3-turbo-q5_0.bin',
    sizeBytes: 574_041_195,
    sha256: '394221709cd5ad1f40c46e6031ca61bce88931e6e088c188294c6d5a55ffa7e2',
    sha1: 'e050f7970618a659205450ad97eb95a18d69c9ee',
    description: 'large-v3-turbo quantised to 5 bits',
  },
  {
    name: 'small',
    url: `${WHISPER_CPP}/ggml-small.bin`,
    fileName: 'ggml-small.bin',
    sizeBytes: 487_601_967,
    sha256: '1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b',
    sha1: '55356645c2b361a969dfd0ef2c5a50d530afd8d5',
    description: 'OpenAI small, multilingual (f16)',
  },
  {
    name: 'small-q8_0',
    url: `${WHISPER_CPP}/ggml-small-q8_0.bin`,
    fileName: 'ggml-small-q8_0.bin',
    sizeBytes: 264_464_607,
    sha256: '49c8fb02b65e6049d5fa6c04f81f53b867b5ec9540406812c643f177317f779f',
    sha1: 'bcad8a2083f4e53d648d586b7dbc0cd673d8afad',
    description: 'small quantised to 8 bits',
  },
  {
    name: 'base',
    url: `${WHISPER_CPP}/ggml-base.bin`,
    fileName: 'ggml-base.bin',
    sizeBytes: 147_951_465,
    sha256: '60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe',
    sha1: '465707469ff3a37a2b9b8d8f89f2f99de7299dac',
    description: 'OpenAI base, multilingual (f16)',
  },
  {
    name: 'base-q8_0',
    url: `${WHISPER_CPP}/ggml-base-q8_0.bin`,
    fileName: 'ggml-base-q8_0.bin',
    sizeBytes: 81_768_585,
    sha256: 'c577b9a86e7e048a0b7eada054f4dd79a56bbfa911fbdacf900ac5b567cbb7d9',
    sha1: '7bb89bb49ed6955013b166f1b6a6c04584a20fbe',
    description: 'base quantised to 8 bits: fast on CPU, weak on Hebrew',
    defaultFor: 'cpu',
  },
  {
    name: 'tiny',
    url: `${WHISPER_CPP}/ggml-tiny.bin`,
    fileName: 'ggml-tiny.bin',
    sizeBytes: 77_691_713,
    sha256: 'be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21',
    sha1: 'bd577a113a864445d4c299885e0cb97d4ba92b5f',
    description: 'OpenAI tiny, multilingual (f16): for plumbing, not for Hebrew',
  },
];

export function findModel(name: string): ModelEntry | undefined {
  return MODELS.find((m) => m.name === name);
}

/** The entry called `name`, or `model_unknown` listing the names there are. */
export function requireModel(name: string): ModelEntry {
  const entry = findModel(name);
  if (entry) return entry;
  throw unknownModel(name);
}

export function defaultModelName(host: { gpu: boolean }): string {
  const wanted = host.gpu ? 'gpu' : 'cpu';
  const entry = MODELS.find((m) => m.defaultFor === wanted);
  if (!entry) throw new KolError('internal_error', `The model registry names no default for ${wanted} hosts.`);
  return entry.name;
}

export function modelsDir(): string {
  return path.join(cacheDir(), 'models');
}

export function cachedModelPath(entry: ModelEntry): string {
  return path.join(modelsDir(), entry.fileName);
}

export type CacheState =
  | { state: 'cached'; path: string }
  | { state: 'missing'; path: string; partialBytes: number }
  /** A file is there but not the published size: put there by hand, and not this model. */
  | { state: 'wrong-size'; path: string; bytes: number };

/** Whether the model's file is in the cache, judged by its size (hashing gigabytes on every start is too slow). */
export function cacheState(entry: ModelEntry): CacheState {
  const file = cachedModelPath(entry);
  const bytes = sizeOf(file);
  if (bytes === undefined) return { state: 'missing', path: file, partialBytes: sizeOf(partialPath(file)) ?? 0 };
  if (entry.sizeBytes !== undefined && bytes !== entry.sizeBytes) return { state: 'wrong-size', path: file, bytes };
  return { state: 'cached', path: file };
}

export interface PullModelOptions {
  onProgress?: DownloadProgress;
  /** Fetch `<mirrorBaseUrl>/<fileName>` instead of the published URL, e.g. from a local copy of the cache. */
  mirrorBaseUrl?: string;
}

/** Downloads a model into the cache unless it is there already; resolves to its path. */
export async function pullModel(entry: ModelEntry, options: PullModelOptions = {}): Promise<string> {
  const cached = cacheState(entry);
  if (cached.state === 'cached') return cached.path;
  if (cached.state === 'wrong-size') throw wrongSize(entry, cached.path, cached.bytes);
  const url = options.mirrorBaseUrl === undefined ? entry.url : `${options.mirrorBaseUrl.replace(/\/+$/, '')}/${entry.fileName}`;
  await downloadFile({ url, dest: cached.path, expectedSize: entry.sizeBytes, sha256: entry.sha256, sha1: entry.sha1, onProgress: options.onProgress });
  return cached.path;
}

export interface ResolveModelOptions {
  /** Download a known model that is not cached yet. Default false: fail and say how to get it. */
  allowDownload?: boolean;
  onProgress?: DownloadProgress;
}

/**
 * A model name or file path → the model file's absolute path. A known name resolves into the cache
 * (downloading it when allowed); anything else is taken as a path, which must be an existing file.
 * Rejects with `model_not_found`, `model_unknown`, `model_checksum_mismatch` or a download error.
 */
export async function resolveModel(nameOrPath: string, options: ResolveModelOptions = {}): Promise<string> {
  const entry = looksLikePath(nameOrPath) ? undefined : findModel(nameOrPath);
  if (entry === undefined) return existingModelFile(nameOrPath);
  const cached = cacheState(entry);
  if (cached.state === 'cached') return cached.path;
  if (cached.state === 'wrong-size') throw wrongSize(entry, cached.path, cached.bytes);
  if (!options.allowDownload) {
    throw new KolError('model_not_found', `Model "${entry.name}" is not downloaded yet; it belongs at ${cached.path}. Run \`kol models pull ${entry.name}\`.`);
  }
  return pullModel(entry, { onProgress: options.onProgress });
}

/** Names never contain a separator or end in .bin, so these can only be meant as files. */
function looksLikePath(value: string): boolean {
  return /[\\/]/.test(value) || value.startsWith('.') || value.startsWith('~') || /\.(bin|gguf)$/i.test(value);
}

function existingModelFile(nameOrPath: string): string {
  const file = path.resolve(nameOrPath.replace(/^~(?=$|[\\/])/, os.homedir()));
  let stats: fs.Stats | undefined;
  try {
    stats = fs.statSync(file);
  } catch {
    stats = undefined;
  }
  if (stats?.isFile()) return file;
  if (stats) throw new KolError('model_not_found', `${file} is a directory, not a model file.`);
  if (looksLikePath(nameOrPath)) throw new KolError('model_not_found', `No model file at ${file}.`);
  throw unknownModel(nameOrPath);
}

function unknownModel(name: string): KolError {
  return new KolError('model_unknown', `No model is known as "${name}". Known models: ${MODELS.map((m) => m.name).join(', ')}. A path to a ggml .bin file works too.`);
}

function wrongSize(entry: ModelEntry, file: string, bytes: number): KolError {
  return new KolError('model_checksum_mismatch', `${file} has ${bytes} bytes, but ${entry.name} is published as ${entry.sizeBytes}. Delete it and run \`kol models pull ${entry.name}\`.`);
}

function sizeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).size;
  } catch {
    return undefined;
  }
}

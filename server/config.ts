/**
 * The one configuration module: defaults < config file < environment < command-line flags, validated
 * once at start with every bad value named. `kol serve --print-config` prints the result.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { KolError } from '../engine/errors.js';
import { DEFAULT_TUNING } from '../engine/stream.js';
import { DEFAULT_SEGMENTER_OPTIONS } from '../engine/vad/segmenter.js';
import { MAX_ENDPOINT_MS, MIN_ENDPOINT_MS } from './session-config.js';

const csv = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);

export const serverConfigSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    /** Model name (`kol models list`) or file path; empty: the host default (GPU: ivrit-turbo, CPU: base-q8_0). */
    model: z.string(),
    /** A second, smaller model for partials in workers of their own; empty: partials share the final model. */
    partialModel: z.string(),
    /** Local whisper-server processes (0 with workerUrls: remote workers only). */
    workers: z.number().int().min(0).max(64),
    partialWorkers: z.number().int().min(0).max(64),
    /** CPU threads per worker; 0 = every core (at most 8) for each worker: see engine/whisper/local-workers.ts. */
    threads: z.number().int().min(0).max(256),
    flashAttention: z.boolean(),
    /** auto: CUDA when the engine was built with it; off: CPU; on: GPU required. */
    gpu: z.enum(['auto', 'on', 'off']),
    /** When the GPU is required but unusable: fall back to CPU with a warning, or refuse to start. */
    gpuFallback: z.enum(['cpu', 'refuse']),
    gpuDevices: z.array(z.number().int().min(0)),
    /** Remote whisper-server base URLs (e.g. http://gpu-host:8910) added to the pool. */
    workerUrls: z.array(z.string().url()),
    requestTimeoutMs: z.number().int().min(1000),

    // decoding
    language: z.string().min(2),
    endpointMs: z.number().int().min(MIN_ENDPOINT_MS).max(MAX_ENDPOINT_MS),
    partials: z.boolean(),
    finalBeamSize: z.number().int().min(1).max(16),
    /** Encoder window for finals: full (1500 frames), auto (sized to the segment), or frames (20 ms each). */
    finalAudioCtx: z.union([z.enum(['full', 'auto']), z.number().int().min(256).max(1500)]),
    /** Give each final the previous one's text as prompt (off: it made Whisper drop sentences of continuous speech). */
    promptWithPreviousFinal: z.boolean(),
    /** Decode finals that meet load cheaper (beam 5, window sized to the segment) instead of late. */
    degradeFinals: z.boolean(),

    // access and limits
    /** `SECRET`, `SECRET:publish` or `SECRET:view`; checked by parseApiKey. */
    apiKeys: z.array(z.string()),
    apiKeysFile: z.string(),
    allowedOrigins: z.array(z.string()),
    /**
     * Real-time streams admitted at once (publishing endpoints; caption viewers do not count); 0 = auto:
     * measured at start from the workers' speed (server/capacity.ts). Beyond it: HTTP 503 server_at_capacity.
     */
    capacity: z.number().int().min(0),
    maxSessions: z.number().int().min(1),
    maxSessionsPerKey: z.number().int().min(1),
    maxFrameBytes: z.number().int().min(1024).max(16 * 1024 * 1024),
    maxSessionSeconds: z.number().int().min(1),
    idleTimeoutSeconds: z.number().int().min(1),
    maxRealtimeFactor: z.number().min(1),
    sendBufferBytes: z.number().int().min(16 * 1024),
    shutdownGraceSeconds: z.number().int().min(0),

    redisUrl: z.string(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  })
  .strict();

export type ServerConfig = z.infer<typeof serverConfigSchema>;

export const DEFAULT_CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 8009,
  model: '',
  partialModel: '',
  workers: 2,
  partialWorkers: 1,
  threads: 0,
  flashAttention: true,
  gpu: 'auto',
  gpuFallback: 'cpu',
  gpuDevices: [],
  workerUrls: [],
  requestTimeoutMs: 60_000,
  language: 'he',
  endpointMs: DEFAULT_SEGMENTER_OPTIONS.endpointMs,
  partials: true,
  finalBeamSize: 5,
  finalAudioCtx: DEFAULT_TUNING.finalAudioCtx ?? 'full',
  promptWithPreviousFinal: DEFAULT_TUNING.promptWithPreviousFinal,
  degradeFinals: true,
  apiKeys: [],
  apiKeysFile: '',
  allowedOrigins: [],
  capacity: 0,
  maxSessions: 200,
  maxSessionsPerKey: 20,
  maxFrameBytes: 256 * 1024,
  maxSessionSeconds: 4 * 3600,
  idleTimeoutSeconds: 60,
  maxRealtimeFactor: 4,
  sendBufferBytes: 1024 * 1024,
  shutdownGraceSeconds: 30,
  redisUrl: '',
  logLevel: 'info',
};

type Key = keyof ServerConfig;

/** Environment variable for each setting: KOL_ + the name in upper snake case (REDIS_URL also works). */
export function envName(key: Key): string {
  return `KOL_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Turns the string form of a setting (environment, flags) into the type the schema wants. */
function fromString(key: Key, raw: string): unknown {
  const def = DEFAULT_CONFIG[key];
  if (key === 'finalAudioCtx') return /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw.trim();
  if (Array.isArray(def)) return key === 'gpuDevices' ? csv(raw).map(Number) : csv(raw);
  if (typeof def === 'number') return raw.trim() === '' ? NaN : Number(raw);
  if (typeof def === 'boolean') return ['1', 'true', 'yes', 'on'].includes(raw.toLowerCase()) ? true : ['0', 'false', 'no', 'off'].includes(raw.toLowerCase()) ? false : raw;
  return raw;
}

/**
 * The model setting where the rest of the configuration does not apply (`kol transcribe`, the soak
 * bench): a --model flag, else KOL_MODEL; '' means the host default. `||`: an empty KOL_MODEL
 * (compose's `${KOL_MODEL:-}`) means the default too, not a model named "".
 */
export function configuredModel(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env[envName('model')] || '';
}

export interface ConfigSources {
  /** Path of a JSON config file; default KOL_CONFIG, else ./kol.config.json when it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Settings given on the command line (already typed or as strings). */
  flags?: Partial<Record<Key, unknown>>;
}

export interface LoadedConfig {
  config: ServerConfig;
  /** Where each setting that is not a default came from, for --print-config. */
  origin: Partial<Record<Key, string>>;
}

export function loadConfig(sources: ConfigSources = {}): LoadedConfig {
  const env = sources.env ?? process.env;
  const merged: Record<string, unknown> = { ...DEFAULT_CONFIG };
  const origin: Partial<Record<Key, string>> = {};

  const file = sources.file ?? env.KOL_CONFIG ?? (fs.existsSync('kol.config.json') ? 'kol.config.json' : undefined);
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new KolError('invalid_config', `Config file ${path.resolve(file)} could not be read as JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new KolError('invalid_config', `Config file ${file} must hold a JSON object.`);
    for (const [key, value] of Object.entries(parsed)) {
      merged[key] = value;
      origin[key as Key] = `file ${file}`;
    }
  }
  for (const key of Object.keys(DEFAULT_CONFIG) as Key[]) {
    const raw = env[envName(key)] ?? (key === 'redisUrl' ? env.REDIS_URL : undefined);
    if (raw !== undefined) {
      merged[key] = fromString(key, raw);
      origin[key] = `env ${envName(key)}`;
    }
  }
  for (const [key, value] of Object.entries(sources.flags ?? {})) {
    if (value === undefined) continue;
    merged[key] = typeof value === 'string' ? fromString(key as Key, value) : value;
    origin[key as Key] = 'flag';
  }

  const result = serverConfigSchema.safeParse(merged);
  const problems = result.success
    ? []
    : result.error.issues.map((issue) => {
        if (issue.code === 'unrecognized_keys') return `unknown setting(s) ${issue.keys.join(', ')}`;
        const key = String(issue.path[0]) as Key;
        // Never the keys themselves, not even in an error.
        const got = key === 'apiKeys' ? '' : `, got ${JSON.stringify(merged[key])}`;
        return `${key} (${origin[key] ?? 'default'}, ${envName(key)}): ${issue.message}${got}`;
      });
  const fileKeys = result.success && result.data.apiKeysFile ? readKeysFile(result.data.apiKeysFile) : [];
  if (result.success) {
    problems.push(...keyProblems(result.data.apiKeys, `apiKeys (${origin.apiKeys ?? 'default'}, ${envName('apiKeys')})`));
    problems.push(...keyProblems(fileKeys, `apiKeysFile ${result.data.apiKeysFile}`));
  }
  if (!result.success || problems.length > 0) throw new KolError('invalid_config', `Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  const config = result.data;
  config.apiKeys = [...config.apiKeys, ...fileKeys];
  if (config.workers === 0 && config.workerUrls.length === 0) {
    throw new KolError('invalid_config', 'Invalid configuration: workers is 0 and no workerUrls are given, so nothing could transcribe.');
  }
  return { config, origin };
}

export type KeyScope = 'all' | 'publish' | 'view';

export interface ApiKey {
  secret: string;
  scope: KeyScope;
}

/** The shortest secret accepted, its scope suffix not counted. */
export const MIN_KEY_LENGTH = 8;

/** `SECRET`, `SECRET:publish` or `SECRET:view` → the secret and what it may do. */
export function parseApiKey(entry: string): ApiKey {
  const match = /^(.*):(publish|view)$/s.exec(entry);
  return match ? { secret: match[1], scope: match[2] as KeyScope } : { secret: entry, scope: 'all' };
}

/**
 * How a key is shown in logs, errors and --print-config: at most its first quarter (never more than
 * 4 characters), which tells an operator which key it was without giving away a useful part of it.
 */
export function maskKey(secret: string): string {
  return `${secret.slice(0, Math.min(4, Math.floor(secret.length / 4)))}…`;
}

/** A configured key as --print-config shows it: masked, with its scope. */
export function describeKey(entry: string): string {
  const { secret, scope } = parseApiKey(entry);
  return scope === 'all' ? maskKey(secret) : `${maskKey(secret)}:${scope}`;
}

/** A URL as --print-config shows it: any password in it replaced by `***` (a Redis URL may carry one). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** What is wrong with each bad key, naming it by position and masked, never in full. */
function keyProblems(entries: string[], where: string): string[] {
  return entries.flatMap((entry, i) => {
    const { secret } = parseApiKey(entry);
    const which = `${where}: key ${i + 1} (${maskKey(secret)})`;
    if (secret.length < MIN_KEY_LENGTH) {
      return [`${which} is ${secret.length} character(s) long; a key needs at least ${MIN_KEY_LENGTH}, not counting a :publish or :view scope`];
    }
    if (/[\s:,]/.test(secret)) return [`${which} holds a space, comma or ":"; only a final :publish or :view may follow the key`];
    return [];
  });
}

/** One key per line; `#` starts a comment; an optional `:publish` or `:view` limits the key's scope. */
function readKeysFile(file: string): string[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim())
      .filter(Boolean);
  } catch (err) {
    throw new KolError('invalid_config', `API keys file ${file} could not be read: ${(err as Error).message}`);
  }
}

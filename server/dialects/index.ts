/**
 * The compatibility dialects: endpoints that speak other vendors' streaming protocols over the same
 * Session and pipeline as the native `/v1/stream`. See README.md beside this file.
 */
import type { WsRoute } from '../transport/gateway.js';
import { deepgramRoute } from './deepgram.js';
import { openaiRealtimeRoute } from './openai.js';
import { voskRoutes } from './vosk.js';

export { DEEPGRAM_PATH } from './deepgram.js';
export { OPENAI_REALTIME_PATH } from './openai.js';
export { VOSK_PATHS } from './vosk.js';

/** Deepgram `/v1/listen`, OpenAI Realtime `/v1/realtime`, Vosk `/v1/vosk` and `/vosk`. */
export function compatRoutes(): WsRoute[] {
  return [deepgramRoute, openaiRealtimeRoute, ...voskRoutes];
}

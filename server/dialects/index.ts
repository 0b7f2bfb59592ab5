/**
 * The dialects: the native `/v1/stream` and the endpoints that speak other vendors' streaming
 * protocols, all over the same Session and pipeline. See README.md beside this file.
 */
import type { WsRoute } from '../transport/gateway.js';
import { deepgramRoute } from './deepgram.js';
import { nativeRoute } from './native.js';
import { openaiRealtimeRoute } from './openai.js';
import { voskRoutes } from './vosk.js';

export { DEEPGRAM_PATH } from './deepgram.js';
export { OPENAI_REALTIME_PATH } from './openai.js';
export { VOSK_PATHS } from './vosk.js';

/** Native `/v1/stream`, Deepgram `/v1/listen`, OpenAI Realtime `/v1/realtime`, Vosk `/v1/vosk` and `/vosk`. */
export function dialectRoutes(): WsRoute[] {
  return [nativeRoute, deepgramRoute, openaiRealtimeRoute, ...voskRoutes];
}

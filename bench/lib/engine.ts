import type { Logger } from '../../engine/log.js';
import type { EngineBuild } from '../../engine/whisper/build.js';
import { logProgress, provisionEngine } from '../../engine/whisper/provision.js';

/**
 * The whisper-server build a bench runs, compiled first when it is not cached. The build's progress
 * is logged at info level even when the bench's log is quieter: a first build takes minutes.
 */
export function benchEngine(cuda: boolean, logger: Logger): Promise<EngineBuild> {
  return provisionEngine({ cuda, logger }, logProgress(logger.child({}, { level: 'info' })));
}

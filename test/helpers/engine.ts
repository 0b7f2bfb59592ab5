import { buildEngine, type EngineBuild } from '../../engine/whisper/build.js';

let build: Promise<EngineBuild> | null = null;

/**
 * The whisper-server build every test uses: the same cached CPU build a user gets (scripts/test.js
 * builds it up front with progress, so here it is normally instant).
 */
export function engine(): Promise<EngineBuild> {
  build ??= buildEngine({ cuda: false });
  return build;
}

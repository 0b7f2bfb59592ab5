import fs from 'node:fs';
import { decodeAudioFile, type DecodedAudio } from '../../engine/audio/wav.js';
import { assetPath } from '../../corpus/assets.js';

/**
 * Shared Hebrew clips, 47 words in all, that the streaming clients are measured on together.
 *
 * Several clips, not one, because some words are on a knife's edge for the recogniser, which is
 * sensitive to tiny differences: where speech falls against its 10 ms frames, a browser's own
 * resampling, the timing of the live pipeline. The first clip alone (15 words) came out one word
 * worse than `kol transcribe` in about half of a dozen takes through the browser, and one word
 * there is 0.067, over the 0.05 allowed; over 47 words one word is 0.021 (in four browser takes the
 * page was between 0.021 worse and 0.021 better than `kol transcribe`).
 */
export const MEASURED_CLIPS = ['Hashlama112_0024', 'Lod_0065', 'Meat_0089', 'Hashlama117_0009'];

export interface Recording {
  /** Every clip, with `padSeconds` of silence before, between and after: 16 kHz mono. */
  pcm: Float32Array;
  /** Where each clip starts in `pcm`, in samples. */
  clipStarts: number[];
  clips: DecodedAudio[];
  /** The clips' files, and their reference transcripts joined in order. */
  wavs: string[];
  reference: string;
}

/** The files (WAVs and references) a recording of these clips needs, for haveAssets. */
export function recordingAssets(names = MEASURED_CLIPS): string[] {
  return names.flatMap((name) => [assetPath('audio', 'he', `${name}.wav`), assetPath('audio', 'he', `${name}.txt`)]);
}

/**
 * The clips one after another, each an utterance of its own: the silence between them (1 s by
 * default) is longer than the server's 500 ms endpoint.
 */
export async function speechRecording(names = MEASURED_CLIPS, padSeconds = 1): Promise<Recording> {
  const wavs = names.map((name) => assetPath('audio', 'he', `${name}.wav`));
  const reference = names.map((name) => fs.readFileSync(assetPath('audio', 'he', `${name}.txt`), 'utf8').trim()).join(' ');
  const clips = await Promise.all(wavs.map((wav) => decodeAudioFile(wav)));
  const pad = Math.round(padSeconds * 16000);
  const pcm = new Float32Array(pad * (clips.length + 1) + clips.reduce((n, c) => n + c.pcm.length, 0));
  const clipStarts: number[] = [];
  let at = pad;
  for (const clip of clips) {
    clipStarts.push(at);
    pcm.set(clip.pcm, at);
    at += clip.pcm.length + pad;
  }
  return { pcm, clipStarts, clips, wavs, reference };
}

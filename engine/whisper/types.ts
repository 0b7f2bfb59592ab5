/** The narrow interface between the streaming pipeline and whatever turns audio into text. */

export interface TranscribeOptions {
  /** ISO 639-1 code, or "auto". Default "he": whisper-server's own default is English. */
  language?: string;
  /** Text the model takes as preceding context (the previous final, a glossary). */
  prompt?: string;
  /** >1 selects beam search. Finals use 5 (Hebrew WER 0.353 greedy → 0.272, README "Decoding choices"); partials stay greedy (1). */
  beamSize?: number;
  /**
   * Encoder context in frames (50 per second of audio, 1500 = the full 30 s window). "auto" sizes it to
   * the audio plus a margin, never shorter than the audio. Undefined: the full window.
   */
  audioCtx?: number | 'auto';
  /** Retry at higher temperatures when decoding fails its entropy/logprob checks (whisper's default). */
  temperatureFallback?: boolean;
  /** Per-request time limit; the worker is considered hung past it. */
  timeoutMs?: number;
}

export interface TranscriptWord {
  word: string;
  /** Seconds from the start of the audio sent. */
  start: number;
  end: number;
  probability: number;
}

export interface TranscriptSegment {
  text: string;
  start: number;
  end: number;
  noSpeechProb: number;
  avgLogprob: number;
  words: TranscriptWord[];
}

export interface Transcript {
  text: string;
  language: string;
  /** Seconds of audio transcribed. */
  duration: number;
  segments: TranscriptSegment[];
  /** Which worker answered, e.g. "w0" or a remote URL. */
  worker: string;
  /** Wall time of the HTTP inference request. */
  inferenceMs: number;
}

export interface Transcriber {
  /** `pcm` is mono float32 at 16 kHz. Rejects with a KolError. */
  transcribe(pcm: Float32Array, options?: TranscribeOptions, signal?: AbortSignal): Promise<Transcript>;
}

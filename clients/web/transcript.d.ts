/** Types for transcript.js (plain browser JavaScript, also imported by the Node tests). */
export interface Segment {
  key: string;
  text: string;
  start: number;
  end: number;
  latencyMs?: number;
  e2eMs?: number;
}
export declare function vttTimestamp(seconds: number): string;
export declare function clockTime(seconds: number): string;
export declare function toPlainText(segments: Segment[]): string;
export declare function toWebVtt(segments: Segment[]): string;
export declare class Transcript {
  segments: Segment[];
  add(segment: Segment): boolean;
  clear(): void;
  readonly isEmpty: boolean;
  toText(): string;
  toVtt(): string;
}

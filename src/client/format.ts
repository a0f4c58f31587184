export { formatBytes } from '../core/io';

/** The words of a duration; the UI passes its language's (src/i18n/format.ts), English otherwise. */
export interface DurationWords {
  seconds: (s: string) => string;
  minutes: (m: string, s: string) => string;
}

const ENGLISH_DURATION: DurationWords = {
  seconds: (s) => `${s} s`,
  minutes: (m, s) => `${m} min ${s} s`,
};

export function formatDuration(seconds: number, words: DurationWords = ENGLISH_DURATION): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return words.seconds(String(Math.ceil(seconds)));
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return words.minutes(String(m), s.toString().padStart(2, '0'));
}

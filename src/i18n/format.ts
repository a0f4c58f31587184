import type { TFunction } from 'i18next';
import { useTranslation } from 'react-i18next';
import { formatDuration, type DurationWords } from '../client';

/** The words of formatDuration in the UI language: "2 min 05 s" in English, "2 分 05 秒" in Chinese. */
export function durationWords(t: TFunction): DurationWords {
  return { seconds: (s) => t('time.seconds', { s }), minutes: (m, s) => t('time.minutes', { m, s }) };
}

/** formatDuration in the UI language. */
export function useDuration(): (seconds: number) => string {
  const { t } = useTranslation();
  return (seconds) => formatDuration(seconds, durationWords(t));
}

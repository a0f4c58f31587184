import { useTranslation } from 'react-i18next';

/** A lesson text in every UI language: a lesson stays one file, its translations beside each other. */
export interface Localized {
  en: string;
  zh: string;
}

/** Picks the text of the language in use (re-renders when it changes). */
export function useLocalized(): (text: Localized) => string {
  const { i18n } = useTranslation();
  const zh = i18n.resolvedLanguage === 'zh';
  return (text) => (zh ? text.zh : text.en);
}

import i18n from 'i18next';
import LanguageDetector from 'i18next-browser-languagedetector';
import { initReactI18next } from 'react-i18next';
import { en } from './en';
import { zh } from './zh';

export const LANGUAGES = [
  { code: 'en', label: 'English' },
  { code: 'zh', label: '简体中文' },
] as const;
export type Language = (typeof LANGUAGES)[number]['code'];

/**
 * The language follows the browser (zh-CN, zh-Hans… give Chinese) unless the user picked one, which
 * is remembered; `?lang=zh` in a link overrides both, so a shared link opens in its language.
 */
void i18n
  .use(LanguageDetector)
  .use(initReactI18next)
  .init({
    resources: { en: { translation: en }, zh: { translation: zh } },
    supportedLngs: ['en', 'zh'],
    nonExplicitSupportedLngs: true,
    load: 'languageOnly',
    fallbackLng: 'en',
    interpolation: { escapeValue: false }, // React escapes
    detection: { order: ['querystring', 'localStorage', 'navigator'], lookupQuerystring: 'lang', lookupLocalStorage: 'retrolab.language', caches: ['localStorage'] },
  });

/** The short code of the language in use ('zh' for zh-CN). */
export function currentLanguage(): Language {
  return i18n.resolvedLanguage === 'zh' ? 'zh' : 'en';
}

i18n.on('languageChanged', () => {
  document.documentElement.lang = currentLanguage() === 'zh' ? 'zh-Hans' : 'en';
});
document.documentElement.lang = currentLanguage() === 'zh' ? 'zh-Hans' : 'en';

export { i18n };

import 'i18next';
import type { Messages } from './en';

// Keys are checked at compile time: a typo in t('…') is a type error, not an English fallback on screen.
declare module 'i18next' {
  interface CustomTypeOptions {
    resources: { translation: Messages };
  }
}

import type { DecodingSettings, KnnLmSettings } from '../../client';
import type { IcRalmColumnSettings } from '../icralm/IcRalmControls';
import type { CompareSettings } from '../compare/settings';
import type { Localized } from './localized';

/**
 * Where a lesson's retrieval reads from: a datastore that ships with the app, or small text files
 * from public/lessons/ that the browser turns into a datastore the first time (seconds), so a
 * lesson needs neither `npm run setup:knn` nor the teacher's own files.
 */
export type LessonDatastore =
  | { kind: 'builtin'; id: string }
  | { kind: 'text'; name: string; files: string[]; knnKeys: boolean };

export interface LessonStep {
  title: Localized;
  prompt: string;
  datastore: LessonDatastore;
  /** GPT and RETRO are always shown; these add the kNN-LM and In-Context RALM columns. */
  columns: { knnlm: boolean; icralm: boolean };
  /** Over the app's defaults, not over whatever was set before: a step looks the same every time. */
  settings?: {
    decoding?: Partial<DecodingSettings>;
    retro?: Partial<Omit<CompareSettings['retro'], 'exclusions'>>;
    knn?: Partial<KnnLmSettings>;
    icralm?: Partial<Omit<IcRalmColumnSettings, 'enabled'>>;
  };
  /** Read out to the class (before pressing Generate). */
  read: Localized;
  /** What to point at once the columns are written. */
  notice: Localized;
  question: Localized;
  /** The measurement behind the step's claims: a command, a doc, a manifest field. */
  source: Localized;
}

export interface Lesson {
  id: string;
  title: Localized;
  /** Where it sits in the map of retrieval-based LMs: what, how, when, … */
  topic: string;
  steps: LessonStep[];
}

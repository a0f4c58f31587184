import { useId } from 'react';
import { useTranslation } from 'react-i18next';
import { useLocalized } from './localized';
import type { Lesson } from './types';

/** The lesson being taught: what to read out, what to point at, what to ask; and the way to the next step. */
export function LessonBar({
  lesson,
  step,
  index,
  count,
  preparing,
  busy,
  written,
  onStep,
  onClose,
}: {
  lesson: Lesson;
  step: number;
  /** the lesson's place in the list, for "Lesson 2 of 6" */
  index: number;
  count: number;
  /** what is being made ready (the lesson's datastore), or null */
  preparing: string | null;
  /** generating or preparing: a step must not change the settings under a running column */
  busy: boolean;
  /** the columns hold this step's output: "what to notice" replaces "what to read" */
  written: boolean;
  onStep: (step: number) => void;
  onClose: () => void;
}) {
  const id = useId();
  const { t } = useTranslation();
  const localized = useLocalized();
  const current = lesson.steps[step]!;
  const total = lesson.steps.length;
  return (
    <section className="lesson panel" aria-labelledby={`${id}-title`} data-testid="lesson" data-lesson={lesson.id} data-step={step}>
      <header className="lesson-header">
        <h2 id={`${id}-title`}>
          <span className="muted">{t('lesson.of', { n: index + 1, count })}</span> {localized(lesson.title)}
        </h2>
        <span className="lesson-step" data-testid="lesson-step">
          {t('lesson.step', { n: step + 1, count: total, title: localized(current.title) })}
        </span>
        <span className="lesson-nav">
          <button type="button" onClick={() => onStep(step - 1)} disabled={busy || step === 0} data-testid="lesson-previous">
            {t('lesson.previous')}
          </button>
          <button type="button" onClick={() => onStep(step + 1)} disabled={busy || step + 1 >= total} data-testid="lesson-next">
            {t('lesson.next')}
          </button>
          <button type="button" className="icon-button" aria-label={t('lesson.close')} onClick={onClose}>
            ×
          </button>
        </span>
      </header>
      {preparing && (
        <p className="hint" role="status" data-testid="lesson-preparing">
          {preparing}
        </p>
      )}
      {/* Before Generate the teacher reads; after it the class looks: one of the two at a time keeps the output on screen. */}
      <dl className="lesson-text">
        {written ? (
          <div>
            <dt>{t('lesson.notice')}</dt>
            <dd data-testid="lesson-notice">{localized(current.notice)}</dd>
          </div>
        ) : (
          <div>
            <dt>{t('lesson.read')}</dt>
            <dd data-testid="lesson-read">{localized(current.read)}</dd>
          </div>
        )}
        <div>
          <dt>{t('lesson.ask')}</dt>
          <dd data-testid="lesson-question">{localized(current.question)}</dd>
        </div>
      </dl>
      <details className="lesson-source hint">
        <summary>{written ? t('lesson.sourcesAfter') : t('lesson.sources')}</summary>
        {written && <p>{localized(current.read)}</p>}
        <p data-testid="lesson-source">{t('lesson.measured', { source: localized(current.source) })}</p>
      </details>
    </section>
  );
}

import { useId } from 'react';
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
  const current = lesson.steps[step]!;
  const total = lesson.steps.length;
  return (
    <section className="lesson panel" aria-labelledby={`${id}-title`} data-testid="lesson" data-lesson={lesson.id} data-step={step}>
      <header className="lesson-header">
        <h2 id={`${id}-title`}>
          <span className="muted">
            Lesson {index + 1} of {count} ·
          </span>{' '}
          {lesson.title}
        </h2>
        <span className="lesson-step" data-testid="lesson-step">
          Step {step + 1} of {total}: {current.title}
        </span>
        <span className="lesson-nav">
          <button type="button" onClick={() => onStep(step - 1)} disabled={busy || step === 0} data-testid="lesson-previous">
            Previous step
          </button>
          <button type="button" onClick={() => onStep(step + 1)} disabled={busy || step + 1 >= total} data-testid="lesson-next">
            Next step
          </button>
          <button type="button" className="icon-button" aria-label="Close the lesson" onClick={onClose}>
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
            <dt>Notice</dt>
            <dd data-testid="lesson-notice">{current.notice}</dd>
          </div>
        ) : (
          <div>
            <dt>Read</dt>
            <dd data-testid="lesson-read">{current.read}</dd>
          </div>
        )}
        <div>
          <dt>Ask</dt>
          <dd data-testid="lesson-question">{current.question}</dd>
        </div>
      </dl>
      <details className="lesson-source hint">
        <summary>{written ? 'What was read out, and where the numbers come from' : 'Where the numbers come from'}</summary>
        {written && <p>{current.read}</p>}
        <p data-testid="lesson-source">Measured: {current.source}</p>
      </details>
    </section>
  );
}

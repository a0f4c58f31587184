import { useId, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { ModelScore, TokenView } from '../../client';
import { NumberField } from '../../ui/NumberField';

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * RAG-Sequence's distinguishing view: for one sequence, each passage's posterior p(z | x, y<i)
 * before each of its tokens (the weight that token's probability was mixed with), from the
 * retriever's prior to the posterior after the sequence.
 */
export function PassagePosterior({ tokens, score }: { tokens: readonly TokenView[]; score: ModelScore }) {
  const { t } = useTranslation();
  const ids = useId();
  const blocks = score.ragSequence?.blocks ?? [];
  const [chosen, setChosen] = useState(1);
  const n = Math.min(Math.max(1, chosen), blocks.length);
  const block = blocks[n - 1];
  if (!block) return null;
  const width = block.end - block.start;
  const final = block.posterior[width]!;
  const best = final.indexOf(Math.max(...final));
  return (
    <section className="lens-posterior" aria-labelledby={`${ids}-h`} data-testid="ragseq-posterior">
      <h3 id={`${ids}-h`}>{t('ragseq.posteriorHeading')}</h3>
      <p className="hint">{t('ragseq.posteriorExplain')}</p>
      <NumberField label={t('ragseq.sequence')} value={n} min={1} max={blocks.length} onChange={(v) => setChosen(Math.round(v))} />
      <p className="muted" data-testid="ragseq-sequence-range">
        {t('ragseq.sequenceOption', { n, from: block.start + 1, to: block.end })}
      </p>
      {block.passages.length > 0 && (
        <p data-testid="ragseq-attributed">
          {t('ragseq.attributed', { p: percent(final[best]!), n: best + 1, title: block.passages[best]?.title ?? '', prior: percent(block.prior[best]!) })}
        </p>
      )}
      <div className="lens-posterior-scroll">
        <table className="lens-posterior-table" data-testid="ragseq-posterior-table">
          <caption className="visually-hidden">{t('ragseq.tableCaption', { n })}</caption>
          <thead>
            <tr>
              <th scope="col">{t('ragseq.passage')}</th>
              <th scope="col">{t('ragseq.prior')}</th>
              {Array.from({ length: width }, (_, i) => (
                <th scope="col" key={i} lang="en" className="lens-posterior-token">
                  {tokens[block.start + i]?.text ?? ''}
                </th>
              ))}
              <th scope="col">{t('ragseq.after')}</th>
            </tr>
          </thead>
          <tbody>
            {block.prior.map((prior, z) => (
              <tr key={z}>
                <th scope="row" title={block.passages[z]?.text}>
                  z{z + 1} {block.passages[z] ? `“${block.passages[z].title}”` : ''}
                </th>
                <td data-testid="ragseq-prior" data-passage={z} data-value={prior}>
                  {percent(prior)}
                </td>
                {block.posterior.map((row, i) => (
                  <td
                    key={i}
                    data-testid={i < width ? 'ragseq-post' : 'ragseq-post-after'}
                    data-token={i}
                    data-passage={z}
                    data-value={row[z]}
                    style={{ background: `color-mix(in srgb, var(--accent) ${Math.round(60 * row[z]!)}%, transparent)` }}
                  >
                    {percent(row[z]!)}
                  </td>
                ))}
              </tr>
            ))}
            <tr>
              <th scope="row">{t('ragseq.tokenProbability')}</th>
              <td />
              {Array.from({ length: width }, (_, i) => {
                const lp = score.logProbs[block.start + i]!;
                return (
                  <td key={i} data-testid="ragseq-token-p" data-value={Math.exp(lp)}>
                    {percent(Math.exp(lp))}
                  </td>
                );
              })}
              <td />
            </tr>
          </tbody>
        </table>
      </div>
    </section>
  );
}

import { useEffect, useId, useState, type DragEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { formatBytes, useAppState, useClient } from '../../client';
import { useDuration } from '../../i18n/format';
import { ProgressBar } from '../../ui/ProgressBar';

const ACCEPT = '.txt,.md,.jsonl';

function baseName(file: File): string {
  return file.name.replace(/\.[^.]+$/, '');
}

/** Drop or pick text files; the retrieval worker chunks, embeds and indexes them. */
export function CustomDatastore() {
  const client = useClient();
  const { t } = useTranslation();
  const duration = useDuration();
  const build = useAppState((s) => s.build);
  const ids = useId();
  const [files, setFiles] = useState<File[]>([]);
  const [name, setName] = useState('');
  const [dragging, setDragging] = useState(false);
  const [knnKeys, setKnnKeys] = useState(false);
  const keyRate = useAppState((s) => s.knn.keyRate);
  const modelsReady = useAppState((s) => s.phase === 'ready' && s.models.length > 0);

  // The speed quoted next to the kNN-LM checkbox: one timed GPT window, measured once.
  useEffect(() => {
    if (files.length > 0 && modelsReady && keyRate === null) void client.measureKeyRate();
  }, [client, files.length, modelsReady, keyRate]);
  // Roughly 4 bytes of English text per token for this tokenizer.
  const estimatedTokens = files.reduce((n, f) => n + f.size, 0) / 4;

  const choose = (list: FileList | null) => {
    const picked = list ? Array.from(list) : [];
    if (picked.length === 0) return;
    client.clearBuildError();
    setFiles(picked);
    setName(picked.length === 1 ? baseName(picked[0]!) : t('datastores.moreFiles', { name: baseName(picked[0]!), count: picked.length - 1 }));
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    choose(event.dataTransfer.files);
  };

  const start = async () => {
    if (files.length === 0) return;
    const built = await client.build(name.trim() || baseName(files[0]!), files, true, knnKeys);
    if (built) {
      setFiles([]);
      setName('');
    }
  };

  return (
    <section className="panel" aria-labelledby={`${ids}-heading`}>
      <header className="panel-header">
        <h2 id={`${ids}-heading`}>{t('datastores.addHeading')}</h2>
      </header>
      <div
        className={`dropzone${dragging ? ' dropzone-active' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
        data-testid="dropzone"
      >
        <p>{t('datastores.drop')}</p>
        <label htmlFor={`${ids}-files`} className="button-like">
          {t('datastores.chooseFiles')}
        </label>
        <input
          id={`${ids}-files`}
          className="visually-hidden"
          type="file"
          multiple
          accept={ACCEPT}
          data-testid="custom-files"
          disabled={build.running}
          onChange={(e) => {
            choose(e.target.files);
            e.target.value = '';
          }}
        />
      </div>
      {files.length > 0 && (
        <div className="build-form">
          <ul className="file-list" aria-label={t('datastores.chosenFiles')}>
            {files.map((f) => (
              <li key={`${f.name}:${f.size}`}>
                {f.name} <span className="muted">{formatBytes(f.size)}</span>
              </li>
            ))}
          </ul>
          <div className="field">
            <label htmlFor={`${ids}-name`}>{t('datastores.name')}</label>
            <input id={`${ids}-name`} data-testid="custom-name" value={name} onChange={(e) => setName(e.target.value)} disabled={build.running} />
          </div>
          <div className="check-field">
            <input
              id={`${ids}-knn`}
              type="checkbox"
              data-testid="custom-knn"
              checked={knnKeys}
              disabled={build.running}
              onChange={(e) => setKnnKeys(e.target.checked)}
            />
            <label htmlFor={`${ids}-knn`}>
              {keyRate
                ? t('datastores.knnKeysRate', { rate: Math.round(keyRate).toLocaleString('en'), time: duration(estimatedTokens / keyRate) })
                : t('datastores.knnKeys')}
            </label>
          </div>
          <div className="prompt-actions">
            <button type="button" className="primary" data-testid="build" onClick={() => void start()} disabled={build.running}>
              {t('datastores.build')}
            </button>
            {!build.running && (
              <button
                type="button"
                onClick={() => {
                  // The error belonged to the files being cleared.
                  client.clearBuildError();
                  setFiles([]);
                }}
              >
                {t('datastores.clear')}
              </button>
            )}
          </div>
        </div>
      )}
      {build.running && !build.keying && (
        <div className="build-progress" data-testid="build-progress">
          {build.progress ? (
            <ProgressBar progress={build.progress} />
          ) : (
            <p className="muted">{t('datastores.reading')}</p>
          )}
          <button type="button" data-testid="cancel-build" onClick={() => client.cancelBuild()}>
            {t('datastores.cancel')}
          </button>
        </div>
      )}
      {build.error && (
        <p className="error" role="alert" data-testid="build-error">
          {build.error}
        </p>
      )}
    </section>
  );
}

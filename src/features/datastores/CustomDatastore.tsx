import { useEffect, useId, useState, type DragEvent } from 'react';
import { formatBytes, formatDuration, useAppState, useClient } from '../../client';
import { ProgressBar } from '../../ui/ProgressBar';

const ACCEPT = '.txt,.md,.jsonl';

function baseName(file: File): string {
  return file.name.replace(/\.[^.]+$/, '');
}

/** Drop or pick text files; the retrieval worker chunks, embeds and indexes them. */
export function CustomDatastore() {
  const client = useClient();
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
    setName(picked.length === 1 ? baseName(picked[0]!) : `${baseName(picked[0]!)} + ${picked.length - 1} more`);
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
        <h2 id={`${ids}-heading`}>Add your own text</h2>
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
        <p>Drop .txt, .md or .jsonl files here</p>
        <label htmlFor={`${ids}-files`} className="button-like">
          Choose files…
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
          <ul className="file-list" aria-label="Chosen files">
            {files.map((f) => (
              <li key={`${f.name}:${f.size}`}>
                {f.name} <span className="muted">{formatBytes(f.size)}</span>
              </li>
            ))}
          </ul>
          <div className="field">
            <label htmlFor={`${ids}-name`}>Name</label>
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
              Also build kNN-LM keys (runs the GPT over the text
              {keyRate ? `, about ${Math.round(keyRate).toLocaleString('en')} tokens/s here: ~${formatDuration(estimatedTokens / keyRate)} for these files` : ''})
            </label>
          </div>
          <div className="prompt-actions">
            <button type="button" className="primary" data-testid="build" onClick={() => void start()} disabled={build.running}>
              Build datastore
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
                Clear
              </button>
            )}
          </div>
        </div>
      )}
      {build.running && (
        <div className="build-progress" data-testid="build-progress">
          {build.progress ? (
            <ProgressBar progress={build.progress} />
          ) : (
            <p className="muted">Reading files…</p>
          )}
          <button type="button" data-testid="cancel-build" onClick={() => client.cancelBuild()}>
            Cancel
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

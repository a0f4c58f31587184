import { useId, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { formatBytes, useAppState, useClient, type DatastoreInfo, type IndexKind, type Progress } from '../../client';
import { ProgressBar } from '../../ui/ProgressBar';
import { CustomDatastore } from './CustomDatastore';
import { DatastoreSearch } from './DatastoreSearch';
import { StorageMeter } from './StorageMeter';

const ORIGIN_LABEL = { default: 'datastores.builtin', custom: 'datastores.yours', imported: 'datastores.imported' } as const;

function DatastoreItem({
  ds,
  active,
  busy,
  building,
  builtInKeys,
  keying,
  name,
  onSelect,
}: {
  ds: DatastoreInfo;
  active: boolean;
  busy: boolean;
  /** a build or a key pass is running (one at a time) */
  building: boolean;
  /** its text's keys are the built-in kNN-LM datastore's (WikiText-2 train) */
  builtInKeys: boolean;
  /** the key pass running over this datastore, with its progress */
  keying: { progress: Progress | null } | null;
  name: string;
  onSelect: () => void;
}) {
  const client = useClient();
  const { t } = useTranslation();
  const id = useId();
  return (
    <li className={`datastore${active ? ' datastore-active' : ''}`} data-testid="datastore-item" data-id={ds.id}>
      <input
        type="radio"
        id={id}
        name={name}
        checked={active}
        disabled={busy}
        onChange={onSelect}
      />
      <label htmlFor={id} className="datastore-label">
        <span className="datastore-name" data-testid="datastore-name">
          {ds.name}
        </span>
        <span className="datastore-meta">
          {t('datastores.meta', { chunks: ds.chunks.toLocaleString(), documents: ds.documents.toLocaleString(), size: formatBytes(ds.bytes) })}
          <span className={`origin origin-${ds.origin}`}>{t(ORIGIN_LABEL[ds.origin])}</span>
          {(ds.knnlm || builtInKeys) && (
            <span className="origin" data-testid="datastore-keys" title={ds.knnlm ? t('datastores.keysTitle', { entries: ds.knnlm.entries.toLocaleString() }) : t('datastores.builtInKeysTitle')}>
              {t('datastores.keys')}
            </span>
          )}
        </span>
      </label>
      <div className="datastore-actions">
        {!ds.knnlm && !builtInKeys && (
          <button
            type="button"
            className="link-button"
            disabled={busy || building}
            title={t('datastores.addKeysTitle')}
            aria-label={t('datastores.addKeysLabel', { name: ds.name })}
            onClick={() => void client.addKnnKeys(ds.id)}
          >
            {t('datastores.addKeys')}
          </button>
        )}
        <button type="button" className="link-button" onClick={() => void client.exportFile(ds.id)} aria-label={t('datastores.exportLabel', { name: ds.name })}>
          {t('datastores.export')}
        </button>
        <button
          type="button"
          className="link-button danger"
          disabled={busy}
          aria-label={t('datastores.deleteLabel', { name: ds.name })}
          onClick={() => {
            if (window.confirm(t('datastores.confirmDelete', { name: ds.name }))) void client.remove(ds.id);
          }}
        >
          {t('datastores.delete')}
        </button>
      </div>
      {keying && (
        <div className="build-progress" data-testid="keys-progress">
          {keying.progress ? <ProgressBar progress={keying.progress} /> : <p className="muted">{t('datastores.reading')}</p>}
          <button type="button" onClick={() => client.cancelBuild()}>
            {t('datastores.cancel')}
          </button>
        </div>
      )}
    </li>
  );
}

export function DatastorePanel() {
  const client = useClient();
  const { t } = useTranslation();
  const retrieval = useAppState((s) => s.retrieval);
  const busy = useAppState((s) => s.busy);
  // The columns read the active datastore while they write: switching or deleting it then would pull it from under them.
  const generating = useAppState((s) => s.generating);
  const lastQueryMs = useAppState((s) => s.lastQueryMs);
  const build = useAppState((s) => s.build);
  const building = build.running;
  const radioName = useId();
  const importRef = useRef<HTMLInputElement>(null);
  // Shows the clicked index kind at once; the worker's answer (or refusal) replaces it.
  const [requestedKind, setRequestedKind] = useState<IndexKind | null>(null);
  const shownKind = requestedKind ?? retrieval?.indexKind;
  const [requestedActive, setRequestedActive] = useState<string | null>(null);
  const shownActive = requestedActive ?? retrieval?.activeId ?? null;
  const chooseActive = async (id: string) => {
    setRequestedActive(id);
    await client.setActive(id);
    setRequestedActive(null);
  };
  const chooseKind = async (kind: IndexKind) => {
    setRequestedKind(kind);
    await client.setIndexKind(kind);
    setRequestedKind(null);
  };

  const kinds: { kind: IndexKind; label: string; hint: string }[] = [
    { kind: 'flat', label: t('datastores.flat'), hint: t('datastores.flatHint') },
    { kind: 'voy', label: 'Voy', hint: t('datastores.voyHint') },
  ];

  return (
    <aside className="sidebar" aria-label={t('datastores.region')}>
      <section className="panel" aria-labelledby="datastores-heading">
        <header className="panel-header">
          <h2 id="datastores-heading">{t('datastores.heading')}</h2>
          {busy && (
            <span className="muted" role="status">
              {busy}
            </span>
          )}
        </header>
        {!retrieval ? (
          <p className="placeholder">{t('datastores.opening')}</p>
        ) : retrieval.datastores.length === 0 ? (
          <p className="placeholder">{t('datastores.none')}</p>
        ) : (
          <ul className="datastore-list" data-testid="datastore-list" aria-label={t('datastores.list')}>
            {retrieval.datastores.map((ds) => (
              <DatastoreItem
                key={ds.id}
                ds={ds}
                active={ds.id === shownActive}
                busy={busy !== null || generating}
                building={building}
                builtInKeys={retrieval.knnDefault?.baseId === ds.id}
                keying={build.running && build.keying === ds.id ? { progress: build.progress } : null}
                name={radioName}
                onSelect={() => void chooseActive(ds.id)}
              />
            ))}
          </ul>
        )}

        <fieldset className="segmented" disabled={!retrieval || busy !== null}>
          <legend>{t('datastores.index')}</legend>
          {kinds.map((k) => (
            <label key={k.kind} title={k.hint} className={shownKind === k.kind ? 'selected' : ''}>
              <input
                type="radio"
                name={`${radioName}-index`}
                value={k.kind}
                checked={shownKind === k.kind}
                onChange={() => void chooseKind(k.kind)}
              />
              {k.label}
            </label>
          ))}
          <span className="muted latency" data-testid="query-latency">
            {lastQueryMs !== null ? t('datastores.lastQuery', { ms: lastQueryMs.toFixed(1) }) : t('datastores.noQuery')}
          </span>
        </fieldset>

        <DatastoreSearch activeName={retrieval?.datastores.find((d) => d.id === retrieval.activeId)?.name ?? null} />

        <div className="import-row">
          <button type="button" onClick={() => importRef.current?.click()} disabled={busy !== null}>
            {t('datastores.import')}
          </button>
          {retrieval && retrieval.missingDefaults.length > 0 && (
            <button
              type="button"
              onClick={() => void client.restoreDefaults()}
              disabled={busy !== null}
              title={t('datastores.restoreTitle', { names: retrieval.missingDefaults.join(', ') })}
            >
              {t('datastores.restore')}
            </button>
          )}
          <input
            ref={importRef}
            type="file"
            accept=".rlds"
            hidden
            data-testid="import-input"
            onChange={(e) => {
              const file = e.target.files?.[0];
              e.target.value = '';
              if (file) void client.importFile(file);
            }}
          />
        </div>
        {retrieval && <StorageMeter storage={retrieval.storage} />}
      </section>
      <CustomDatastore />
    </aside>
  );
}

import { formatBytes, type StorageInfo } from '../../client';

export function StorageMeter({ storage }: { storage: StorageInfo }) {
  const { usage, quota, persisted } = storage;
  const known = usage !== null && quota !== null && quota > 0;
  return (
    <div className="storage" data-testid="storage">
      <div className="progress-label">
        <span>Browser storage</span>
        <span className="progress-detail">
          {known ? `${formatBytes(usage)} of ${formatBytes(quota)}` : 'size unknown'}
        </span>
      </div>
      {known && <meter min={0} max={quota} value={usage} high={quota * 0.8} aria-label="Storage used" />}
      <p className="hint">
        {persisted === true
          ? 'Persistent: the browser will not evict your datastores.'
          : persisted === false
            ? 'Not persistent: the browser may clear datastores when disk space runs low.'
            : 'Persistence unknown in this browser.'}
      </p>
    </div>
  );
}

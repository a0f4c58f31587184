import { useTranslation } from 'react-i18next';
import { formatBytes, type StorageInfo } from '../../client';

export function StorageMeter({ storage }: { storage: StorageInfo }) {
  const { t } = useTranslation();
  const { usage, quota, persisted } = storage;
  const known = usage !== null && quota !== null && quota > 0;
  return (
    <div className="storage" data-testid="storage">
      <div className="progress-label">
        <span>{t('datastores.storage')}</span>
        <span className="progress-detail">
          {known ? t('datastores.usage', { used: formatBytes(usage), quota: formatBytes(quota) }) : t('datastores.sizeUnknown')}
        </span>
      </div>
      {known && <meter min={0} max={quota} value={usage} high={quota * 0.8} aria-label={t('datastores.storageUsed')} />}
      <p className="hint">
        {persisted === true
          ? t('datastores.persistent')
          : persisted === false
            ? t('datastores.notPersistent')
            : t('datastores.persistenceUnknown')}
      </p>
    </div>
  );
}

import { useTranslation } from 'react-i18next';
import { useAppState, useClient } from '../../client';

/** Messages that need the user's attention; each stays until dismissed. */
export function Notices() {
  const client = useClient();
  const { t } = useTranslation();
  const notices = useAppState((s) => s.notices);
  if (notices.length === 0) return null;
  return (
    <div className="notices" aria-live="assertive">
      {notices.map((n) => (
        <div key={n.id} className={`notice notice-${n.kind}`} role={n.kind === 'error' ? 'alert' : 'status'} data-testid="notice">
          <span>{n.message}</span>
          <button type="button" className="icon-button" aria-label={t('app.dismiss')} onClick={() => client.dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

import { useEffect } from 'react';
import { useTranslation } from 'react-i18next';
import { useRegisterSW } from 'virtual:pwa-register/react';

/**
 * The service worker (vite-plugin-pwa, Workbox) keeps the app and its models for offline use. A new
 * version waits until the teacher chooses to reload: swapping code in the middle of a lesson would
 * lose the columns on screen.
 */
export function UpdatePrompt() {
  const { t } = useTranslation();
  const {
    needRefresh: [needRefresh, setNeedRefresh],
    offlineReady: [offlineReady, setOfflineReady],
    updateServiceWorker,
  } = useRegisterSW();
  // "Works offline" is news once; it goes by itself. An update waits for the teacher.
  useEffect(() => {
    if (!offlineReady) return;
    const timer = setTimeout(() => setOfflineReady(false), 10_000);
    return () => clearTimeout(timer);
  }, [offlineReady, setOfflineReady]);
  if (!needRefresh && !offlineReady) return null;
  return (
    <div className="notice notice-info update-prompt" role="status" data-testid={needRefresh ? 'update-ready' : 'offline-ready'}>
      <span>{needRefresh ? t('app.updateReady') : t('app.offlineReady')}</span>
      {needRefresh && (
        <button type="button" onClick={() => void updateServiceWorker(true)}>
          {t('app.reload')}
        </button>
      )}
      <button
        type="button"
        className="icon-button"
        aria-label={t('app.dismiss')}
        onClick={() => {
          setNeedRefresh(false);
          setOfflineReady(false);
        }}
      >
        ×
      </button>
    </div>
  );
}

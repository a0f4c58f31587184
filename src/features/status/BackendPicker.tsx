import { useId } from 'react';
import { useTranslation } from 'react-i18next';

/** Switching the backend reloads the page: sessions are created once per worker. */
export function BackendPicker() {
  const id = useId();
  const { t } = useTranslation();
  const current = new URLSearchParams(location.search).get('backend') ?? 'auto';
  return (
    <div className="field backend-picker">
      <label htmlFor={id}>{t('app.backend')}</label>
      <select
        id={id}
        value={current}
        onChange={(e) => {
          const url = new URL(location.href);
          if (e.target.value === 'auto') url.searchParams.delete('backend');
          else url.searchParams.set('backend', e.target.value);
          location.assign(url);
        }}
      >
        <option value="auto">{t('app.backendAuto')}</option>
        <option value="webgpu">WebGPU</option>
        <option value="wasm">WASM</option>
      </select>
    </div>
  );
}

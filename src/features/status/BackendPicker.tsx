import { useId } from 'react';

/** Switching the backend reloads the page: sessions are created once per worker. */
export function BackendPicker() {
  const id = useId();
  const current = new URLSearchParams(location.search).get('backend') ?? 'auto';
  return (
    <div className="field backend-picker">
      <label htmlFor={id}>Backend</label>
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
        <option value="auto">Auto (WebGPU if it works)</option>
        <option value="webgpu">WebGPU</option>
        <option value="wasm">WASM</option>
      </select>
    </div>
  );
}

import { test as base, expect, type BrowserContext, type Page } from '@playwright/test';
import { launchApp } from './browser';
import { AppPage } from './pages/AppPage';

/** True for requests that stay on this machine (the app's own server, in-page blobs and data). */
export function isLocal(url: string): boolean {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  return u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
}

interface Fixtures {
  /** Launch Chromium with WebGPU (SwiftShader) enabled. */
  webgpu: boolean;
  /** A small storage pool (bytes) for quota tests; null = Chromium's default. */
  storagePoolBytes: number | null;
  /** Every URL the browser requested during the test, workers included. */
  requests: string[];
  app: AppPage;
}

/**
 * Each test gets a fresh persistent profile (so IndexedDB starts empty and survives a reload within
 * the test), and fails if any request left localhost.
 */
export const test = base.extend<Fixtures>({
  webgpu: [false, { option: true }],
  storagePoolBytes: [null, { option: true }],
  context: async ({ webgpu, storagePoolBytes }, provide, testInfo) => {
    const context = await launchApp({ webgpu, storagePoolBytes, profileDir: testInfo.outputPath('profile') });
    await provide(context);
    await context.close();
  },
  page: async ({ context }, provide) => {
    const page = context.pages()[0] ?? (await context.newPage());
    await provide(page);
  },
  requests: [
    async ({ context }: { context: BrowserContext }, provide) => {
      const urls: string[] = [];
      context.on('request', (request) => urls.push(request.url()));
      await provide(urls);
      const external = urls.filter((u) => !isLocal(u));
      expect(external, 'requests that left localhost').toEqual([]);
    },
    { auto: true },
  ],
  app: async ({ page }: { page: Page }, provide) => {
    const app = new AppPage(page);
    app.collectConsoleErrors();
    await provide(app);
  },
});

export { expect };

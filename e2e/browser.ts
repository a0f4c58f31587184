import { spawn } from 'node:child_process';
import { chromium, type BrowserContext } from '@playwright/test';

/**
 * Debian's Chromium (browser downloads do not work on the target machines). SwiftShader gives a
 * real WebGPU adapter on a CPU with --enable-unsafe-webgpu; about one decode step per second.
 */
export const CHROMIUM = process.env.RETROLAB_CHROMIUM ?? '/usr/bin/chromium';

const BASE_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface LaunchOptions {
  webgpu?: boolean;
  /**
   * Chromium's storage pool in bytes (feature StorageQuotaSettings); a site gets a share of it
   * (about 70%), so a small pool gives a real, small quota for testing QuotaExceededError.
   */
  storagePoolBytes?: number | null;
  /** Storage quota override etc. need a fresh profile per test; this is its folder. */
  profileDir: string;
  /** The browser's language (navigator.language and Accept-Language), e.g. 'zh-CN'. */
  locale?: string;
}

export async function launchApp({ webgpu = false, storagePoolBytes = null, profileDir, locale }: LaunchOptions): Promise<BrowserContext> {
  const args = [...BASE_ARGS];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  if (storagePoolBytes !== null) args.push(`--enable-features=StorageQuotaSettings:PoolSizeBytes/${storagePoolBytes}`);
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: { width: 1440, height: 1000 },
    acceptDownloads: true,
    ...(locale ? { locale } : {}),
  });
}

/**
 * Serves the production build with `vite preview` for a script outside the test runner (the
 * screenshot and benchmark scripts) and resolves once it answers; `stop()` ends the server and its
 * children. `outDir`: another build's folder (default this tree's dist).
 */
export async function startPreview(port: number, outDir?: string): Promise<{ url: string; stop: () => void }> {
  const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort', ...(outDir ? ['--outDir', outDir] : [])], { stdio: 'ignore', detached: true });
  const url = `http://127.0.0.1:${port}/`;
  const stop = () => {
    if (server.pid) process.kill(-server.pid);
  };
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) return { url, stop };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  stop();
  throw new Error(`${url} did not come up`);
}

import type { FullConfig } from '@playwright/test';

/**
 * Used when PORTCULLIS_E2E_BASE_URL is set: the server is started by someone
 * else (`cargo leptos end-to-end` starts it and runs Playwright at once), so
 * wait until `<base>/readyz` answers 200, for up to 60 seconds.
 */
export default async function globalSetup(_config: FullConfig): Promise<void> {
  const base = (process.env.PORTCULLIS_E2E_BASE_URL ?? '').trim().replace(/\/+$/, '');
  if (!base) return;
  const url = `${base}/readyz`;
  const deadline = Date.now() + 60_000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = String(error instanceof Error ? (error.cause ?? error.message) : error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Portcullis at ${base} was not ready within 60 s (${url}: ${last})`);
}

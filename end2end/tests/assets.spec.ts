import { expect, test, type CDPSession } from '@playwright/test';
import { gotoPage } from './helpers';

// The app's files (/pkg) under content-hashed names, cached for good: the
// first visit loads them, and a second visit loads none over the network.
// Read from Chromium's own network events (DevTools Protocol).

type Seen = { requestId: string; path: string; fromDiskCache: boolean; cacheControl: string };

/** The /pkg answers, and the requests Chromium served from its memory cache. */
function watchPkg(cdp: CDPSession): { seen: Seen[]; fromMemory: Set<string> } {
  const seen: Seen[] = [];
  const fromMemory = new Set<string>();
  cdp.on('Network.requestServedFromCache', ({ requestId }) => fromMemory.add(requestId));
  cdp.on('Network.responseReceived', ({ requestId, response }) => {
    const path = new URL(response.url).pathname;
    if (!path.startsWith('/pkg/')) return;
    const headers = Object.fromEntries(
      Object.entries(response.headers).map(([name, value]) => [name.toLowerCase(), String(value)]),
    );
    seen.push({
      requestId,
      path,
      fromDiskCache: Boolean(response.fromDiskCache),
      cacheControl: headers['cache-control'] ?? '',
    });
  });
  return { seen, fromMemory };
}

test('the app loads its files by hashed, immutable names, and a second visit fetches none of them', async ({
  page,
  context,
}) => {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const { seen, fromMemory } = watchPkg(cdp);
  const cached = (r: Seen) => r.fromDiskCache || fromMemory.has(r.requestId);

  await gotoPage(page, '/login');
  await expect(page.getByRole('heading', { level: 1, name: 'Sign in' })).toBeVisible();
  const first = seen.splice(0);
  const paths = first.map((r) => r.path).sort();
  expect(paths, 'the script, the WASM and the stylesheet').toHaveLength(3);
  for (const path of paths) {
    expect(path).toMatch(/^\/pkg\/portcullis\.[0-9a-f]{16}(_bg)?\.(js|wasm|css)$/);
  }
  for (const response of first) {
    expect(cached(response), response.path).toBe(false);
    expect(response.cacheControl, response.path).toBe('public, max-age=31536000, immutable');
  }

  await gotoPage(page, '/register');
  await expect(page.getByRole('heading', { level: 1, name: 'Create an account' })).toBeVisible();
  const second = seen.splice(0);
  expect(second.map((r) => r.path).sort(), 'the same files').toEqual(paths);
  for (const response of second) {
    expect(cached(response), `${response.path} came from the cache`).toBe(true);
  }
});

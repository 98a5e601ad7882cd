// Front-end figures, measured in the page in Debian's Chromium (Playwright):
//
// - sign-out: from the click on "Sign out" (the event's own timestamp) to
//   the animation frame in which the login page's heading is in the
//   document (the frame that paints it), over N runs: median and p95;
// - cold load of /login with an empty cache, 1.6 Mbps down / 750 kbps up,
//   150 ms RTT and 4x CPU throttling: navigation start to hydrated (the app
//   sets `data-hydrated` on <body>), and the bytes /pkg sent;
// - a second visit: how many /pkg answers came over the network.
//
// Run by `scripts/bench --front-end` against a release server it starts:
//   node benches/front_end.mjs --base http://localhost:PORT [--runs 20]
// Prints a Markdown table. Not a test: it asserts nothing about time.

import { chromium } from '@playwright/test';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const base = option('base', 'http://localhost:3000').replace(/\/+$/, '');
const runs = Number(option('runs', '20'));

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'],
});

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
const median = (values) => percentile(values, 50);
const ms = (v) => `${v.toFixed(1)} ms`;

async function hydrated(page) {
  await page.waitForSelector('body[data-hydrated=true]', { state: 'attached' });
}

async function register(page, email, password) {
  const response = await page.request.post(`${base}/api/register`, {
    form: { email, password, password_confirm: password },
    headers: { Accept: 'application/json' },
  });
  if (response.status() !== 200) throw new Error(`register: ${response.status()} ${await response.text()}`);
}

async function signIn(page, email, password) {
  await page.goto(`${base}/login`);
  await hydrated(page);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByTestId('signed-in-email').waitFor();
}

/** One sign-out, timed in the page: click → frame with the login heading. */
async function timedSignOut(page) {
  await page.evaluate(() => {
    window.__signOut = new Promise((resolve) => {
      let clicked = null;
      addEventListener(
        'click',
        (event) => {
          if (event.target.closest('button')?.textContent?.includes('Sign out')) {
            clicked = event.timeStamp;
          }
        },
        { capture: true, once: false },
      );
      const seen = () => document.querySelector('h1#login-title');
      new MutationObserver((_, observer) => {
        if (clicked !== null && seen()) {
          observer.disconnect();
          requestAnimationFrame((frame) => {
            // The server calls made on the way, on the click's clock.
            const calls = performance
              .getEntriesByType('resource')
              .filter((entry) => entry.startTime >= clicked && entry.startTime <= frame)
              .map((entry) => ({
                path: new URL(entry.name).pathname,
                start: entry.startTime - clicked,
                end: entry.responseEnd - clicked,
              }));
            performance.clearResourceTimings();
            resolve({ total: frame - clicked, calls });
          });
        }
      }).observe(document, { childList: true, subtree: true });
    });
  });
  await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
  return page.evaluate(() => window.__signOut);
}

const results = [];

// Sign-out, N times, one account, one page (client-side navigation).
{
  const context = await browser.newContext();
  const page = await context.newPage();
  const email = `bench-${Date.now()}@example.com`;
  const password = 'violet kettle anthem 42';
  await register(page, email, password);
  const times = [];
  // Per server path: when its call started and ended after the click.
  const calls = new Map();
  for (let run = 0; run < runs; run += 1) {
    await signIn(page, email, password);
    await page.goto(`${base}/`);
    await hydrated(page);
    await page.getByTestId('signed-in-email').waitFor();
    const { total, calls: made } = await timedSignOut(page);
    times.push(total);
    for (const { path, start, end } of made) {
      if (!calls.has(path)) calls.set(path, { starts: [], ends: [] });
      calls.get(path).starts.push(start);
      calls.get(path).ends.push(end);
    }
  }
  results.push([`Sign-out, click to login heading painted (${runs} runs)`, `median ${ms(median(times))}, p95 ${ms(percentile(times, 95))}, min ${ms(Math.min(...times))}, max ${ms(Math.max(...times))}`]);
  for (const [path, { starts, ends }] of calls) {
    results.push([`… server call before the paint: ${path} (in ${starts.length} of ${runs} runs)`, `median start ${ms(median(starts))}, median answer ${ms(median(ends))} after the click`]);
  }
  await context.close();
}

// Cold load, throttled; then a second visit.
{
  const context = await browser.newContext();
  // When the app marks <body> hydrated, on the page's own clock.
  await context.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.body?.dataset.hydrated === 'true' && window.__hydratedAt === undefined) {
        window.__hydratedAt = performance.now();
        observer.disconnect();
      }
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-hydrated'] });
  });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 150,
    downloadThroughput: (1.6 * 1000 * 1000) / 8,
    uploadThroughput: (750 * 1000) / 8,
  });
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
  const network = new Map();
  // Memory-cache hits are reported apart from their answer.
  const fromMemory = new Set();
  cdp.on('Network.requestServedFromCache', ({ requestId }) => fromMemory.add(requestId));
  cdp.on('Network.responseReceived', ({ requestId, response }) => {
    if (new URL(response.url).pathname.startsWith('/pkg/')) {
      network.set(requestId, {
        url: response.url,
        cached: response.fromDiskCache || fromMemory.has(requestId),
        encoding: response.headers['content-encoding'] ?? response.headers['Content-Encoding'] ?? 'identity',
      });
    }
  });
  const bytes = new Map();
  cdp.on('Network.loadingFinished', ({ requestId, encodedDataLength }) => {
    if (network.has(requestId)) bytes.set(requestId, encodedDataLength);
  });
  await page.goto(`${base}/login`, { waitUntil: 'commit' });
  await hydrated(page);
  const hydratedAt = await page.evaluate(() => window.__hydratedAt);
  await page.waitForLoadState('load');
  const sent = [...bytes.values()].reduce((a, b) => a + b, 0);
  const encodings = [...new Set([...network.values()].map((r) => r.encoding))].join(', ');
  results.push(['Cold /login, 1.6 Mbps / 150 ms RTT / 4x CPU: navigation to hydrated', `${ms(hydratedAt)} (/pkg: ${network.size} files, ${sent.toLocaleString('en-US')} bytes on the wire, ${encodings})`]);

  network.clear();
  bytes.clear();
  await page.goto(`${base}/register`);
  await hydrated(page);
  const fetched = [...network.values()].filter((r) => !r.cached).length;
  results.push(['Second visit (/register): /pkg answers over the network', `${fetched} of ${network.size}`]);
  await context.close();
}

await browser.close();

console.log('| Front end, in the page (Chromium) | Figure |');
console.log('|---|---|');
for (const [name, value] of results) console.log(`| ${name} | ${value} |`);

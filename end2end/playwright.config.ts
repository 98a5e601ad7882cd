import { defineConfig, devices } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * End-to-end tests for Portcullis.
 *
 * Two modes:
 * - default: Playwright starts the already-built server itself
 *   (`../target/debug/portcullis`, or `$PORTCULLIS_BIN`) on 127.0.0.1:3100
 *   with a fresh data directory (so a fresh SQLite database) per run. The
 *   browser opens it as `http://localhost:3100`, the server's development
 *   origin: mailed links point there, and passkeys need a domain;
 * - `PORTCULLIS_E2E_BASE_URL` set: someone else runs the server (e.g.
 *   `cargo leptos end-to-end`); `global-setup.ts` waits for its `/readyz`.
 */

const externalBaseURL = process.env.PORTCULLIS_E2E_BASE_URL?.trim() || undefined;
const LOCAL_ADDR = '127.0.0.1:3100';
const baseURL = (externalBaseURL ?? 'http://localhost:3100').replace(/\/+$/, '');

// This file is evaluated by the runner and again by every worker. Make the
// data directory once, in the runner; workers inherit it through the
// environment. It is removed when the runner exits (after the server has been
// stopped), unless PORTCULLIS_E2E_KEEP_DATA is set (to inspect the database).
if (!externalBaseURL && !process.env.PORTCULLIS_E2E_DATA_DIR) {
  const created = mkdtempSync(path.join(tmpdir(), 'portcullis-e2e-'));
  process.env.PORTCULLIS_E2E_DATA_DIR = created;
  if (!process.env.PORTCULLIS_E2E_KEEP_DATA) {
    process.on('exit', () => rmSync(created, { recursive: true, force: true }));
  }
}
const dataDir = process.env.PORTCULLIS_E2E_DATA_DIR ?? '';

// Two more instances sharing one PostgreSQL database, for the tests that span
// instances (live-signout-instances.spec.ts), when PostgreSQL answers. The
// database is made once, in the runner, and dropped when it exits.
const postgresAdminURL =
  process.env.PORTCULLIS_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
if (
  !externalBaseURL &&
  process.env.PORTCULLIS_E2E_POSTGRES_DB === undefined &&
  spawnSync('pg_isready', ['-q', '-d', postgresAdminURL]).status === 0
) {
  const name = `portcullis_e2e_${process.pid}_${Date.now()}`;
  const made = spawnSync('psql', [postgresAdminURL, '-qc', `CREATE DATABASE ${name}`]);
  process.env.PORTCULLIS_E2E_POSTGRES_DB = made.status === 0 ? name : '';
  if (made.status === 0) {
    process.on('exit', () => {
      spawnSync('psql', [postgresAdminURL, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
    });
  }
}
const postgresDB = process.env.PORTCULLIS_E2E_POSTGRES_DB || '';
const INSTANCE_ADDRS = ['127.0.0.1:3101', '127.0.0.1:3102'];
// The tests find the instances here (workers inherit the environment).
process.env.PORTCULLIS_E2E_INSTANCES = postgresDB
  ? INSTANCE_ADDRS.map((addr) => `http://${addr.replace('127.0.0.1', 'localhost')}`).join(',')
  : '';

// CI may build into another target directory ($CARGO_TARGET_DIR/debug/portcullis).
const binary = process.env.PORTCULLIS_BIN
  ? path.resolve(process.env.PORTCULLIS_BIN)
  : path.resolve(__dirname, '../target/debug/portcullis');
const siteRoot = path.resolve(__dirname, '../target/site');

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 2,
  reporter: 'list',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  // Only when the server is started by someone else, who may not wait for it.
  globalSetup: externalBaseURL ? './global-setup.ts' : undefined,
  use: {
    baseURL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions: {
          executablePath: '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
          ],
        },
      },
    },
  ],
  webServer: externalBaseURL
    ? undefined
    : [
      {
        command: shellQuote(binary),
        url: `http://${LOCAL_ADDR}/readyz`,
        reuseExistingServer: false,
        timeout: 60_000,
        stdout: 'ignore',
        stderr: 'pipe',
        env: {
          LEPTOS_SITE_ADDR: LOCAL_ADDR,
          LEPTOS_SITE_ROOT: siteRoot,
          PORTCULLIS_DATA_DIR: dataDir,
          RUST_LOG: 'warn',
          // The server also reads a `.env` (without overriding the
          // environment). Pin what the tests depend on so a developer's
          // `.env` cannot point them at another database or make the
          // cookies `Secure` on plain http.
          DATABASE_URL: `sqlite://${dataDir}/portcullis.db`,
          PORTCULLIS_PUBLIC_URL: '',
          PORTCULLIS_SECURE_COOKIES: '',
          PORTCULLIS_TRUST_FORWARDED_FOR: '',
          PORTCULLIS_TRUSTED_PROXIES: '',
          // Mail goes to <data dir>/outbox/, where the recovery test reads it.
          PORTCULLIS_SMTP_URL: '',
          // Every test registers its own account, all from 127.0.0.1.
          PORTCULLIS_REGISTER_IP_MAX_ATTEMPTS: '10000',
          // The throttling test locks its own account after 5 failures; a
          // long first lockout keeps it locked however slow the machine is.
          PORTCULLIS_LOGIN_BACKOFF_BASE: '30s',
        },
      },
      ...(postgresDB ? INSTANCE_ADDRS : []).map((addr, i) => ({
        command: shellQuote(binary),
        url: `http://${addr}/readyz`,
        reuseExistingServer: false,
        timeout: 60_000,
        stdout: 'ignore' as const,
        stderr: 'pipe' as const,
        env: {
          LEPTOS_SITE_ADDR: addr,
          LEPTOS_SITE_ROOT: siteRoot,
          PORTCULLIS_DATA_DIR: path.join(dataDir, `instance-${i}`),
          RUST_LOG: 'warn',
          DATABASE_URL: postgresAdminURL.replace(/\/[^/]*$/, `/${postgresDB}`),
          // Instances of one deployment share the signing key.
          PORTCULLIS_JWT_KEYS: 'e2e:ZTJlLW9ubHktc2lnbmluZy1rZXktMzItYnl0ZXMtbG9uZyE=',
          // And the key that seals TOTP secrets (32 bytes).
          PORTCULLIS_DATA_KEY: 'e2e:ZTJlLW9ubHktZGF0YS1zZWFsaW5nLWtleS0zMmJ5dGU=',
          PORTCULLIS_PUBLIC_URL: '',
          PORTCULLIS_SECURE_COOKIES: '',
          PORTCULLIS_TRUST_FORWARDED_FOR: '',
          PORTCULLIS_TRUSTED_PROXIES: '',
          PORTCULLIS_SMTP_URL: '',
          PORTCULLIS_REGISTER_IP_MAX_ATTEMPTS: '10000',
        },
      })),
    ],
});

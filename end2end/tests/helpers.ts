import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { expect, type APIRequestContext, type BrowserContext, type ConsoleMessage, type Page } from '@playwright/test';

/** Names of the session cookies on plain http (no `__Host-` prefix). */
export const ACCESS_COOKIE = 'portcullis_access';
export const REFRESH_COOKIE = 'portcullis_refresh';

export const PASSWORD = 'violet kettle anthem 42';
export const NEW_PASSWORD = 'copper lantern meadow 77';

export const SIGNED_OUT_NOTICE = 'You have been signed out.';
export const SESSION_ENDED_NOTICE = 'Your session ended. Please sign in again.';
export const ENDED_ELSEWHERE_NOTICE = 'Your session was ended on another device.';
export const PASSWORD_CHANGED_NOTICE = 'Password changed. Your other devices have been signed out.';
export const SESSION_REVOKED_NOTICE = 'That session has been signed out.';
export const BAD_CREDENTIALS = 'Incorrect email or password.';
export const CHECK_EMAIL_NOTICE = 'We sent a link to confirm your email address.';

export interface Credentials {
  email: string;
  password: string;
}

/** A user nobody else uses, so tests stay independent and can run in parallel. */
export function newCredentials(password = PASSWORD): Credentials {
  const random = Math.random().toString(36).slice(2, 10);
  return { email: `e2e-${Date.now()}-${random}@example.com`, password };
}

export interface Options {
  /** Wait for the WASM to hydrate after full page loads (default true). Pass false with JavaScript off. */
  hydrate?: boolean;
}

/** The app sets `data-hydrated="true"` on `<body>` once the WASM has hydrated. */
export async function waitForHydration(page: Page): Promise<void> {
  await page.waitForSelector('body[data-hydrated=true]', { state: 'attached' });
}

export async function gotoPage(page: Page, url: string, { hydrate = true }: Options = {}): Promise<void> {
  await page.goto(url);
  if (hydrate) await waitForHydration(page);
}

// ---------------------------------------------------------------- mail

// The server Playwright starts has no SMTP server configured, so it writes
// every message to <data dir>/outbox/ as an .eml file: the real delivery
// path of a fresh install, read here like a mailbox.
export const OUTBOX = path.join(process.env.PORTCULLIS_E2E_DATA_DIR ?? '', 'outbox');

/** The `linkPath` link (e.g. `/reset-password`) in the mail `subject` to `email`, once it has arrived. */
export async function mailedLink(email: string, subject: string, linkPath: string): Promise<string> {
  let link = '';
  const pattern = new RegExp(`https?://\\S+${linkPath}\\?token=\\S+`);
  await expect
    .poll(
      async () => {
        for (const name of readdirSync(OUTBOX).filter((n) => n.endsWith('.eml'))) {
          const mail = await simpleParser(readFileSync(path.join(OUTBOX, name)));
          const to = Array.isArray(mail.to) ? mail.to.map((a) => a.text).join(',') : (mail.to?.text ?? '');
          if (to.includes(email) && mail.subject === subject) {
            expect(mail.html, 'the HTML part carries the link too').toContain(`${linkPath}?token=`);
            link = pattern.exec(mail.text ?? '')?.[0] ?? '';
            return link;
          }
        }
        return '';
      },
      { message: `a "${subject}" mail to ${email} in ${OUTBOX}`, timeout: 15_000 },
    )
    .not.toBe('');
  return link;
}

// ---------------------------------------------------------------- locators

export const loginHeading = (page: Page) => page.getByRole('heading', { level: 1, name: 'Sign in', exact: true });
export const headerNav = (page: Page) => page.getByRole('banner').getByRole('navigation', { name: 'Account' });
export const headerSignOut = (page: Page) => page.getByRole('banner').getByRole('button', { name: 'Sign out' });
export const headerAccountLink = (page: Page) =>
  page.getByRole('banner').getByRole('link', { name: 'Account', exact: true });
export const statusNotice = (page: Page, text: string) => page.getByRole('status').filter({ hasText: text });

// ---------------------------------------------------------------- flows

/**
 * Creates an account from the register page, which leads to the login page
 * (registering signs no one in), and signs in there; ends on the home page,
 * signed in.
 */
export async function register(page: Page, creds: Credentials, opts: Options = {}): Promise<void> {
  await gotoPage(page, '/register', opts);
  await expect(page.getByRole('heading', { level: 1, name: 'Create an account' })).toBeVisible();
  await page.getByLabel('Email', { exact: true }).fill(creds.email);
  await page.getByLabel('Password', { exact: true }).fill(creds.password);
  await page.getByLabel('Confirm password', { exact: true }).fill(creds.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/login\?notice=check_email/);
  await expect(statusNotice(page, CHECK_EMAIL_NOTICE)).toBeVisible();
  await submitSignIn(page, creds);
  await expectSignedInHome(page, creds.email);
}

/**
 * Creates an account without a browser (the `register` server function, as a
 * script would call it), for tests about what happens next in a browser that
 * is not signed in.
 */
export async function registerViaApi(request: APIRequestContext, creds: Credentials): Promise<void> {
  const response = await request.post('/api/register', {
    form: { email: creds.email, password: creds.password, password_confirm: creds.password },
    headers: { Accept: 'application/json' },
  });
  expect(response.status(), await response.text()).toBe(200);
}

/** Fills and submits the sign-in form of the page as it is (must be a login page). */
export async function submitSignIn(page: Page, creds: Credentials): Promise<void> {
  await expect(loginHeading(page)).toBeVisible();
  await page.getByLabel('Email', { exact: true }).fill(creds.email);
  await page.getByLabel('Password', { exact: true }).fill(creds.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** Signs in from `/login`; ends on the home page. */
export async function signIn(page: Page, creds: Credentials, opts: Options = {}): Promise<void> {
  await gotoPage(page, '/login', opts);
  await submitSignIn(page, creds);
  await expectSignedInHome(page, creds.email);
}

export async function expectSignedInHome(page: Page, email: string): Promise<void> {
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { level: 1, name: 'You are signed in' })).toBeVisible();
  await expect(page.getByTestId('home-email')).toHaveText(email);
  await expect(page.getByTestId('signed-in-email')).toHaveText(email);
}

/** The page shows the login form and nothing of the signed-in user. */
export async function expectLoginPage(page: Page, email?: string): Promise<void> {
  await expect(page).toHaveURL(/\/login(\?|$)/);
  await expect(loginHeading(page)).toBeVisible();
  await expect(headerSignOut(page)).toHaveCount(0);
  await expect(page.getByTestId('signed-in-email')).toHaveCount(0);
  if (email) await expect(page.getByText(email)).toHaveCount(0);
}

/** Clicks the header's Sign out button; ends on the login page with the notice. */
export async function signOutViaHeader(page: Page, email?: string): Promise<void> {
  await headerSignOut(page).click();
  await expect(page).toHaveURL(/\/login\?notice=signed_out$/);
  await expect(statusNotice(page, SIGNED_OUT_NOTICE)).toBeVisible();
  await expectLoginPage(page, email);
}

export async function authCookies(context: BrowserContext) {
  const cookies = await context.cookies();
  return cookies.filter((c) => c.name === ACCESS_COOKIE || c.name === REFRESH_COOKIE);
}

export async function expectAuthCookies(context: BrowserContext): Promise<void> {
  const names = (await authCookies(context)).map((c) => c.name).sort();
  expect(names, 'both session cookies are set').toEqual([ACCESS_COOKIE, REFRESH_COOKIE]);
}

export async function expectNoAuthCookies(context: BrowserContext): Promise<void> {
  await expect
    .poll(async () => (await authCookies(context)).map((c) => c.name), {
      message: 'the session cookies are gone',
      timeout: 5_000,
    })
    .toEqual([]);
}

// ---------------------------------------------------------------- console

export interface ProblemWatch {
  problems: string[];
  /**
   * Tolerates, until the returned function is called, the console error
   * Chromium prints for an expected failed request (e.g. 401 from a wrong
   * password) to a URL containing `urlPart` with that `status`.
   */
  allowFailedRequest(urlPart: string, status: number): () => void;
  expectNone(): void;
}

/**
 * Collects uncaught page errors, console errors and any Content-Security-Policy
 * violation (whatever the console level) of `page`. Chromium logs violations
 * to the console; a `securitypolicyviolation` listener in every document of
 * the page reports them too, in case the console wording changes.
 */
export async function watchPageProblems(page: Page, label = 'page'): Promise<ProblemWatch> {
  const problems: string[] = [];
  // Also printed at once, so a test failing earlier for another reason still shows them.
  const report = (problem: string) => {
    problems.push(problem);
    console.log(problem);
  };
  const allowed = new Set<{ urlPart: string; status: number }>();
  const isAllowed = (msg: ConsoleMessage) => {
    const text = msg.text();
    const url = msg.location()?.url ?? '';
    for (const a of allowed) {
      if (
        url.includes(a.urlPart) &&
        text.includes('Failed to load resource') &&
        text.includes(`status of ${a.status}`)
      ) {
        return true;
      }
    }
    return false;
  };
  page.on('console', (msg) => {
    const text = msg.text();
    const csp = /content[- ]security[- ]policy|securitypolicyviolation/i.test(text);
    if (csp || (msg.type() === 'error' && !isAllowed(msg))) {
      const where = msg.location()?.url ? ` (${msg.location().url})` : '';
      report(`[${label}] console.${msg.type()}: ${text}${where}`);
    }
  });
  page.on('pageerror', (error) => {
    report(`[${label}] pageerror: ${error.name}: ${error.message}\n${error.stack ?? ''}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.warn(
        `securitypolicyviolation: ${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} ` +
          `at ${e.sourceFile}:${e.lineNumber} (${e.disposition})`,
      );
    });
  });
  return {
    problems,
    allowFailedRequest(urlPart, status) {
      const entry = { urlPart, status };
      allowed.add(entry);
      return () => allowed.delete(entry);
    },
    expectNone() {
      expect(problems, 'no page errors, console errors or CSP violations').toEqual([]);
    },
  };
}

export interface TextSightings {
  /** URLs of the documents in which the text appeared while armed. */
  sightings: string[];
  arm(): void;
  disarm(): void;
}

/**
 * Reports every moment `text` is in the page (in this document and in every
 * later one), so an assertion can cover "never shown", not just "not shown
 * at the end". Needs JavaScript.
 */
export async function watchForText(page: Page, text: string): Promise<TextSightings> {
  const sightings: string[] = [];
  let armed = false;
  await page.exposeBinding('__portcullisE2eTextSeen', (_source, url: string) => {
    if (armed) sightings.push(url);
  });
  const install = (needle: string) => {
    const w = window as unknown as { __portcullisE2eTextSeen(url: string): void };
    const check = () => {
      const visible = document.body?.innerText ?? '';
      if (visible.includes(needle)) w.__portcullisE2eTextSeen(location.href);
    };
    new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
    check();
  };
  await page.addInitScript(install, text);
  await page.evaluate(install, text);
  return {
    sightings,
    arm: () => void (armed = true),
    disarm: () => void (armed = false),
  };
}

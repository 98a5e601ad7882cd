import { test, expect, type Page } from '@playwright/test';
import { Secret, TOTP } from 'otpauth';
import {
  type Credentials,
  type Options,
  expectLoginPage,
  expectNoAuthCookies,
  expectSignedInHome,
  gotoPage,
  newCredentials,
  register,
  signOutViaHeader,
  statusNotice,
  submitSignIn,
} from './helpers';

// Two-factor sign-in from the account page, as a person does it: the key is
// read off the page as text and typed into an "app" (otpauth, RFC 6238),
// whose codes the test then enters.

// Each test waits for fresh 30-second TOTP steps (up to 15 s each, several
// times), which on a busy machine outlasts the default minute.
test.describe.configure({ timeout: 150_000 });

const STEP = 30;

function appFor(secretText: string): TOTP {
  return new TOTP({
    issuer: 'Portcullis',
    algorithm: 'SHA1',
    digits: 6,
    period: STEP,
    secret: Secret.fromBase32(secretText.replace(/\s+/g, '')),
  });
}

/** The app's code `steps` periods from now. */
function codeAt(app: TOTP, steps: number): string {
  return app.generate({ timestamp: Date.now() + steps * STEP * 1000 });
}

/** Six digits that are none of the codes the server would accept now. */
function wrongCode(app: TOTP): string {
  const valid = [-1, 0, 1].map((steps) => codeAt(app, steps));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!valid.includes(code)) return code;
  }
}

/** Waits until the current period has at least 15 seconds left. */
async function earlyInAStep(): Promise<void> {
  const into = Math.floor(Date.now() / 1000) % STEP;
  if (into > 15) await new Promise((resolve) => setTimeout(resolve, (STEP - into + 1) * 1000));
}

/** Sets up the app from `/account` and confirms it; returns it and the recovery codes shown. */
async function turnOn(page: Page, opts: Options): Promise<{ app: TOTP; codes: string[] }> {
  await earlyInAStep();
  await gotoPage(page, '/account', opts);
  const section = page.locator('#two-factor');
  await section.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await expect(section.getByRole('img', { name: 'QR code of the authenticator key' })).toBeVisible();
  await expect(section.locator('.qr svg')).toBeVisible();
  const app = appFor(await section.getByTestId('totp-secret').innerText());
  const code = section.getByLabel('Code from your app', { exact: true });
  await expect(code).toHaveAttribute('autocomplete', 'one-time-code');
  if (opts.hydrate !== false) await expect(code).toHaveAttribute('inputmode', 'numeric');
  await code.fill(codeAt(app, 0));
  await section.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();

  await expect(page).toHaveURL(/\/account\/recovery-codes$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Your recovery codes' })).toBeVisible();
  // The codes arrive after the heading when the page is reached client-side.
  await expect(page.getByTestId('recovery-codes').locator('li')).toHaveCount(10);
  const codes = (await page.getByTestId('recovery-codes').locator('li').allInnerTexts()).map((c) => c.trim());
  expect(codes).toHaveLength(10);
  for (const c of codes) expect(c).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
  await expect(page.getByRole('link', { name: 'Download as .txt' })).toHaveAttribute(
    'href',
    '/account/recovery-codes.txt',
  );
  await page.getByRole('button', { name: 'I have saved them' }).click();
  await expect(page).toHaveURL(/\/account\?notice=recovery_codes_saved$/);
  await expect(page.getByTestId('recovery-codes-left')).toHaveText('10 unused recovery codes left.');
  return { app, codes };
}

/** The password step, which leads to `/login/verify` and starts no session. */
async function passwordStep(page: Page, creds: Credentials, opts: Options): Promise<void> {
  await gotoPage(page, '/login', opts);
  await submitSignIn(page, creds);
  await expect(page).toHaveURL(/\/login\/verify/);
  await expect(page.getByRole('heading', { level: 1, name: 'Enter your code' })).toBeVisible();
  await expectNoAuthCookies(page.context());
}

async function enterCode(page: Page, code: string): Promise<void> {
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
}

for (const javaScript of [true, false]) {
  test(`turn on two-factor sign-in, then sign in with a code and with a recovery code (JavaScript ${
    javaScript ? 'on' : 'off'
  })`, async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: javaScript });
    const page = await context.newPage();
    const opts = { hydrate: javaScript };
    const creds = newCredentials();
    await register(page, creds, opts);
    const { app, codes } = await turnOn(page, opts);

    await signOutViaHeader(page, creds.email);

    // The password alone: the second step, and a wrong code is said inline.
    await passwordStep(page, creds, opts);
    await enterCode(page, wrongCode(app));
    await expect(page.getByText('That code is not right, or was used already.')).toBeVisible();
    await enterCode(page, codeAt(app, 1));
    await expectSignedInHome(page, creds.email);

    // Again with a recovery code; the account page then counts nine left.
    await signOutViaHeader(page, creds.email);
    await passwordStep(page, creds, opts);
    if (javaScript) {
      await page.getByRole('button', { name: 'Use a recovery code' }).click();
      await expect(page.getByLabel('Code', { exact: true })).toHaveAttribute('inputmode', 'text');
    }
    await enterCode(page, codes[0]);
    await expectSignedInHome(page, creds.email);
    await gotoPage(page, '/account', opts);
    await expect(page.getByTestId('recovery-codes-left')).toHaveText('9 unused recovery codes left.');

    // A used recovery code is gone.
    const second = await browser.newContext({ javaScriptEnabled: javaScript });
    const other = await second.newPage();
    await passwordStep(other, creds, opts);
    await enterCode(other, codes[0]);
    await expect(other.getByText('That code is not right, or was used already.')).toBeVisible();
    await expect(other).toHaveURL(/\/login\/verify/);
    await second.close();
    await context.close();
  });
}

test('turning two-factor sign-in off needs the password and a code, and signs out other devices', async ({
  browser,
}) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const creds = newCredentials();
  await register(page, creds);
  const { app, codes } = await turnOn(page, {});

  // A second device, signed in with both factors.
  const laptop = await browser.newContext();
  const other = await laptop.newPage();
  await passwordStep(other, creds, {});
  await enterCode(other, codeAt(app, 1));
  await expectSignedInHome(other, creds.email);

  const form = page.locator('#disable-form');
  await form.getByLabel('Password', { exact: true }).fill(creds.password);
  await form.getByLabel('Code from your app, or a recovery code', { exact: true }).fill(wrongCode(app));
  await form.getByRole('button', { name: 'Turn off two-factor sign-in' }).click();
  await expect(form.getByText('That code is not right, or was used already.')).toBeVisible();
  // The app's codes up to the next period were used by the two sign-ins: a
  // recovery code does it.
  await form.getByLabel('Code from your app, or a recovery code', { exact: true }).fill(codes[0]);
  await form.getByRole('button', { name: 'Turn off two-factor sign-in' }).click();
  await expect(statusNotice(page, 'Two-factor sign-in is off.')).toBeVisible();
  await expect(page.locator('#two-factor').getByRole('button', { name: 'Set up an authenticator app' })).toBeVisible();

  // The other device's next request finds its session over.
  await other.reload();
  await expectLoginPage(other, creds.email);
  await laptop.close();
  await context.close();
});

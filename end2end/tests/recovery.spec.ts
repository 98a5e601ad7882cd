import { test, expect, type Page } from '@playwright/test';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import {
  NEW_PASSWORD,
  expectSignedInHome,
  gotoPage,
  loginHeading,
  newCredentials,
  register,
  statusNotice,
  submitSignIn,
} from './helpers';

// The server Playwright starts has no SMTP server configured, so it writes
// every message to <data dir>/outbox/ as an .eml file: the real delivery
// path of a fresh install, read here like a mailbox.
const outbox = path.join(process.env.PORTCULLIS_E2E_DATA_DIR ?? '', 'outbox');

/** The reset link mailed to `email`, once it has arrived. */
async function resetLinkFor(email: string): Promise<string> {
  let link = '';
  await expect
    .poll(
      async () => {
        for (const name of readdirSync(outbox).filter((n) => n.endsWith('.eml'))) {
          const mail = await simpleParser(readFileSync(path.join(outbox, name)));
          const to = Array.isArray(mail.to) ? mail.to.map((a) => a.text).join(',') : (mail.to?.text ?? '');
          if (to.includes(email) && mail.subject === 'Reset your Portcullis password') {
            expect(mail.html, 'the HTML part carries the link too').toContain('/reset-password?token=');
            link = /https?:\/\/\S+\/reset-password\?token=\S+/.exec(mail.text ?? '')?.[0] ?? '';
            return link;
          }
        }
        return '';
      },
      { message: `a reset mail to ${email} in ${outbox}`, timeout: 15_000 },
    )
    .not.toBe('');
  return link;
}

/** Fills and submits the reset page's form. */
async function setNewPassword(page: Page, password: string): Promise<void> {
  await page.getByLabel('New password', { exact: true }).fill(password);
  await page.getByLabel('Confirm new password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Set new password' }).click();
}

async function expectSignedOut(page: Page): Promise<void> {
  await gotoPage(page, '/account');
  await expect(loginHeading(page)).toBeVisible();
}

test.describe('account recovery', () => {
  test.skip(!process.env.PORTCULLIS_E2E_DATA_DIR, 'reads the outbox of the server Playwright starts');

  test('a forgotten password is reset through the mailed link, and the old session is signed out', async ({
    page,
    browser,
  }) => {
    const creds = newCredentials();
    // The account is signed in on another device.
    const laptop = await browser.newContext();
    const laptopPage = await laptop.newPage();
    await register(laptopPage, creds);

    await gotoPage(page, '/login');
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Reset your password' })).toBeVisible();
    await page.getByLabel('Email', { exact: true }).fill(creds.email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await expect(statusNotice(page, 'If an account exists for that address')).toBeVisible();

    const link = await resetLinkFor(creds.email);
    await gotoPage(page, link);
    // The token left the address bar before the page rendered.
    await expect(page).toHaveURL(/\/reset-password$/);
    await expect(page.getByRole('heading', { level: 1, name: 'Choose a new password' })).toBeVisible();
    await setNewPassword(page, NEW_PASSWORD);

    await expect(loginHeading(page)).toBeVisible();
    await expect(statusNotice(page, 'Your password has been reset')).toBeVisible();
    await submitSignIn(page, { email: creds.email, password: NEW_PASSWORD });
    await expectSignedInHome(page, creds.email);

    await expectSignedOut(laptopPage);
    await laptop.close();

    // The link worked once.
    await gotoPage(page, link);
    await setNewPassword(page, 'another quiet harbour 9');
    await expect(page.getByRole('alert')).toContainText('This link is invalid or has expired');
    await expect(page.getByRole('link', { name: 'Request a new link' })).toBeVisible();
  });

  test('without JavaScript the same reset works with plain forms', async ({ browser }) => {
    const creds = newCredentials();
    const js = await browser.newContext();
    await register(await js.newPage(), creds);
    await js.close();

    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await gotoPage(page, '/forgot-password', { hydrate: false });
    await page.getByLabel('Email', { exact: true }).fill(creds.email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await expect(statusNotice(page, 'If an account exists for that address')).toBeVisible();

    await gotoPage(page, await resetLinkFor(creds.email), { hydrate: false });
    await expect(page).toHaveURL(/\/reset-password$/);
    await setNewPassword(page, NEW_PASSWORD);
    await expect(loginHeading(page)).toBeVisible();
    await expect(statusNotice(page, 'Your password has been reset')).toBeVisible();
    await submitSignIn(page, { email: creds.email, password: NEW_PASSWORD });
    await expect(page.getByRole('heading', { level: 1 })).not.toHaveText('Sign in');
    await context.close();
  });
});

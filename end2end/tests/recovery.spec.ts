import { test, expect, type Page } from '@playwright/test';
import {
  NEW_PASSWORD,
  mailedLink,
  expectSignedInHome,
  gotoPage,
  loginHeading,
  newCredentials,
  register,
  statusNotice,
  submitSignIn,
} from './helpers';

/** The reset link mailed to `email`, once it has arrived. */
function resetLinkFor(email: string): Promise<string> {
  return mailedLink(email, 'Reset your Portcullis password', '/reset-password');
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

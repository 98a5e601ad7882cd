import { expect, test, type Browser, type Page } from '@playwright/test';
import {
  ENDED_ELSEWHERE_NOTICE,
  NEW_PASSWORD,
  PASSWORD_CHANGED_NOTICE,
  SESSION_REVOKED_NOTICE,
  expectLoginPage,
  gotoPage,
  headerAccountLink,
  newCredentials,
  register,
  signIn,
  statusNotice,
  watchPageProblems,
  type Credentials,
} from './helpers';

// Live sign-out (#15): two devices are two browser contexts (no shared
// cookies, no BroadcastChannel). When A ends B's session, B's open page,
// untouched, shows the login page with the notice within 2 seconds: the
// server pushes the end over B's event stream. The test waits; it never
// clicks in B.

/** Device A on /account, device B signed in and parked on `parkB`. */
async function twoDevices(browser: Browser, pageA: Page, parkB: string) {
  const creds = newCredentials();
  await register(pageA, creds);
  const contextB = await browser.newContext();
  const pageB = await contextB.newPage();
  const watchB = await watchPageProblems(pageB, 'device B');
  await signIn(pageB, creds);
  if (parkB !== '/') await gotoPage(pageB, parkB);
  await headerAccountLink(pageA).click();
  await expect(pageA).toHaveURL(/\/account$/);
  await expect(pageA.getByTestId('session')).toHaveCount(2);
  // B's stream listens before A acts (the app marks <body> on `ready`).
  await pageB.waitForSelector('body[data-live=ready]', { state: 'attached' });
  return { creds, contextB, pageB, watchB };
}

/** B, untouched, lands on the login page with the notice, within 2 s of `since`. */
async function expectPushedToLogin(pageB: Page, creds: Credentials, since: number, next: string | null) {
  const left = () => Math.max(1, since + 2_000 - Date.now());
  const url = next ? new RegExp(`/login\\?next=${next.replace('/', '\\/')}&notice=ended_elsewhere$`) : /\/login\?notice=ended_elsewhere$/;
  await expect(pageB).toHaveURL(url, { timeout: left() });
  await expect(statusNotice(pageB, ENDED_ELSEWHERE_NOTICE)).toBeVisible({ timeout: left() });
  await expectLoginPage(pageB, creds.email);
}

test('"Sign out of all other devices" takes the other device\'s open page to the login page', async ({
  browser,
  page: pageA,
}) => {
  const { creds, contextB, pageB, watchB } = await twoDevices(browser, pageA, '/account');
  try {
    await pageA.getByRole('button', { name: 'Sign out of all other devices' }).click();
    const since = Date.now();
    await expect(pageA.getByTestId('session')).toHaveCount(1);
    await expectPushedToLogin(pageB, creds, since, '/account');
    // A stays signed in, on its page.
    await expect(pageA).toHaveURL(/\/account$/);
    await expect(pageA.getByTestId('signed-in-email')).toHaveText(creds.email);
    watchB.expectNone();
  } finally {
    await contextB.close();
  }
});

test('a password change takes the other device\'s open page to the login page', async ({ browser, page: pageA }) => {
  const { creds, contextB, pageB, watchB } = await twoDevices(browser, pageA, '/');
  try {
    await pageA.getByLabel('Current password', { exact: true }).fill(creds.password);
    await pageA.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await pageA.getByLabel('Confirm new password', { exact: true }).fill(NEW_PASSWORD);
    await pageA.getByRole('button', { name: 'Change password' }).click();
    const since = Date.now();
    await expect(statusNotice(pageA, PASSWORD_CHANGED_NOTICE)).toBeVisible();
    await expectPushedToLogin(pageB, creds, since, null);
    watchB.expectNone();
  } finally {
    await contextB.close();
  }
});

test('revoking a device from the list takes its open page to the login page', async ({ browser, page: pageA }) => {
  const { creds, contextB, pageB, watchB } = await twoDevices(browser, pageA, '/account');
  try {
    const otherDevice = pageA.getByTestId('session').filter({ hasNotText: 'This device' });
    const password = otherDevice.getByLabel('Your password, to confirm');
    if ((await password.count()) > 0) await password.fill(creds.password);
    await otherDevice.getByRole('button', { name: 'Revoke' }).click();
    const since = Date.now();
    await expect(statusNotice(pageA, SESSION_REVOKED_NOTICE)).toBeVisible();
    await expectPushedToLogin(pageB, creds, since, '/account');
    watchB.expectNone();
  } finally {
    await contextB.close();
  }
});

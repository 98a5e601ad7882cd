import { expect, test } from '@playwright/test';
import {
  ENDED_ELSEWHERE_NOTICE,
  SESSION_REVOKED_NOTICE,
  expectAuthCookies,
  expectLoginPage,
  headerAccountLink,
  newCredentials,
  register,
  signIn,
  statusNotice,
} from './helpers';

test('the Account page lists this device and the other one, and revoking the other signs it out', async ({
  browser,
  page: pageA,
  context: contextA,
}) => {
  const creds = newCredentials();
  await register(pageA, creds);

  const contextB = await browser.newContext();
  try {
    const pageB = await contextB.newPage();
    await signIn(pageB, creds);

    const sessions = pageA.getByTestId('session');
    const thisDevice = sessions.filter({ hasText: 'This device' });
    const otherDevice = sessions.filter({ hasNotText: 'This device' });

    await test.step('device A: the Account page lists two devices, one marked "This device"', async () => {
      await headerAccountLink(pageA).click();
      await expect(pageA).toHaveURL(/\/account$/);
      await expect(pageA.getByRole('heading', { level: 2, name: 'Signed-in devices' })).toBeVisible();
      await expect(sessions).toHaveCount(2);
      await expect(thisDevice).toHaveCount(1);
      await expect(otherDevice).toHaveCount(1);
      await expect(thisDevice.getByRole('button', { name: 'Revoke' })).toHaveCount(0);
      await expect(otherDevice.getByRole('button', { name: 'Revoke' })).toBeVisible();
    });

    await test.step('device A revokes device B', async () => {
      // A password is asked for only when the last sign-in is not recent.
      const password = otherDevice.getByLabel('Your password, to confirm');
      if ((await password.count()) > 0) await password.fill(creds.password);
      await otherDevice.getByRole('button', { name: 'Revoke' }).click();
      await expect(statusNotice(pageA, SESSION_REVOKED_NOTICE)).toBeVisible();
      await expect(sessions).toHaveCount(1);
      await expect(thisDevice).toHaveCount(1);
      // A itself is still signed in.
      await expect(pageA).toHaveURL(/\/account$/);
      await expect(pageA.getByTestId('signed-in-email')).toHaveText(creds.email);
      await expectAuthCookies(contextA);
    });

    await test.step('device B, untouched, goes to the login page by itself', async () => {
      // Pushed by the server over B's event stream (live-signout.spec.ts
      // times it); nothing is clicked in B.
      await expect(pageB).toHaveURL(/\/login\?notice=ended_elsewhere$/);
      await expect(statusNotice(pageB, ENDED_ELSEWHERE_NOTICE)).toBeVisible();
      await expectLoginPage(pageB, creds.email);
      await expect(pageB.getByRole('heading', { level: 1, name: 'You are signed in' })).toHaveCount(0);
    });
  } finally {
    await contextB.close();
  }
});

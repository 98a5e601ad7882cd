import { expect, test } from '@playwright/test';
import {
  BAD_CREDENTIALS,
  NEW_PASSWORD,
  PASSWORD_CHANGED_NOTICE,
  expectAuthCookies,
  expectLoginPage,
  expectNoAuthCookies,
  expectSignedInHome,
  headerAccountLink,
  newCredentials,
  register,
  signOutViaHeader,
  statusNotice,
  submitSignIn,
  waitForHydration,
  watchForText,
  watchPageProblems,
} from './helpers';

test.describe('sign-out with JavaScript', () => {
  test('register, sign out, Back, sign in, change password, old password refused, new one works', async ({
    page,
    context,
  }) => {
    // (g) No uncaught errors, console errors or CSP violations anywhere in the flow.
    const watch = await watchPageProblems(page);
    const creds = newCredentials();

    await test.step('register and land on the home page', async () => {
      await register(page, creds);
      await expectAuthCookies(context);
    });

    await test.step('sign out with the header button', async () => {
      await signOutViaHeader(page, creds.email);
      await expectNoAuthCookies(context);
    });

    await test.step('Back does not show the private page as signed in', async () => {
      // Not even for a moment: every appearance of the email is recorded.
      const email = await watchForText(page, creds.email);
      email.arm();
      await page.goBack();
      await expectLoginPage(page, creds.email);
      await expect(page.getByRole('heading', { name: 'You are signed in' })).toHaveCount(0);
      await page.waitForLoadState('networkidle');
      await expectLoginPage(page, creds.email);
      email.disarm();
      expect(email.sightings, 'pages that showed the signed-in email after Back').toEqual([]);
      await expectNoAuthCookies(context);
    });

    await test.step('sign in again', async () => {
      await waitForHydration(page);
      await submitSignIn(page, creds);
      await expectSignedInHome(page, creds.email);
      await expectAuthCookies(context);
    });

    await test.step('change the password on the Account page', async () => {
      await headerAccountLink(page).click();
      await expect(page).toHaveURL(/\/account$/);
      await expect(page.getByRole('heading', { level: 1, name: 'Account' })).toBeVisible();
      await page.getByLabel('Current password', { exact: true }).fill(creds.password);
      await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
      await page.getByLabel('Confirm new password', { exact: true }).fill(NEW_PASSWORD);
      await page.getByRole('button', { name: 'Change password' }).click();
      await expect(statusNotice(page, PASSWORD_CHANGED_NOTICE)).toBeVisible();
      // This device stays signed in, with fresh tokens.
      await expect(page.getByTestId('signed-in-email')).toHaveText(creds.email);
      await expectAuthCookies(context);
    });

    await test.step('sign out again', async () => {
      await signOutViaHeader(page, creds.email);
      await expectNoAuthCookies(context);
    });

    await test.step('the old password is refused with an inline error', async () => {
      // Chromium logs the expected 401 of the refused sign-in as a console error.
      const stopAllowing = watch.allowFailedRequest('/api/login', 401);
      await submitSignIn(page, creds);
      await expect(page.getByRole('alert')).toHaveText(BAD_CREDENTIALS);
      await expect(page).toHaveURL(/\/login(\?|$)/);
      await expectLoginPage(page, creds.email);
      await expectNoAuthCookies(context);
      stopAllowing();
    });

    await test.step('the new password works', async () => {
      await submitSignIn(page, { email: creds.email, password: NEW_PASSWORD });
      await expectSignedInHome(page, creds.email);
      await expectAuthCookies(context);
    });

    watch.expectNone();
  });
});

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

  test('the logout answer alone switches the page: no second request, from a page that needs a session too', async ({
    page,
    context,
  }) => {
    const watch = await watchPageProblems(page);
    const creds = newCredentials();
    await register(page, creds);
    await headerAccountLink(page).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Account' })).toBeVisible();
    // The page came by client-side navigation, so `networkidle` was reached
    // long ago and waits for nothing: wait for the devices and the activity
    // to be on the page instead. A read still in flight when the session ends
    // is rightly answered 401, and is not what this test is about.
    await expect(page.locator('ul.sessions > li').first()).toBeVisible();
    await expect(page.locator('ul.activity > li').first()).toBeVisible();

    // Every server call from the click on, and the page's paths on the way.
    const calls: string[] = [];
    page.on('request', (request) => {
      const path = new URL(request.url()).pathname;
      if (path.startsWith('/api/') || path.startsWith('/auth/')) calls.push(path);
    });
    // The header says "Sign in" in the same frame as the login heading.
    const headerLag = page.evaluate(
      () =>
        new Promise<boolean>((resolve) => {
          new MutationObserver((_, observer) => {
            if (document.querySelector('h1#login-title')) {
              observer.disconnect();
              resolve(document.querySelector('[data-testid="signed-in-email"]') !== null);
            }
          }).observe(document, { childList: true, subtree: true });
        }),
    );

    // Lands on /login?notice=signed_out: the account page, which needs a
    // session, sent no one to /login?next=/account on its way out.
    await signOutViaHeader(page, creds.email);
    await expectNoAuthCookies(context);
    expect(await headerLag, 'the header still named the account when the login page appeared').toBe(false);
    await page.waitForLoadState('networkidle');
    expect(calls, 'server calls after the click').toEqual(['/api/logout']);
    await expectLoginPage(page, creds.email);
    watch.expectNone();
  });
});

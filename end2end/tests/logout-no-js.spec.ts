import { expect, test, type Response } from '@playwright/test';
import {
  BAD_CREDENTIALS,
  expectAuthCookies,
  expectLoginPage,
  expectNoAuthCookies,
  expectSignedInHome,
  gotoPage,
  newCredentials,
  register,
  registerViaApi,
  signOutViaHeader,
  submitSignIn,
} from './helpers';

// Without JavaScript every form is a plain HTML form post, and the server
// answers with real redirects (303 after a server function, 302 for pages).
test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('register, sign out (plain form POST), Back, wrong password shows the error', async ({ page, context }) => {
    const creds = newCredentials();

    await test.step('register; the server redirects to the home page', async () => {
      await register(page, creds, { hydrate: false });
      // Really without JavaScript: nothing hydrated.
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      await expectAuthCookies(context);
    });

    await test.step('sign out: 303 to /login?notice=signed_out', async () => {
      const logout = page.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/logout',
      );
      await signOutViaHeader(page, creds.email);
      const response = await logout;
      expect(response.status()).toBe(303);
      expect(response.headers()['location']).toBe('/login?notice=signed_out');
      await expectNoAuthCookies(context);
    });

    await test.step('Back re-requests the private page, which is not shown', async () => {
      // Whatever the server answers on the way back must not contain the email.
      const documents: Response[] = [];
      const onResponse = (r: Response) => {
        if (r.request().resourceType() === 'document') documents.push(r);
      };
      page.on('response', onResponse);
      await page.goBack();
      page.off('response', onResponse);
      expect(documents.length, 'the browser asked the server again').toBeGreaterThan(0);
      for (const response of documents) {
        if (response.status() >= 300 && response.status() < 400) continue; // no body
        expect(await response.text(), `body of ${response.url()}`).not.toContain(creds.email);
      }
      await expectLoginPage(page, creds.email);
      await expect(page.getByRole('heading', { name: 'You are signed in' })).toHaveCount(0);
      await expectNoAuthCookies(context);
    });

    await test.step('a wrong password shows the inline error', async () => {
      await gotoPage(page, '/login', { hydrate: false });
      await submitSignIn(page, { email: creds.email, password: 'not the right password 1' });
      await expect(page.getByRole('alert')).toHaveText(BAD_CREDENTIALS);
      await expectLoginPage(page, creds.email);
      await expectNoAuthCookies(context);
    });

    await test.step('the right password signs in', async () => {
      await gotoPage(page, '/login', { hydrate: false });
      await submitSignIn(page, creds);
      await expectSignedInHome(page, creds.email);
      await expectAuthCookies(context);
    });
  });

  test('an anonymous visit to /account goes to the login page and back after signing in', async ({
    page,
    request,
  }) => {
    const creds = newCredentials();
    await registerViaApi(request, creds);

    await page.goto('/account');
    await expect(page).toHaveURL(/\/login\?next=(%2F|\/)account$/);
    await submitSignIn(page, creds);
    await expect(page).toHaveURL(/\/account$/);
    await expect(page.getByRole('heading', { level: 1, name: 'Account' })).toBeVisible();
    await expect(page.getByTestId('signed-in-email')).toHaveText(creds.email);
  });
});

import { expect, test } from '@playwright/test';
import {
  BAD_CREDENTIALS,
  expectSignedInHome,
  gotoPage,
  newCredentials,
  register,
  registerViaApi,
  signOutViaHeader,
  submitSignIn,
} from './helpers';

test.describe('sign-in form', () => {
  test('repeated wrong passwords are throttled with a human message', async ({ page, request }) => {
    const creds = newCredentials();
    await registerViaApi(request, creds);
    await gotoPage(page, '/login');
    const alert = page.getByRole('alert');
    await page.getByLabel('Email', { exact: true }).fill(creds.email);
    // The limit is 5 failures per account; the 6th attempt waits (the test
    // server's first lockout is 30 s, see playwright.config.ts).
    for (let attempt = 1; attempt <= 5; attempt++) {
      await page.getByLabel('Password', { exact: true }).fill(`wrong guess number ${attempt}`);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await expect(alert).toHaveText(BAD_CREDENTIALS);
      await expect(page.getByRole('button', { name: 'Sign in', exact: true })).toBeEnabled();
    }
    await page.getByLabel('Password', { exact: true }).fill(creds.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(alert).toHaveText(/^Too many attempts\. Try again in \d+ seconds?\.$/);
    await expect(page).toHaveURL(/\/login/);
  });

  test('the owner signs out, an attacker locks the account, and the owner signs in again', async ({
    page,
    request,
    browser,
  }) => {
    const creds = newCredentials();
    await register(page, creds);
    await signOutViaHeader(page, creds.email);
    // The device cookie survives sign-out (no Clear-Site-Data "cookies").
    const device = (await page.context().cookies()).find((c) => c.name === 'portcullis_device');
    expect(device, 'the device cookie is kept').toBeTruthy();
    expect(device?.httpOnly).toBe(true);

    // Someone else guesses until the account is locked to unknown devices.
    for (let attempt = 1; attempt <= 6; attempt++) {
      const response = await request.post('/auth/login', {
        data: { email: creds.email, password: `attacker guess ${attempt}` },
      });
      expect(response.status()).toBe(attempt <= 5 ? 401 : 429);
    }
    // A browser that never signed in here is refused even with the password…
    const stranger = await browser.newContext();
    const strangerPage = await stranger.newPage();
    await gotoPage(strangerPage, '/login');
    await submitSignIn(strangerPage, creds);
    await expect(strangerPage.getByRole('alert')).toHaveText(/^Too many attempts\. Try again in/);
    await stranger.close();

    // …while the owner's browser signs in.
    await submitSignIn(page, creds);
    await expectSignedInHome(page, creds.email);
  });

  test('the password can be shown and hidden once the page is interactive', async ({ page }) => {
    await gotoPage(page, '/login');
    const password = page.getByLabel('Password', { exact: true });
    await password.fill('violet kettle anthem 42');
    await expect(password).toHaveAttribute('type', 'password');
    await page.getByRole('button', { name: 'Show password' }).click();
    await expect(password).toHaveAttribute('type', 'text');
    await expect(password).toHaveValue('violet kettle anthem 42');
    await page.getByRole('button', { name: 'Hide password' }).click();
    await expect(password).toHaveAttribute('type', 'password');
  });
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('no dead Show button is rendered', async ({ page }) => {
    await page.goto('/login');
    await expect(page.getByLabel('Password', { exact: true })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Show password' })).toHaveCount(0);
  });
});

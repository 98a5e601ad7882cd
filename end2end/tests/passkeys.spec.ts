import { test, expect, type Page } from '@playwright/test';
import { Secret, TOTP } from 'otpauth';
import {
  authCookies,
  expectLoginPage,
  expectSignedInHome,
  gotoPage,
  newCredentials,
  register,
  signOutViaHeader,
  submitSignIn,
} from './helpers';

// Passkeys in Chromium with a virtual authenticator (Chrome DevTools
// Protocol: ctap2, internal transport, resident keys, user verified). WebAuthn
// needs a domain: the suite's base URL is `http://localhost:3100`.

async function addVirtualAuthenticator(page: Page): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
}

const passkeyButton = (page: Page) => page.getByRole('button', { name: 'Sign in with a passkey' });

test('add a passkey, sign in with it and no password, sign out, then remove it', async ({ page, context }) => {
  await addVirtualAuthenticator(page);
  const creds = newCredentials();
  await register(page, creds);

  await gotoPage(page, '/account');
  const section = page.locator('#passkeys');
  await expect(section.getByTestId('no-passkeys')).toBeVisible();
  await section.getByLabel('Name (optional)').fill('Laptop');
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(section.getByTestId('passkeys')).toContainText('Laptop');
  await expect(section.getByTestId('passkeys')).toContainText('never used');
  await signOutViaHeader(page, creds.email);

  // No email, no password: the passkey alone signs in, into a normal session.
  await passkeyButton(page).click();
  await expectSignedInHome(page, creds.email);
  const stale = (await authCookies(context)).map((c) => `${c.name}=${c.value}`).join('; ');
  await signOutViaHeader(page, creds.email);
  const replayed = await page.request.get('/auth/me', { headers: { cookie: stale } });
  expect(replayed.status(), 'the signed-out session is over').toBe(401);

  await passkeyButton(page).click();
  await expectSignedInHome(page, creds.email);
  await gotoPage(page, '/account');
  await expect(section.getByTestId('passkeys')).toContainText('last used');
  await section.getByRole('button', { name: 'Remove Laptop' }).click();
  await expect(section.getByTestId('no-passkeys')).toBeVisible();
  await signOutViaHeader(page, creds.email);

  // The authenticator still offers it; the server no longer takes it.
  await passkeyButton(page).click();
  await expect(page.getByRole('alert')).toContainText('This passkey could not sign you in');
  await expectLoginPage(page, creds.email);
});

test('with two-factor sign-in on, a passkey can take the place of the code', async ({ page }) => {
  await addVirtualAuthenticator(page);
  const creds = newCredentials();
  await register(page, creds);
  await gotoPage(page, '/account');
  const section = page.locator('#passkeys');
  await section.getByLabel('Name (optional)').fill('Phone');
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(section.getByTestId('passkeys')).toContainText('Phone');

  // Two-factor sign-in on, through the API this session may use.
  const setup = await (await page.request.post('/auth/mfa/totp/setup', { data: {} })).json();
  const app = new TOTP({ secret: Secret.fromBase32(setup.secret), digits: 6, period: 30, algorithm: 'SHA1' });
  const enabled = await page.request.post('/auth/mfa/totp/enable', { data: { code: app.generate() } });
  expect(enabled.status(), await enabled.text()).toBe(200);
  await signOutViaHeader(page, creds.email);

  await submitSignIn(page, creds);
  await expect(page).toHaveURL(/\/login\/verify/);
  await page.getByRole('button', { name: 'Use a passkey instead' }).click();
  await expectSignedInHome(page, creds.email);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the login page offers no passkey button, and signing in still works', async ({ page }) => {
    const creds = newCredentials();
    await register(page, creds, { hydrate: false });
    await signOutViaHeader(page, creds.email);
    await expect(passkeyButton(page)).toHaveCount(0);
    await gotoPage(page, '/account', { hydrate: false });
    await expect(page).toHaveURL(/\/login/);
  });
});

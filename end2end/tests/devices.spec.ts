import { expect, test } from '@playwright/test';
import {
  ENDED_ELSEWHERE_NOTICE,
  SESSION_ENDED_NOTICE,
  SIGNED_OUT_NOTICE,
  expectLoginPage,
  expectNoAuthCookies,
  expectSignedInHome,
  headerAccountLink,
  newCredentials,
  register,
  signIn,
  statusNotice,
} from './helpers';

// Three devices are separate browser contexts: no shared cookies, no
// BroadcastChannel between them. They learn that their session ended from the
// server: a page with JavaScript at once, over its event stream; a page
// without JavaScript at its next request.
test('"Sign out everywhere" on one device ends the others: at once with JavaScript, at the next request without', async ({
  browser,
  page: pageA,
  context: contextA,
}) => {
  const creds = newCredentials();
  await register(pageA, creds);

  const contextB = await browser.newContext();
  const contextC = await browser.newContext({ javaScriptEnabled: false });
  try {
    const pageB = await contextB.newPage();
    const pageC = await contextC.newPage();
    await signIn(pageB, creds);
    await signIn(pageC, creds, { hydrate: false });
    await pageB.waitForSelector('body[data-live=ready]', { state: 'attached' });

    await test.step('device A: Account, "Sign out everywhere"', async () => {
      await headerAccountLink(pageA).click();
      await expect(pageA).toHaveURL(/\/account$/);
      await expect(pageA.getByTestId('session')).toHaveCount(3);
      await pageA.getByRole('button', { name: 'Sign out everywhere' }).click();
      await expect(pageA).toHaveURL(/\/login\?notice=signed_out$/);
      await expect(statusNotice(pageA, SIGNED_OUT_NOTICE)).toBeVisible();
      await expectLoginPage(pageA, creds.email);
      await expectNoAuthCookies(contextA);
    });

    await test.step('device B, untouched, shows the login page by itself', async () => {
      await expect(pageB).toHaveURL(/\/login\?notice=ended_elsewhere$/);
      await expect(statusNotice(pageB, ENDED_ELSEWHERE_NOTICE)).toBeVisible();
      await expectLoginPage(pageB, creds.email);
      await expect(pageB.getByRole('heading', { level: 1, name: 'You are signed in' })).toHaveCount(0);
    });

    await test.step('device C, without JavaScript: its next request lands on the login page', async () => {
      // Nothing could be pushed to it: it still shows the page it loaded.
      await expectSignedInHome(pageC, creds.email);
      await pageC.reload();
      await expect(pageC).toHaveURL(/\/login\?/);
      await expect(statusNotice(pageC, SESSION_ENDED_NOTICE)).toBeVisible();
      await expectLoginPage(pageC, creds.email);
    });
  } finally {
    await contextB.close();
    await contextC.close();
  }
});

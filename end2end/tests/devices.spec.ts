import { expect, test } from '@playwright/test';
import {
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
  waitForHydration,
} from './helpers';

// Two (here three) devices are separate browser contexts: no shared cookies,
// no BroadcastChannel between them. They learn that their session ended from
// the server, at their next action.
test('"Sign out everywhere" on one device ends the session of the others at their next action', async ({
  browser,
  page: pageA,
  context: contextA,
}) => {
  const creds = newCredentials();
  await register(pageA, creds);

  const contextB = await browser.newContext();
  const contextC = await browser.newContext();
  try {
    const pageB = await contextB.newPage();
    const pageC = await contextC.newPage();
    await signIn(pageB, creds);
    await signIn(pageC, creds);

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

    await test.step('device B: the next click (header "Account") lands on the login page', async () => {
      // B still shows the home page it loaded before: nothing told it yet.
      await expectSignedInHome(pageB, creds.email);
      await headerAccountLink(pageB).click();
      await expect(pageB).toHaveURL(/\/login\?/);
      await expect(statusNotice(pageB, SESSION_ENDED_NOTICE)).toBeVisible();
      await expectLoginPage(pageB, creds.email);
      await expect(pageB.getByRole('heading', { level: 1, name: 'Account' })).toHaveCount(0);
    });

    await test.step('device C: a reload lands on the login page', async () => {
      await pageC.reload();
      await expect(pageC).toHaveURL(/\/login\?/);
      await waitForHydration(pageC);
      await expect(statusNotice(pageC, SESSION_ENDED_NOTICE)).toBeVisible();
      await expectLoginPage(pageC, creds.email);
    });
  } finally {
    await contextB.close();
    await contextC.close();
  }
});

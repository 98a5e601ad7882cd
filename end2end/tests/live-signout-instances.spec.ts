import { expect, test } from '@playwright/test';
import {
  ENDED_ELSEWHERE_NOTICE,
  expectLoginPage,
  gotoPage,
  headerAccountLink,
  newCredentials,
  register,
  signIn,
  statusNotice,
} from './helpers';

// Live sign-out across instances (#15): device A on one server process,
// device B on another, both on one PostgreSQL database (started by
// playwright.config.ts when PostgreSQL answers). A's "Sign out of all other
// devices" reaches B's untouched page through NOTIFY within 2 seconds.
const instances = (process.env.PORTCULLIS_E2E_INSTANCES ?? '').split(',').filter(Boolean);

test('an end on one instance takes the open page on another instance to the login page', async ({ browser }) => {
  if (instances.length < 2) {
    expect(process.env.CI, 'CI runs the browser suite with PostgreSQL').toBeFalsy();
    test.skip(true, 'PostgreSQL is not reachable: no second and third instance');
  }
  const [first, second] = instances;
  const contextA = await browser.newContext({ baseURL: first });
  const contextB = await browser.newContext({ baseURL: second });
  try {
    const pageA = await contextA.newPage();
    const pageB = await contextB.newPage();
    const creds = newCredentials();
    await register(pageA, creds);
    await signIn(pageB, creds);
    await gotoPage(pageB, '/account');
    await pageB.waitForSelector('body[data-live=ready]', { state: 'attached' });

    await headerAccountLink(pageA).click();
    await expect(pageA).toHaveURL(/\/account$/);
    await expect(pageA.getByTestId('session')).toHaveCount(2);
    await pageA.getByRole('button', { name: 'Sign out of all other devices' }).click();
    const deadline = Date.now() + 2_000;
    const left = () => Math.max(1, deadline - Date.now());
    await expect(pageB).toHaveURL(/\/login\?next=\/account&notice=ended_elsewhere$/, { timeout: left() });
    await expect(statusNotice(pageB, ENDED_ELSEWHERE_NOTICE)).toBeVisible({ timeout: left() });
    await expectLoginPage(pageB, creds.email);
    await expect(pageA.getByTestId('signed-in-email')).toHaveText(creds.email);
  } finally {
    await contextA.close();
    await contextB.close();
  }
});

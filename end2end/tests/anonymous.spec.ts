import { expect, test } from '@playwright/test';
import {
  expectAuthCookies,
  newCredentials,
  registerViaApi,
  submitSignIn,
  waitForHydration,
  watchPageProblems,
} from './helpers';

test('an anonymous visit to /account goes to the login page, and signing in there lands on /account', async ({
  page,
  context,
  request,
}) => {
  const watch = await watchPageProblems(page);
  const creds = newCredentials();
  await registerViaApi(request, creds);

  await page.goto('/account');
  await expect(page).toHaveURL(/\/login\?next=(%2F|\/)account$/);
  await waitForHydration(page);
  await expect(page.getByRole('heading', { level: 1, name: 'Account' })).toHaveCount(0);

  await submitSignIn(page, creds);
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Account' })).toBeVisible();
  await expect(page.getByText(`Signed in as ${creds.email}`)).toBeVisible();
  await expect(page.getByTestId('signed-in-email')).toHaveText(creds.email);
  await expectAuthCookies(context);

  watch.expectNone();
});

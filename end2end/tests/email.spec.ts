import { test, expect, type Page } from '@playwright/test';
import { gotoPage, mailedLink, newCredentials, register, statusNotice } from './helpers';

const VERIFY_SUBJECT = 'Confirm your email address for Portcullis';
const CHANGE_SUBJECT = 'Confirm your new email address for Portcullis';

const emailStatus = (page: Page) => page.getByTestId('email-status');

test.describe('the account email address', () => {
  test.skip(!process.env.PORTCULLIS_E2E_DATA_DIR, 'reads the outbox of the server Playwright starts');

  for (const javaScript of [true, false]) {
    test(`register, follow the mailed link, and the account page shows the address verified (JavaScript ${
      javaScript ? 'on' : 'off'
    })`, async ({ browser }) => {
      const context = await browser.newContext({ javaScriptEnabled: javaScript });
      const page = await context.newPage();
      const opts = { hydrate: javaScript };
      const creds = newCredentials();
      await register(page, creds, opts);
      await gotoPage(page, '/account', opts);
      await expect(emailStatus(page)).toHaveText('Not verified');

      const link = await mailedLink(creds.email, VERIFY_SUBJECT, '/verify-email');
      await gotoPage(page, link, opts);
      // The token left the address bar before the page rendered.
      await expect(page).toHaveURL(/\/verify-email$/);
      await page.getByRole('button', { name: 'Confirm my email address' }).click();
      await expect(page).toHaveURL(/\/account\?notice=address_confirmed$/);
      await expect(statusNotice(page, 'Your email address is confirmed.')).toBeVisible();
      await expect(emailStatus(page)).toHaveText('Verified');
      await context.close();
    });
  }

  test('an email change takes effect from the link mailed to the new address', async ({ page }) => {
    const creds = newCredentials();
    await register(page, creds);
    await gotoPage(page, '/account');
    const newEmail = newCredentials().email;
    await page.getByLabel('New email address', { exact: true }).fill(newEmail);
    await page.getByLabel('Your password', { exact: true }).fill(creds.password);
    await page.getByRole('button', { name: 'Change email address' }).click();
    await expect(statusNotice(page, 'We sent a link to the new address.')).toBeVisible();

    await gotoPage(page, await mailedLink(newEmail, CHANGE_SUBJECT, '/confirm-email'));
    await page.getByRole('button', { name: 'Confirm my new address' }).click();
    await expect(page).toHaveURL(/\/account\?notice=email_changed$/);
    await expect(page.getByRole('heading', { level: 1, name: 'Account' })).toBeVisible();
    await expect(page.locator('.lede')).toContainText(newEmail);
    await expect(emailStatus(page)).toHaveText('Verified');
  });
});

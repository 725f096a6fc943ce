// dashboard.test.mjs -- the admin dashboard in headless Debian chromium, driven by playwright-core.
//
// Usage: node tests/browser/dashboard.test.mjs URL [--token TOKEN] [--screenshot PATH]
//                                              [--backend NAME] [--timeout S]
//
// URL is a running fulcrum's admin address (e.g. http://127.0.0.1:9090/) with traffic
// flowing through at least one backend while the test runs (tests/integration/test_admin.py
// starts fulcrum, backends and a client, then runs this). It checks, in a real browser:
// the page loads without script errors and shows the servers the API lists; the numbers
// move as traffic flows; a Drain click (answering the token dialog when a token is set)
// puts the server in maintenance, seen in the page and through the API; Restore and a
// weight change do the same. The screenshot is written after the drain. Every wait is
// bounded; the whole run stops after --timeout seconds (default 90) whatever happens.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function parseArgs(argv) {
  const opt = { url: null, token: null, screenshot: null, backend: null, timeout: 90 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--token") opt.token = next();
    else if (a === "--screenshot") opt.screenshot = next();
    else if (a === "--backend") opt.backend = next();
    else if (a === "--timeout") opt.timeout = Number(next());
    else if (!a.startsWith("--") && !opt.url) opt.url = a;
    else usage(`unknown argument ${a}`);
  }
  if (!opt.url) usage("no URL");
  if (!opt.url.endsWith("/")) opt.url += "/";
  return opt;
}

function usage(msg) {
  console.error(`dashboard.test.mjs: ${msg}\nusage: node dashboard.test.mjs URL [--token T] ` +
                "[--screenshot PATH] [--backend NAME] [--timeout S]");
  process.exit(2);
}

const opt = parseArgs(process.argv.slice(2));
let passed = 0;
let failed = 0;

async function api(p, init) {
  const headers = { "Content-Type": "application/json" };
  if (opt.token) headers.Authorization = `Bearer ${opt.token}`;
  const r = await fetch(new URL(p, opt.url), { ...init, headers });
  const body = await r.json();
  if (!r.ok) throw new Error(`${init?.method || "GET"} ${p}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

/* Polls fn() every 100 ms until it returns a truthy value; throws after `ms`. */
async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e.stack || e).split("\n").join("\n  ")}`);
    throw e; /* later steps build on this one */
  }
}

/* Sum of a numeric column over a backend's rows ("1,234" -> 1234; "-" -> 0). */
async function columnSum(page, backend, field) {
  return page.$$eval(`section[data-backend="${backend}"] td[data-field="${field}"]`, (tds) =>
    tds.reduce((a, td) => a + (Number(td.textContent.replace(/[^0-9.]/g, "")) || 0), 0));
}

async function rowStatus(page, backend, server) {
  return page.textContent(
    `section[data-backend="${backend}"] tr[data-server="${server}"] td[data-field="status"]`);
}

async function run(page) {
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const listing = await api("api/backends");
  const be = opt.backend
    ? listing.backends.find((b) => b.name === opt.backend)
    : listing.backends.find((b) => b.server_details.length > 0);
  if (!be) throw new Error("no backend with servers to test");
  const ids = be.server_details.map((s) => s.id);
  const target = be.server_details.find((s) => s.status === "healthy");
  if (!target) throw new Error(`backend ${be.name} has no healthy server to drain`);
  const sec = `section[data-backend="${be.name}"]`;
  const row = `${sec} tr[data-server="${target.id}"]`;

  await step("the page loads and shows every server the API lists", async () => {
    const resp = await page.goto(opt.url, { waitUntil: "load" });
    if (resp.status() !== 200) throw new Error(`GET / answered ${resp.status()}`);
    await page.waitForSelector(`${sec} tr[data-server]`, { timeout: 10000 });
    const shown = await page.$$eval(`${sec} tr[data-server]`, (trs) =>
      trs.map((tr) => tr.dataset.server));
    if (JSON.stringify(shown) !== JSON.stringify(ids))
      throw new Error(`page shows ${shown}, API lists ${ids}`);
    const title = await page.textContent(`${sec} h2`);
    if (title !== be.name) throw new Error(`backend title ${title}`);
  });

  await step("the numbers move as traffic flows (requests, req/s, share)", async () => {
    const before = await columnSum(page, be.name, "total_requests");
    await until("the request count to grow", async () =>
      (await columnSum(page, be.name, "total_requests")) > before);
    await until("a non-zero req/s", async () => (await columnSum(page, be.name, "rps")) > 0);
    await until("the share legend to show percentages", async () =>
      (await page.$$eval(`${sec} .legend .pct`, (e) => e.filter((x) => /%$/.test(x.textContent)).length)) > 0);
    const conn = await page.textContent("#conn");
    if (conn !== "live") throw new Error(`connection badge says ${conn}`);
  });

  await step(`a Drain click puts ${target.id} in maintenance (page and API)`, async () => {
    await page.click(`${row} button[data-action="drain"]`);
    if (opt.token) {
      await page.waitForSelector("#token-dialog.open", { timeout: 5000 });
      await page.fill("#token-input", opt.token);
      await page.click("#token-save");
    }
    await until("the row to show maintenance", async () =>
      (await rowStatus(page, be.name, target.id)) === "maintenance");
    const s = await api(`api/backends/${be.name}/servers/${target.id}`);
    if (s.status !== "maintenance") throw new Error(`API says ${s.status}`);
    await until("the button to offer Restore", async () =>
      (await page.textContent(`${row} button[data-action="restore"]`)) === "Restore");
  });

  if (opt.screenshot) {
    fs.mkdirSync(path.dirname(opt.screenshot), { recursive: true });
    await page.screenshot({ path: opt.screenshot, fullPage: true });
    console.log(`screenshot: ${opt.screenshot}`);
  }

  await step(`Restore puts ${target.id} back in service`, async () => {
    await page.click(`${row} button[data-action="restore"]`);
    await until("the row to leave maintenance", async () =>
      (await rowStatus(page, be.name, target.id)) !== "maintenance");
    const s = await api(`api/backends/${be.name}/servers/${target.id}`);
    if (s.status === "maintenance") throw new Error("API still says maintenance");
  });

  await step(`a weight change on ${target.id} reaches the pool`, async () => {
    const want = target.weight === 7 ? 8 : 7;
    await page.fill(`${row} input[aria-label="weight"]`, String(want));
    await page.click(`${row} button[data-action="weight"]`);
    await until("the API to report the new weight", async () =>
      (await api(`api/backends/${be.name}/servers/${target.id}`)).weight === want);
    await until("the row to show it", async () =>
      Number(await page.textContent(`${row} td[data-field="weight"]`)) === want);
    await api(`api/backends/${be.name}/servers/${target.id}`, {
      method: "PUT", body: JSON.stringify({ weight: target.weight }) });
  });

  await step("no script error on the page", async () => {
    if (pageErrors.length) throw new Error(pageErrors.join("; "));
  });
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "fulcrum-chromium-"));
  let ctx = null;
  const killer = setTimeout(() => {
    console.log(`not ok - the whole run took over ${opt.timeout} s`);
    fs.rmSync(profile, { recursive: true, force: true });
    process.exit(1);
  }, opt.timeout * 1000);
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS,
      viewport: { width: 1400, height: 1000 },
    });
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.setDefaultTimeout(15000);
    await run(page);
  } catch (e) {
    if (failed === 0) {
      failed++;
      console.log(`not ok - setup\n  ${e.stack || e}`);
    }
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
    clearTimeout(killer);
  }
  console.log(`dashboard: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();

// Drives the playground in headless Chromium for tests/playground.rs: pastes the key, uploads a
// photo with lossy + fit 400x300, waits for the result, drags the slider, reloads, then tries a
// bad key, then optimises an image by URL (square 200, WebP at quality 70). Prints what it saw (and the API's answers it intercepted) as one JSON object.
"use strict";

const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("PLAYGROUND_BASE");
const KEY = env("PLAYGROUND_KEY");
const IMAGE = env("PLAYGROUND_IMAGE");
const IMAGE_URL = env("PLAYGROUND_IMAGE_URL");
const SCREENSHOT = env("PLAYGROUND_SCREENSHOT");
const EXECUTABLE = process.env.PLAYGROUND_CHROMIUM || "/usr/bin/chromium";

const TEXT_IDS = ["original", "final", "saved", "out-format", "out-quality", "out-ssim", "curl"];

async function submitAndWait(page, endpoint) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(endpoint) && r.request().method() === "POST"),
    page.click("#submit"),
  ]);
  return { status: response.status(), answer: await response.json() };
}

async function texts(page) {
  const out = {};
  for (const id of TEXT_IDS) out[id] = await page.textContent(`#${id}`);
  return out;
}

async function naturalSize(page, selector) {
  await page.waitForFunction(
    (sel) => {
      const img = document.querySelector(sel);
      return img && img.complete && img.naturalWidth > 0;
    },
    selector,
    { timeout: 30000 },
  );
  return page.$eval(selector, (img) => [img.naturalWidth, img.naturalHeight]);
}

/** Drags across the comparison from 25% to 80% of its width and reads where the split went. */
async function dragSlider(page) {
  const box = await page.locator("#compare").boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.25, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, y, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.8, y, { steps: 5 });
  await page.mouse.up();
  return page.evaluate(() => ({
    value: Number(document.getElementById("slider").value),
    split: document.getElementById("compare").style.getPropertyValue("--split"),
    clip: getComputedStyle(document.getElementById("after-clip")).clipPath,
  }));
}

/** The resize fields visible after choosing each strategy, in the page's order. */
async function fieldsPerStrategy(page) {
  const shown = {};
  const strategies = await page.$$eval("#strategy option", (options) => options.map((o) => o.value));
  for (const strategy of strategies) {
    await page.selectOption("#strategy", strategy);
    const fields = [];
    for (const label of await page.locator("[data-field]").all()) {
      if (await label.isVisible()) fields.push(await label.getAttribute("data-field"));
    }
    shown[strategy || "none"] = fields;
  }
  return shown;
}

async function main() {
  const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
  const browser = await chromium.launch({ executablePath: EXECUTABLE, headless: true, args });
  const consoleErrors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));

    await page.goto(BASE + "/");
    const fieldsShown = await fieldsPerStrategy(page);
    await page.fill("#key", KEY);
    await page.setInputFiles("#file", IMAGE);
    await page.check("#lossy");
    await page.selectOption("#strategy", "fit");
    await page.fill("#width", "400");
    await page.fill("#height", "300");
    const good = await submitAndWait(page, "/v1/upload");
    if (good.status !== 200) throw new Error(`upload answered ${good.status}: ${JSON.stringify(good.answer)}`);
    const afterNatural = await naturalSize(page, "#after");
    const beforeNatural = await naturalSize(page, "#before");
    await page.waitForSelector("#answer:not([hidden])");
    const shown = await texts(page);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const drag = await dragSlider(page);

    await page.reload();
    const keyAfterReload = await page.inputValue("#key");

    // Until the URL step the browser rightly logs the 401 as a failed load.
    const errorsBeforeBadKey = [...consoleErrors];
    await page.fill("#key", "pxk_00000000_" + "0".repeat(32));
    await page.setInputFiles("#file", IMAGE);
    const bad = await submitAndWait(page, "/v1/upload");
    await page.waitForSelector("#error:not([hidden])");
    const badShown = await page.textContent("#error");
    const badAnswerHidden = await page.$eval("#answer", (el) => el.hidden);
    const errorsUpToUrl = consoleErrors.length;

    await page.fill("#key", KEY);
    await page.check('input[name="source"][value="url"]');
    await page.fill("#url", IMAGE_URL);
    await page.check("#lossy");
    await page.fill("#quality", "70");
    await page.selectOption("#format", "webp");
    await page.selectOption("#strategy", "square");
    await page.fill("#size", "200");
    const byUrl = await submitAndWait(page, "/v1/url");
    if (byUrl.status !== 200) throw new Error(`url answered ${byUrl.status}: ${JSON.stringify(byUrl.answer)}`);
    await page.waitForSelector("#answer:not([hidden])");
    const byUrlSeen = {
      answer: byUrl.answer,
      after_natural: await naturalSize(page, "#after"),
      before_natural: await naturalSize(page, "#before"),
      text: await texts(page),
    };

    const result = {
      answer: good.answer,
      after_natural: afterNatural,
      before_natural: beforeNatural,
      text: shown,
      fields_shown: fieldsShown,
      slider_after_drag: drag.value,
      split_after_drag: drag.split,
      clip_after_drag: drag.clip,
      key_after_reload: keyAfterReload,
      bad_key: {
        status: bad.status,
        answer: bad.answer,
        shown: badShown,
        answer_hidden: badAnswerHidden,
      },
      by_url: byUrlSeen,
      console_errors: [...errorsBeforeBadKey, ...consoleErrors.slice(errorsUpToUrl)],
    };
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

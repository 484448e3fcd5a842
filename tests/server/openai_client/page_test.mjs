// The web page at "/" in a real browser: Debian's chromium, headless, driven
// by puppeteer-core (never a downloaded browser). Run by
// tests/server/run_client_tests.sh (env: WISP_URL, WISP_KEY, WISP_FIXTURE,
// WISP_LONG_FIXTURE; CHROMIUM overrides /usr/bin/chromium). The page's
// transcript and downloads are compared with the API's answers (the
// official openai client) on the same file.
import fs from "node:fs";
import OpenAI from "openai";
import puppeteer from "puppeteer-core";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set (run through run_client_tests.sh)`);
  return process.env[k];
};
const [url, key, fixture, longFixture] = ["WISP_URL", "WISP_KEY", "WISP_FIXTURE", "WISP_LONG_FIXTURE"].map(env);
const chromium = process.env.CHROMIUM || "/usr/bin/chromium";

let failures = 0;
const check = (ok, what, detail = "") => {
  if (ok) console.log(`ok   ${what}`);
  else {
    failures++;
    console.log(`FAIL ${what}${detail ? `\n     ${detail}` : ""}`);
  }
};
const same = (got, want, what) =>
  check(got === want, what, `got ${JSON.stringify(got)}\n     want ${JSON.stringify(want)}`);

if (!fs.existsSync(chromium)) {
  console.log(`FAIL ${chromium} is missing (scripts/install-deps.sh installs Debian's chromium)`);
  process.exit(1);
}

// What the API answers on the same file with the page's fields (language en,
// the server's defaults for the rest).
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 120000 });
const api = (format) => client.audio.transcriptions.create({ file: fs.createReadStream(fixture), model: "whisper-1",
  language: "en", response_format: format });
const [apiJson, apiSrt, apiVtt, apiVerbose] = await Promise.all([api("json"), api("srt"), api("vtt"),
  api("verbose_json")]);

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"],
});
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const response = await page.goto(`${url}/`, { waitUntil: "load" });
  same(response.status(), 200, "GET / is 200");
  check(response.headers()["content-type"].startsWith("text/html"), "GET / is text/html");
  same(await page.title(), "wisp", "the page's title");

  // The key, then the model list the page fetches with it.
  await page.$eval("#key", (el, k) => { el.value = k; el.dispatchEvent(new Event("change")); }, key);
  await page.waitForFunction(() => document.getElementById("model").textContent.includes("micro"), { timeout: 10000 });
  check(true, "the page lists the model with the key");

  // Pick the file, set the language, start; wait for the transcript.
  const pick = async (path) => {
    const input = await page.$("#file");
    await input.uploadFile(path);
    await page.waitForFunction(() => !document.getElementById("start").disabled, { timeout: 5000 });
  };
  await pick(fixture);
  await page.$eval("#language", (el) => { el.value = "en"; });
  await page.click("#start");
  await page.waitForFunction(() => !document.getElementById("downloads").hidden ||
    document.getElementById("status").className === "error", { timeout: 120000 });
  same(await page.$eval("#status", (el) => el.className), "", "no error shown");
  same(await page.$eval("#text", (el) => el.textContent), apiJson.text, "the page's transcript = the API's json text");
  const rows = await page.$$eval(".seg .x", (els) => els.map((e) => e.textContent));
  same(JSON.stringify(rows), JSON.stringify(apiVerbose.segments.map((s) => s.text.trim())),
    "the page's segments = the API's verbose_json segments");
  const download = (id) => page.$eval(id, async (a) => ({ name: a.download, body: await (await fetch(a.href)).text() }));
  const srt = await download("#dl-srt");
  same(srt.body, apiSrt, "the page's srt download = the API's srt");
  same(srt.name, fixture.split("/").pop().replace(/\.[^.]*$/, "") + ".srt", "the srt download's name");
  same((await download("#dl-vtt")).body, apiVtt, "the page's vtt download = the API's vtt");
  same((await download("#dl-txt")).body, apiVerbose.segments.map((s) => `${s.text.trim()}\n`).join(""),
    "the page's txt download: a line per segment");

  // A long file: segments appear while the decode still runs.
  await page.evaluate(() => {
    window.seen = [];
    new MutationObserver(() => window.seen.push({
      rows: document.querySelectorAll(".seg").length,
      done: !document.getElementById("downloads").hidden,
    })).observe(document.getElementById("segments"), { childList: true });
  });
  await pick(longFixture);
  await page.click("#start");
  await page.waitForFunction(() => !document.getElementById("downloads").hidden ||
    document.getElementById("status").className === "error", { timeout: 120000 });
  same(await page.$eval("#status", (el) => el.className), "", "long file: no error shown");
  const seen = await page.evaluate(() => window.seen);
  const early = seen.filter((s) => s.rows > 0 && !s.done);
  const counts = new Set(early.map((s) => s.rows));
  check(counts.size >= 2, "long file: segments shown one window at a time before the end",
    JSON.stringify(seen.slice(0, 20)));

  // Stop while the long file decodes: the page says so, and the server
  // cancels the work (its client hung up).
  const cancelled = async () => {
    const m = await (await fetch(`${url}/metrics`)).text();
    return Number(/\nwisp_transcriptions_cancelled_total ([0-9.]+)\n/.exec(m)?.[1] ?? NaN);
  };
  const before = await cancelled();
  await page.click("#start");
  await page.waitForFunction(() => document.querySelectorAll(".seg").length > 0, { timeout: 60000 });
  await page.click("#stop");
  await page.waitForFunction(() => document.getElementById("status").textContent === "Stopped.", { timeout: 10000 });
  let after = before;
  for (let i = 0; i < 100 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await cancelled();
  }
  same(after, before + 1, "Stop: the server cancels the transcription");

  // A wrong key: the API's error message on the page.
  await page.$eval("#key", (el) => { el.value = "sk-wrong"; el.dispatchEvent(new Event("change")); });
  await pick(fixture);
  await page.click("#start");
  await page.waitForFunction(() => document.getElementById("status").className === "error", { timeout: 10000 });
  check((await page.$eval("#status", (el) => el.textContent)).includes("Incorrect API key"),
    "a wrong key shows the API's error");
  same(JSON.stringify(pageErrors), "[]", "no script errors on the page");
} finally {
  await browser.close();
}
console.log(failures === 0 ? "page_test: all passed" : `page_test: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);

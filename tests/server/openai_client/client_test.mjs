// The official `openai` npm client against `wisp serve`, run by
// tests/server/run_client_tests.sh (env: WISP_URL, WISP_KEY, WISP_BIN,
// WISP_MODEL, WISP_FIXTURE, WISP_WORK). Every answer is compared with
// `wisp transcribe` on the same file with the same options.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import OpenAI from "openai";

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set (run through run_client_tests.sh)`);
  return process.env[k];
};
const [url, key, wisp, model, fixture, work] = ["WISP_URL", "WISP_KEY", "WISP_BIN", "WISP_MODEL", "WISP_FIXTURE",
  "WISP_WORK"].map(env);

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

// Short decodes on the random micro model: a fixed language, no temperature
// fallback, a few tokens per window. The same options for both sides; the
// server's default is openai transcribe()'s greedy decoding, the CLI's
// openai's command line's --beam_size 5, hence --beam_size None.
const decoding = { language: "en", temperature: 0, temperature_increment_on_fallback: "None", sample_len: 8 };
const cliFlags = ["--language", "en", "--temperature_increment_on_fallback", "None", "--sample_len", "8",
  "--threads", "1"];

// `wisp transcribe` with -f all into its own folder; its outputs by extension.
let runs = 0;
function transcribeCli(extra = [], beam = "None") {
  const out = path.join(work, `cli${runs++}`);
  execFileSync(wisp, ["transcribe", "--model", model, "-f", "all", "-o", out, ...cliFlags, "--beam_size", beam, ...extra,
    fixture],
    { stdio: ["ignore", "ignore", "pipe"] });
  const base = path.join(out, path.basename(fixture));
  const read = (ext) => fs.readFileSync(`${base}.${ext}`, "utf8");
  return { json: JSON.parse(read("json")), srt: read("srt"), vtt: read("vtt") };
}

const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 120000 });
const file = () => fs.createReadStream(fixture);

// Models.
const models = await client.models.list();
const ids = [];
for await (const m of models) ids.push(m.id);
same(JSON.stringify(ids), JSON.stringify(["micro"]), "models.list: the one model");
same((await client.models.retrieve("micro")).id, "micro", "models.retrieve(micro)");
try {
  await client.models.retrieve("gpt-4");
  check(false, "models.retrieve(gpt-4) is NotFoundError");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError && e.code === "model_not_found", "models.retrieve(gpt-4) is NotFoundError",
    String(e));
}

const cli = transcribeCli();
const cliText = cli.json.text.trim();

// json, text, srt, vtt.
const asJson = await client.audio.transcriptions.create({ file: file(), model: "whisper-1", ...decoding });
same(asJson.text, cliText, "transcriptions json: text = wisp transcribe's");
const asText = await client.audio.transcriptions.create({ file: file(), model: "whisper-1", response_format: "text",
  ...decoding });
same(asText, `${cliText}\n`, "transcriptions text = wisp transcribe's text");
const asSrt = await client.audio.transcriptions.create({ file: file(), model: "whisper-1", response_format: "srt",
  ...decoding });
same(asSrt, cli.srt, "transcriptions srt = wisp transcribe's .srt");
const asVtt = await client.audio.transcriptions.create({ file: file(), model: "whisper-1", response_format: "vtt",
  ...decoding });
same(asVtt, cli.vtt, "transcriptions vtt = wisp transcribe's .vtt");

// verbose_json with word and segment granularity.
const cliWords = transcribeCli(["--word_timestamps", "True"]);
const verbose = await client.audio.transcriptions.create({ file: file(), model: "whisper-1",
  response_format: "verbose_json", timestamp_granularities: ["word", "segment"], ...decoding });
same(verbose.text, cliWords.json.text.trim(), "verbose_json: text = wisp transcribe --word_timestamps True");
same(verbose.task, "transcribe", "verbose_json: task");
same(verbose.language, "english", "verbose_json: language by name");
check(Math.abs(verbose.duration - 11.0) < 0.01, "verbose_json: duration 11 s", String(verbose.duration));
const seg = (s) => ({ text: s.text, start: s.start.toFixed(3), end: s.end.toFixed(3) });
same(JSON.stringify(verbose.segments.map(seg)), JSON.stringify(cliWords.json.segments.map(seg)),
  "verbose_json: segments (text, start, end) = wisp transcribe's");
const cliWordList = cliWords.json.segments.flatMap((s) => s.words ?? []).map((w) => w.word.trim());
check(Array.isArray(verbose.words) && verbose.words.length > 0, "verbose_json: words present");
same(JSON.stringify(verbose.words.map((w) => w.word)), JSON.stringify(cliWordList),
  "verbose_json: words = wisp transcribe's");
check(verbose.words.every((w) => w.start <= w.end), "verbose_json: word start <= end");

// Beam search as an extra form field: the CLI's default --beam_size 5.
const cliBeam = transcribeCli([], "5");
const beam = await client.audio.transcriptions.create({ file: file(), model: "whisper-1", response_format: "srt",
  beam_size: 5, ...decoding });
same(beam, cliBeam.srt, "beam_size 5 (extra field) srt = wisp transcribe --beam_size 5");

// Translations.
const cliTranslate = transcribeCli(["--task", "translate"]);
const translated = await client.audio.translations.create({ file: file(), model: "whisper-1", ...decoding });
same(translated.text, cliTranslate.json.text.trim(), "translations json: text = wisp transcribe --task translate");
const translatedSrt = await client.audio.translations.create({ file: file(), model: "whisper-1",
  response_format: "srt", ...decoding });
same(translatedSrt, cliTranslate.srt, "translations srt = wisp transcribe --task translate's .srt");

// stream: true, server-sent events through the SDK's Stream.
const stream = await client.audio.transcriptions.create({ file: file(), model: "whisper-1", stream: true,
  ...decoding });
const events = [];
for await (const ev of stream) events.push(ev);
const deltas = events.filter((e) => e.type === "transcript.text.delta");
const done = events.filter((e) => e.type === "transcript.text.done");
same(deltas.length, cli.json.segments.length, "stream: one delta per segment");
same(done.length, 1, "stream: one done event, last");
same(events.at(-1)?.type, "transcript.text.done", "stream: done comes last");
same(done[0]?.text, cliText, "stream: done.text = wisp transcribe's");
same(deltas.map((e) => e.delta).join("").trim(), cliText, "stream: the deltas add up to the text");
same(JSON.stringify(deltas.map((e) => [e.segment?.start, e.segment?.end])),
  JSON.stringify(cli.json.segments.map((s) => [s.start, s.end])), "stream: wisp's segment times in the deltas");
same(done[0]?.files?.srt, cli.srt, "stream: wisp's done.files.srt = wisp transcribe's .srt");

// Errors through the SDK's classes.
try {
  await new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-wrong", maxRetries: 0 }).models.list();
  check(false, "a wrong key is AuthenticationError");
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.code === "invalid_api_key", "a wrong key is AuthenticationError",
    String(e));
}
try {
  await client.audio.transcriptions.create({ file: file(), model: "whisper-1", response_format: "xml" });
  check(false, "a bad response_format is BadRequestError");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.param === "response_format", "a bad response_format is BadRequestError",
    String(e));
}

console.log(failures === 0 ? "client_test: all passed" : `client_test: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);

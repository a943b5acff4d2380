// The Node.js half of scripts/bench_clones.py: latency of predict(codeA, codeB) at batch 1, index build
// and query time on the same inputs, peak memory. Reads a JSON job, writes a JSON result.
//
//   node scripts/bench_clones_node.mjs JOB.json RESULT.json
import { existsSync, readFileSync, writeFileSync } from "node:fs";

import { CloneIndex, CloneModel, TinyClassifier } from "../js/src/index.js";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const percentile = (/** @type {number[]} */ values, /** @type {number} */ q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.round((q / 100) * (sorted.length - 1)))];
};
const summary = (/** @type {number[]} */ ms) => ({ p50: percentile(ms, 50), p95: percentile(ms, 95), n: ms.length });

/** @type {Record<string, unknown>} */
const result = { latency: {} };
for (const backend of /** @type {const} */ (["onnx-int8", "onnx"])) {
  const model = await TinyClassifier.fromPretrained(job.model, { backend, threads: job.threads });
  for (const pair of job.pairs.slice(0, 5)) await model.predict(...pair); // warm-up
  const times = [];
  for (const pair of job.pairs) {
    const started = performance.now();
    await model.predict(...pair);
    times.push(performance.now() - started);
  }
  /** @type {Record<string, unknown>} */ (result.latency)[backend] = summary(times);
}

const model = await CloneModel.fromPretrained(job.model, { precision: job.precision, threads: job.threads });
const tokenize = [];
for (const code of job.queries) { // not seen before: no cached ids
  const started = performance.now();
  model.tokenizer.encode(code);
  tokenize.push(performance.now() - started);
}
result.tokenize = summary(tokenize);
model.tokenizer.cache.clear();
const index = new CloneIndex(model);
let started = performance.now();
await index.update(job.functions);
result.build_s = (performance.now() - started) / 1000;
result.rows = index.hashes.length;
await index.save(job.node_index);
started = performance.now();
await CloneIndex.load(job.node_index, model);
result.load_ms = performance.now() - started;
const query = [];
const head = [];
const cpu = [];
for (const code of job.queries.slice(0, 3)) await index.search(code, 10); // warm-up
for (const code of job.queries) {
  started = performance.now();
  const cpuStarted = process.cpuUsage();
  const vector = await model.embed(code);
  const embedded = performance.now();
  await index.searchVector(vector, 10);
  const done = performance.now();
  const used = process.cpuUsage(cpuStarted); // every thread of the process (ONNX Runtime runs on a worker)
  cpu.push((used.user + used.system) / 1000);
  query.push(done - started);
  head.push(done - embedded);
}
result.query = summary(query);
result.head = summary(head);
result.query_cpu = summary(cpu);
// VmHWM: this process's peak resident memory (maxRSS would count the forking Python parent's)
const hwm = existsSync("/proc/self/status") ? /VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8")) : null;
result.peak_rss_mb = (hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS) / 1024;
writeFileSync(process.argv[3], JSON.stringify(result, null, 2));

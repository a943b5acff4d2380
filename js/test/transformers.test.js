// transformers.js against Python on the reference tests/runtime/test_transformers_js.py writes
// (LIT_COMPRESSOR_TRANSFORMERS_JS): a single-function student's folder loaded offline with
// `pipeline("text-classification", folder)` gives Python's labels, probabilities within 1e-3.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { env, pipeline } from "@huggingface/transformers";

const REFERENCE = process.env.LIT_COMPRESSOR_TRANSFORMERS_JS;
const skip = REFERENCE ? false : "no reference: tests/runtime/test_transformers_js.py sets LIT_COMPRESSOR_TRANSFORMERS_JS";
const TOLERANCE = 1e-3;

env.allowRemoteModels = false; // offline: the folder is read from disk, nothing from the Hub
env.allowLocalModels = true;

/**
 * The probability of each label from a `top_k: null` answer (`LABEL_i` or the config's id2label names).
 * @param {{label: string, score: number}[]} scores
 * @param {string[]} labels
 */
const byLabel = (scores, labels) => labels.map((name) => scores.find((s) => s.label === name)?.score ?? NaN);

test("pipeline('text-classification', folder) gives Python's labels and probabilities", { skip }, async () => {
  const reference = JSON.parse(readFileSync(/** @type {string} */ (REFERENCE), "utf8"));
  const runs = [];
  for (const c of reference.cases) {
    const classify = await pipeline("text-classification", c.folder, c.dtype ? { dtype: c.dtype } : {});
    const run = { folder: path.basename(c.folder), dtype: c.dtype ?? "the config's (transformers.js_config)",
      inputs: c.codes.length, label_mismatches: 0, positive_labels: 0, max_probability_diff: 0,
      max_probability_diff_batch8: 0 };
    for (let i = 0; i < c.codes.length; i++) {
      const probabilities = byLabel(/** @type {any} */ (await classify(c.codes[i], { top_k: null })), c.labels);
      const expected = c.probabilities[i];
      const label = expected.indexOf(Math.max(...expected));
      if (probabilities.indexOf(Math.max(...probabilities)) !== label) run.label_mismatches += 1;
      run.positive_labels += label === 1 ? 1 : 0;
      run.max_probability_diff = Math.max(run.max_probability_diff, ...probabilities.map((p, k) => Math.abs(p - expected[k])));
    }
    for (let start = 0; start < c.codes.length; start += 8) { // batches padded as Python pads them
      const answers = /** @type {any[]} */ (await classify(c.codes.slice(start, start + 8), { top_k: null }));
      answers.forEach((scores, j) => {
        const expected = c.batch8[start + j];
        run.max_probability_diff_batch8 = Math.max(run.max_probability_diff_batch8,
          ...byLabel(scores, c.labels).map((p, k) => Math.abs(p - expected[k])));
      });
    }
    runs.push(run);
    assert.equal(run.label_mismatches, 0, `${c.folder}: labels differ`);
    assert.ok(run.max_probability_diff <= TOLERANCE, `${c.folder}: ${run.max_probability_diff}`);
    assert.ok(run.max_probability_diff_batch8 <= TOLERANCE, `${c.folder} batch 8: ${run.max_probability_diff_batch8}`);
  }
  writeFileSync(path.join(/** @type {string} */ (process.env.LIT_COMPRESSOR_PARITY_OUT), "summary-transformers.json"),
    JSON.stringify({ runs }, null, 2));
});

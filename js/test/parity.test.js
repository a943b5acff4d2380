// Node against Python on the reference tests/test_node_runtime.py writes (LIT_COMPRESSOR_PARITY):
// the same token ids for every function, the same labels, probabilities within 1e-4.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { CodeTokenizer, TinyClassifier } from "lit-compressor-runtime";

const REFERENCE = process.env.LIT_COMPRESSOR_PARITY;
const skip = REFERENCE ? false : "no reference: tests/test_node_runtime.py sets LIT_COMPRESSOR_PARITY";
const TOLERANCE = 1e-4;
/** @type {{runs: Record<string, unknown>[], tokens: Record<string, unknown> | null}} */
const summary = { runs: [], tokens: null };

/** @param {number[]} a @param {number[]} b */
const maxDiff = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

test("token ids, labels and probabilities equal Python's", { skip }, async () => {
  const reference = JSON.parse(readFileSync(/** @type {string} */ (REFERENCE), "utf8"));
  for (const c of reference.cases) {
    for (const backend of /** @type {const} */ (["onnx-int8", "onnx"])) {
      const model = await TinyClassifier.fromPretrained(c.folder, { backend });
      const run = { case: c.name, backend, file: path.basename(model.file), inputs: c.inputs.length, functions: 0,
        id_mismatches: 0, label_mismatches: 0, positive_labels: 0, max_probability_diff: 0,
        max_probability_diff_batch8: 0 };
      for (let i = 0; i < c.inputs.length; i++) {
        const row = c.inputs[i];
        row.forEach((/** @type {string} */ code, /** @type {number} */ j) => {
          run.functions += 1;
          if (JSON.stringify(model.tokenIds(code)) !== JSON.stringify(c.ids[i][j])) run.id_mismatches += 1;
        });
        const prediction = await model.predict(...row);
        const expected = c.probabilities[backend][i];
        const label = expected.indexOf(Math.max(...expected));
        if (prediction.label !== label) run.label_mismatches += 1;
        run.positive_labels += label === 1 ? 1 : 0;
        run.max_probability_diff = Math.max(run.max_probability_diff, maxDiff(prediction.probabilities, expected));
      }
      await assert.rejects(model.predict(...c.inputs[0], "one too many"), /reads \d function\(s\) per prediction, got/);
      const batched = await model.predictBatch(c.inputs, 8);
      batched.forEach((p, i) => {
        run.max_probability_diff_batch8 = Math.max(run.max_probability_diff_batch8, maxDiff(p.probabilities, c.batch8[backend][i]));
      });
      summary.runs.push(run);
      assert.equal(run.id_mismatches, 0, `${c.name}/${backend}: token ids differ`);
      assert.equal(run.label_mismatches, 0, `${c.name}/${backend}: labels differ`);
      assert.ok(run.max_probability_diff <= TOLERANCE, `${c.name}/${backend}: ${run.max_probability_diff}`);
      assert.ok(run.max_probability_diff_batch8 <= TOLERANCE, `${c.name}/${backend} batch 8: ${run.max_probability_diff_batch8}`);
    }
  }
});

test("token ids of tricky text equal Python's", { skip }, async () => {
  const { tokens } = JSON.parse(readFileSync(/** @type {string} */ (REFERENCE), "utf8"));
  const tokenizer = await CodeTokenizer.fromFolder(tokens.folder, tokens.block_size);
  const bad = tokens.texts.filter((/** @type {string} */ text, /** @type {number} */ i) =>
    JSON.stringify(tokenizer.encode(text)) !== JSON.stringify(tokens.ids[i]));
  summary.tokens = { texts: tokens.texts.length, mismatches: bad.length, first: bad.slice(0, 5) };
  assert.deepEqual(bad, []);
});

test.after(() => {
  if (REFERENCE) writeFileSync(path.join(/** @type {string} */ (process.env.LIT_COMPRESSOR_PARITY_OUT), "summary-parity.json"), JSON.stringify(summary, null, 2));
});

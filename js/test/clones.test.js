// Clone search in Node against Python (reference from tests/test_node_runtime.py): the same
// vectors, the same scores as Python's index and as the pair model, and one index format.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { CloneIndex, CloneModel, cloneClasses, readCalibration } from "lit-compressor-runtime";

const REFERENCE = process.env.LIT_COMPRESSOR_PARITY;
const skip = REFERENCE ? false : "no reference: tests/test_node_runtime.py sets LIT_COMPRESSOR_PARITY";
const TOLERANCE = 1e-5;

/** @param {ArrayLike<number>} a @param {ArrayLike<number>} b */
const maxDiff = (a, b) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test("embed, index and search equal Python's and the pair model's", { skip }, async () => {
  const { clones: ref } = JSON.parse(readFileSync(/** @type {string} */ (REFERENCE), "utf8"));
  const model = await CloneModel.fromPretrained(ref.folder);
  const summary = { max_vector_diff: 0, max_score_diff_vs_python_index: 0, max_score_diff_vs_pair_model: 0,
    max_concat_head_diff: 0,
    node_index: /** @type {import("lit-compressor-runtime").UpdateStats | null} */ (null),
    node_index_again: /** @type {import("lit-compressor-runtime").UpdateStats | null} */ (null),
    search_ms: /** @type {number[]} */ ([]) };
  const index = await CloneIndex.load(ref.index, model);
  for (let q = 0; q < ref.queries.length; q++) {
    const vector = await model.embed(ref.queries[q]);
    summary.max_vector_diff = Math.max(summary.max_vector_diff, maxDiff(vector, ref.query_vectors[q]));
    const started = performance.now();
    const scores = await index.scores(vector);
    summary.search_ms.push(performance.now() - started);
    summary.max_score_diff_vs_python_index = Math.max(summary.max_score_diff_vs_python_index, maxDiff(scores, ref.index_scores[q]));
    if (ref.pair_scores) { // fp32 graphs: the index scores are the pair model's predictions
      summary.max_score_diff_vs_pair_model = Math.max(summary.max_score_diff_vs_pair_model,
        maxDiff(scores.subarray(0, ref.pair_scores[q].length), ref.pair_scores[q]));
    }
    const top = await index.search(ref.queries[q], 5);
    const expected = [...ref.index_scores[q]].sort((a, b) => b - a).slice(0, 5);
    assert.ok(maxDiff(top.map((m) => m.score), expected) <= TOLERANCE);
  }
  assert.ok(summary.max_vector_diff <= TOLERANCE, `vectors differ by ${summary.max_vector_diff}`);
  assert.ok(summary.max_score_diff_vs_python_index <= TOLERANCE, `${summary.max_score_diff_vs_python_index}`);
  assert.ok(summary.max_score_diff_vs_pair_model <= TOLERANCE, `${summary.max_score_diff_vs_pair_model}`);

  const built = new CloneIndex(model);
  summary.node_index = await built.update(ref.functions);
  await built.save(ref.node_index);
  const reloaded = await CloneIndex.load(ref.node_index, model);
  summary.node_index_again = await reloaded.update(ref.functions);
  assert.equal(summary.node_index_again?.embedded, 0);
  assert.deepEqual(reloaded.entries, built.entries);
  if (ref.concat) {
    const concat = await CloneModel.fromPretrained(ref.concat.folder); // the concat head reads no `vectors` input
    const got = [];
    for (const [a, b] of ref.concat.pairs) got.push(await concat.pairProbability(a, b));
    summary.max_concat_head_diff = maxDiff(got, ref.concat.expected);
    assert.ok(summary.max_concat_head_diff <= TOLERANCE, `concat head: ${summary.max_concat_head_diff}`);
  }
  writeFileSync(path.join(/** @type {string} */ (process.env.LIT_COMPRESSOR_PARITY_OUT), "summary-clones.json"), JSON.stringify(summary, null, 2));
});

test("pairs and clone classes equal Python's on the same index", { skip }, async () => {
  const { clones: ref } = JSON.parse(readFileSync(/** @type {string} */ (REFERENCE), "utf8"));
  if (!ref.pairs) return;
  const model = await CloneModel.fromPretrained(ref.folder);
  const index = await CloneIndex.load(ref.index, model);
  const { options, expected, classes: expectedClasses } = ref.pairs;
  const pairs = await index.pairs({ threshold: options.threshold, perFunction: options.per_function,
    minTokens: options.min_tokens, calibration: options.calibration, prior: options.prior });
  /** @param {{first: {path: string, start_line: number}, second: {path: string, start_line: number}}} p */
  const key = (p) => `${p.first.path}:${p.first.start_line}|${p.second.path}:${p.second.start_line}`;
  const expectedKeys = expected.map(/** @param {any[]} e */ (e) => `${e[0]}:${e[1]}|${e[2]}:${e[3]}`);
  assert.deepEqual(pairs.map(key).sort(), [...expectedKeys].sort());
  const byKey = new Map(pairs.map((p) => [key(p), p]));
  let maxDiff = 0;
  expected.forEach(/** @param {any[]} e @param {number} i */ (e, i) => {
    const got = /** @type {import("lit-compressor-runtime").ClonePair} */ (byKey.get(expectedKeys[i]));
    maxDiff = Math.max(maxDiff, Math.abs(/** @type {number} */ (got.probability) - e[4]), Math.abs(got.score - e[5]),
      Math.abs(got.similarity - e[6]));
  });
  assert.ok(maxDiff <= TOLERANCE, `pair figures differ by ${maxDiff}`);
  const classes = cloneClasses(pairs).map((c) => c.members.map((m) => `${m.path}:${m.start_line}`));
  assert.deepEqual(classes, expectedClasses);
  writeFileSync(path.join(/** @type {string} */ (process.env.LIT_COMPRESSOR_PARITY_OUT), "summary-pairs.json"),
    JSON.stringify({ pairs: pairs.length, classes: classes.length, max_diff: maxDiff,
      calibration_read: await readCalibration(ref.folder) }, null, 2));
});

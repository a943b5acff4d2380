// Unit tests that need no model: whitespace normalisation and the tokenizer corrections.
import assert from "node:assert/strict";
import { test } from "node:test";

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { CloneIndex, CloneModel, normalizeWhitespace, TinyClassifier } from "lit-compressor-runtime";

import { BYTE_LEVEL_PATTERN, lowercaseCodePoints, singleSpecialTokens } from "../src/tokenizer.js";

test("whitespace is Python's str.split(): \\x1c-\\x1f and NEL split, BOM does not", () => {
  assert.equal(normalizeWhitespace("  int\tx\n=\r\n1 ;  "), "int x = 1 ;");
  assert.equal(normalizeWhitespace("a\x1cb\x1fc\x85d\u2028e\u3000f"), "a b c d e f");
  assert.equal(normalizeWhitespace("a\ufeffb"), "a\ufeffb");
  assert.equal(normalizeWhitespace(" \t\n"), "");
});

test("lowercasing is code point by code point (no final sigma)", () => {
  assert.equal(lowercaseCodePoints("ΟΔΟΣ"), "οδοσ");
  assert.equal("ΟΔΟΣ".toLowerCase(), "οδος");
  assert.equal(lowercaseCodePoints("İ"), "i\u0307");
});

test("byte-level split uses Oniguruma's whitespace", () => {
  assert.deepEqual("x \ufeffy".match(BYTE_LEVEL_PATTERN), ["x", " \ufeff", "y"]);
  assert.deepEqual("a\u0085 b".match(BYTE_LEVEL_PATTERN), ["a", "\u0085", " b"]);
  assert.deepEqual("int x  = 1;".match(BYTE_LEVEL_PATTERN), ["int", " x", " ", " =", " 1", ";"]);
});

test("special tokens of a single sequence come from the post-processor", () => {
  const template = { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<s>" } }, { Sequence: { id: "A" } },
    { SpecialToken: { id: "</s>" } }], special_tokens: { "<s>": { ids: [0] }, "</s>": { ids: [2] } } };
  assert.deepEqual(singleSpecialTokens(template), { prefix: [0], suffix: [2] });
  assert.deepEqual(singleSpecialTokens({ type: "BertProcessing", cls: ["[CLS]", 101], sep: ["[SEP]", 102] }),
    { prefix: [101], suffix: [102] });
  assert.deepEqual(singleSpecialTokens(null), { prefix: [], suffix: [] });
  assert.throws(() => singleSpecialTokens({ type: "Mystery" }), /not supported/);
});

test("a folder that is not an export says what is missing and how to fix it", async () => {
  const folder = mkdtempSync(path.join(tmpdir(), "not-a-model-"));
  await assert.rejects(TinyClassifier.fromPretrained(folder), /not a model folder \(no config\.json\)/);
  writeFileSync(path.join(folder, "config.json"), JSON.stringify({ hidden_size: 8, lit_compressor: { num_inputs: 2 } }));
  await assert.rejects(TinyClassifier.fromPretrained(folder, { backend: "onnx" }),
    /no model\.optimized\.onnx or model\.onnx .*lit-compressor export/);
  await assert.rejects(CloneModel.fromPretrained(folder), /no encoder\.int8\.onnx/);  // a shipped folder's
  await assert.rejects(CloneModel.fromPretrained(folder, { precision: "fp32" }), /no encoder\.optimized\.onnx or encoder\.onnx/);
  await assert.rejects(CloneModel.fromPretrained(folder, { precision: /** @type {any} */ ("fp16") }), /unknown precision/);
  await assert.rejects(CloneIndex.load(folder, /** @type {any} */ ({})), /no clone index here/);
  // an export folder whose full/ forms were not asked for: the fp32 backend says how to get them
  const exported = mkdtempSync(path.join(tmpdir(), "export-"));
  mkdirSync(path.join(exported, "shipped"));
  await assert.rejects(TinyClassifier.fromPretrained(exported, { backend: "onnx" }), /export again with `--full true`/);
});

test("search ranks the best k as a full stable sort would, ties and threshold included", async () => {
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + (trial % 50);
    const topK = 1 + ((trial * 7) % 60);
    const threshold = trial % 2 ? 0.3 : 0;
    const scores = Float64Array.from({ length: n }, (_, i) => ((i * 31 + trial * 17) % 5) / 4);
    const index = Object.create(CloneIndex.prototype);
    index.entries = Array.from(scores.keys());
    index.scores = async () => scores;
    const full = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b).slice(0, topK)
      .filter((i) => scores[i] >= threshold);
    assert.deepEqual((await index.searchVector(new Float32Array(0), topK, threshold)).map((/** @type {any} */ m) => m.function), full);
  }
});

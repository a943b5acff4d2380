/**
 * The student's tokenizer in JavaScript: `tokenizer.json` read by `@huggingface/tokenizers`, with
 * Python's whitespace normalisation, truncation to `block_size` tokens (special tokens included)
 * and the special tokens of the tokenizer's post-processor, as `CodeEncoder.encode` does in Python.
 *
 * Two places where the JavaScript library departs from the Rust `tokenizers` that Python runs are
 * corrected here (both are covered by the parity tests):
 * - `Lowercase`: Rust lowercases code point by code point; `String.prototype.toLowerCase` applies
 *   the final-sigma rule ("ΟΔΟΣ" -> "οδος" instead of "οδοσ").
 * - `ByteLevel` split regex: Rust (Oniguruma) `\s` is Unicode White_Space (with U+0085, without
 *   U+FEFF), JavaScript's `\s` is the reverse; the pattern is rebuilt with Oniguruma's class.
 */

import { readFile } from "node:fs/promises";
import path from "node:path";

import { Tokenizer } from "@huggingface/tokenizers";

import { normalizeWhitespace } from "./normalize.js";

/** Oniguruma's `\s` in Unicode mode: the White_Space property. */
const ONIG_SPACE = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
/** GPT-2's byte-level split pattern, `\s` spelled as Oniguruma reads it. */
export const BYTE_LEVEL_PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${ONIG_SPACE}\\p{L}\\p{N}]+|[${ONIG_SPACE}]+(?![^${ONIG_SPACE}])|[${ONIG_SPACE}]+`,
  "gu",
);

/**
 * Lowercase code point by code point, as Rust's `char::to_lowercase` (no final-sigma rule).
 * @param {string} text
 * @returns {string}
 */
export function lowercaseCodePoints(text) {
  let out = "";
  for (const char of text) out += char.toLowerCase();
  return out;
}

/**
 * The ids a post-processor puts before and after a single sequence.
 * @param {any} config the `post_processor` object of tokenizer.json (or null)
 * @returns {{prefix: number[], suffix: number[]}}
 */
export function singleSpecialTokens(config) {
  if (config == null || config.type === "ByteLevel") return { prefix: [], suffix: [] };
  if (config.type === "TemplateProcessing") {
    /** @type {number[]} */
    const prefix = [];
    /** @type {number[]} */
    const suffix = [];
    let seen = false;
    for (const item of config.single) {
      if (item.Sequence) {
        seen = true;
      } else {
        const special = config.special_tokens[item.SpecialToken.id];
        if (!special) throw new Error(`tokenizer.json: special token ${item.SpecialToken.id} has no ids`);
        (seen ? suffix : prefix).push(...special.ids);
      }
    }
    return { prefix, suffix };
  }
  if (config.type === "RobertaProcessing" || config.type === "BertProcessing") {
    return { prefix: [config.cls[1]], suffix: [config.sep[1]] };
  }
  if (config.type === "Sequence") {
    /** @type {{prefix: number[], suffix: number[]}[]} */
    const parts = config.processors.map(singleSpecialTokens);
    return { prefix: parts.flatMap((p) => p.prefix), suffix: parts.flatMap((p) => p.suffix) };
  }
  throw new Error(`tokenizer.json: post-processor ${config.type} is not supported by the Node runtime`);
}

/**
 * Apply the two corrections above to a `@huggingface/tokenizers` Tokenizer built from `json`.
 * @param {any} tokenizer
 * @param {any} json
 */
function matchRust(tokenizer, json) {
  const addedAreLower = (json.added_tokens ?? []).every(
    (/** @type {{content: string}} */ t) => lowercaseCodePoints(t.content) === t.content);
  /** @param {any} instance @param {any} config */
  const fixNormalizer = (instance, config) => {
    if (!instance || !config) return;
    if (config.type === "Lowercase") instance.normalize = lowercaseCodePoints;
    if (config.type === "Sequence") {
      config.normalizers.forEach((/** @type {any} */ c, /** @type {number} */ i) => fixNormalizer(instance.normalizers[i], c));
    }
  };
  if (addedAreLower) fixNormalizer(tokenizer.normalizer, json.normalizer);
  /** @param {any} instance @param {any} config */
  const fixPreTokenizer = (instance, config) => {
    if (!instance || !config) return;
    if (config.type === "ByteLevel" && instance.pattern instanceof RegExp) instance.pattern = BYTE_LEVEL_PATTERN;
    if (config.type === "Sequence") {
      config.pretokenizers.forEach((/** @type {any} */ c, /** @type {number} */ i) => fixPreTokenizer(instance.tokenizers[i], c));
    }
  };
  fixPreTokenizer(tokenizer.pre_tokenizer, json.pre_tokenizer);
}

/** Code -> model input ids, exactly as Python's `CodeEncoder.encode`. */
export class CodeTokenizer {
  /**
   * @param {any} tokenizerJson the parsed tokenizer.json
   * @param {any} tokenizerConfig the parsed tokenizer_config.json ({} when absent)
   * @param {number} blockSize tokens per function, special tokens included
   */
  constructor(tokenizerJson, tokenizerConfig, blockSize) {
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    matchRust(this.tokenizer, tokenizerJson);
    this.blockSize = blockSize;
    const { prefix, suffix } = singleSpecialTokens(tokenizerJson.post_processor);
    this.prefix = prefix;
    this.suffix = suffix;
    this.budget = blockSize - prefix.length - suffix.length;
    if (this.budget < 1) throw new Error(`block_size ${blockSize} leaves no room for code tokens`);
    this.truncateLeft = tokenizerConfig.truncation_side === "left";
    const padToken = tokenizerConfig.pad_token ?? "<pad>";
    const pad = tokenizerJson.added_tokens?.find((/** @type {{content: string}} */ t) => t.content === padToken);
    this.padId = pad ? pad.id : 0;
    /** @type {Map<string, number[]>} */
    this.cache = new Map();
  }

  /**
   * Read `tokenizer.json` (and `tokenizer_config.json` when present) from a model folder.
   * @param {string} folder
   * @param {number} blockSize
   */
  static async fromFolder(folder, blockSize) {
    const json = JSON.parse(await readFile(path.join(folder, "tokenizer.json"), "utf8"));
    let config = {};
    try {
      config = JSON.parse(await readFile(path.join(folder, "tokenizer_config.json"), "utf8"));
    } catch (error) {
      if (/** @type {NodeJS.ErrnoException} */ (error).code !== "ENOENT") throw error;
    }
    return new CodeTokenizer(json, config, blockSize);
  }

  /**
   * Input ids of one function: normalised, truncated to the block, wrapped in special tokens.
   * @param {string} code
   * @returns {number[]}
   */
  encode(code) {
    const cached = this.cache.get(code);
    if (cached) return cached;
    let ids = this.tokenizer.encode(normalizeWhitespace(code), { add_special_tokens: false }).ids;
    if (ids.length > this.budget) ids = this.truncateLeft ? ids.slice(ids.length - this.budget) : ids.slice(0, this.budget);
    const out = [...this.prefix, ...ids, ...this.suffix];
    if (this.cache.size < 1024) this.cache.set(code, out);
    return out;
  }
}

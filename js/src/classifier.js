/**
 * A shipped student in Node.js: `TinyClassifier.fromPretrained(folder)` then `predict(code)` or
 * `predict(codeA, codeB)`, with the folder's tokenizer, block size and ONNX graph, as Python's
 * `lit_compressor.TinyClassifier` does.
 */

import { access, readFile } from "node:fs/promises";
import path from "node:path";

import ort from "onnxruntime-node";

import { CodeTokenizer } from "./tokenizer.js";

/** ONNX files of each backend, preferred first (Python's `inference.ONNX_FILES`). */
export const ONNX_FILES = {
  onnx: ["model.optimized.onnx", "model.onnx"],
  "onnx-int8": ["model.int8.onnx"],
};
export const DEFAULT_BLOCK_SIZE = 400;

/**
 * @param {string} file
 * @returns {Promise<boolean>}
 */
export async function exists(file) {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first of `names` present in `folder`, or an error that says how to make one.
 * @param {string} folder
 * @param {string[]} names
 * @param {string} what
 */
export async function firstFile(folder, names, what) {
  for (const name of names) {
    if (await exists(path.join(folder, name))) return path.join(folder, name);
  }
  throw new Error(`${folder}: no ${names.join(" or ")} (${what}). Run \`lit-compressor export --model ${folder} --output DIR\` and load DIR.`);
}

/**
 * A CPU session with the settings Python's OrtRunner uses (no spinning threads).
 * @param {string} file
 * @param {number | undefined} threads
 */
export function createSession(file, threads) {
  return ort.InferenceSession.create(file, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    interOpNumThreads: 1,
    ...(threads ? { intraOpNumThreads: threads } : {}),
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
}

/**
 * The `lit_compressor` block of config.json and the config itself.
 * @param {string} folder
 */
export async function readModelConfig(folder) {
  let config;
  try {
    config = JSON.parse(await readFile(path.join(folder, "config.json"), "utf8"));
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code === "ENOENT") {
      throw new Error(`${folder}: not a model folder (no config.json). Give a folder written by \`lit-compressor export\`.`);
    }
    throw error;
  }
  const meta = config.lit_compressor ?? {};
  return {
    config,
    numInputs: Number(meta.num_inputs ?? 1),
    blockSize: Number(meta.block_size ?? DEFAULT_BLOCK_SIZE),
    pooling: String(meta.pooling ?? "first"),
    pairHead: String(meta.pair_head ?? "concat"),
    positiveLabel: Number(meta.positive_label ?? 1),
    hiddenSize: Number(config.hidden_size),
  };
}

/**
 * Softmax in float64, as Python's `softmax(logits.astype(np.float64))`.
 * @param {ArrayLike<number>} logits
 * @returns {number[]}
 */
export function softmax(logits) {
  const values = Array.from(logits);
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/**
 * Pad functions' ids into `[rows, n, L]` int64 tensors (L: the longest function of the batch).
 * @param {number[][][]} rows
 * @param {number} padId
 */
export function padBatch(rows, padId) {
  const n = rows[0].length;
  const length = Math.max(...rows.flatMap((row) => row.map((ids) => ids.length)));
  const ids = new BigInt64Array(rows.length * n * length).fill(BigInt(padId));
  const mask = new BigInt64Array(rows.length * n * length);
  rows.forEach((row, i) => row.forEach((tokens, j) => {
    const offset = (i * n + j) * length;
    tokens.forEach((token, k) => {
      ids[offset + k] = BigInt(token);
      mask[offset + k] = 1n;
    });
  }));
  const dims = [rows.length, n, length];
  return { input_ids: new ort.Tensor("int64", ids, dims), attention_mask: new ort.Tensor("int64", mask, dims) };
}

export class TinyClassifier {
  /**
   * @param {ort.InferenceSession} session
   * @param {CodeTokenizer} tokenizer
   * @param {Awaited<ReturnType<typeof readModelConfig>>} meta
   * @param {string} file
   */
  constructor(session, tokenizer, meta, file) {
    this.session = session;
    this.tokenizer = tokenizer;
    this.numInputs = meta.numInputs;
    this.blockSize = meta.blockSize;
    this.positiveLabel = meta.positiveLabel;
    this.file = file;
  }

  /**
   * Load an exported folder. `backend` "onnx-int8" (the default when `model.int8.onnx` exists) or "onnx".
   * @param {string} folder
   * @param {{backend?: "onnx" | "onnx-int8", threads?: number}} [options]
   */
  static async fromPretrained(folder, options = {}) {
    const meta = await readModelConfig(folder);
    const backend = options.backend ?? ((await exists(path.join(folder, "model.int8.onnx"))) ? "onnx-int8" : "onnx");
    if (!(backend in ONNX_FILES)) throw new Error(`unknown backend ${backend}: use onnx or onnx-int8`);
    const file = await firstFile(folder, ONNX_FILES[backend], `the ${backend} backend`);
    const tokenizer = await CodeTokenizer.fromFolder(folder, meta.blockSize);
    return new TinyClassifier(await createSession(file, options.threads), tokenizer, meta, file);
  }

  /**
   * Input ids of one function (what Python's CodeEncoder.encode gives).
   * @param {string} code
   */
  tokenIds(code) {
    return this.tokenizer.encode(code);
  }

  /**
   * `[rows, labels]` logits of rows of `numInputs` functions each (one batch, padded to its longest).
   * @param {string[][]} rows
   * @returns {Promise<number[][]>}
   */
  async logits(rows) {
    const feeds = padBatch(rows.map((row) => row.map((code) => this.tokenizer.encode(code))), this.tokenizer.padId);
    const { logits } = await this.session.run(feeds);
    const data = /** @type {Float32Array} */ (logits.data);
    const labels = Number(logits.dims[1]);
    return rows.map((_, i) => Array.from(data.subarray(i * labels, (i + 1) * labels)));
  }

  /**
   * Predict one function (single-input models) or one pair (pair models).
   * @param {...string} codes
   */
  async predict(...codes) {
    return (await this.predictBatch([codes]))[0];
  }

  /**
   * Predict many: strings for single-input models, `[codeA, codeB]` for pair models; `batchSize`
   * rows share a batch, as in Python's `predict_batch`.
   * @param {(string | string[])[]} rows
   * @param {number} [batchSize]
   */
  async predictBatch(rows, batchSize = 32) {
    const normalized = rows.map((row) => (typeof row === "string" ? [row] : row));
    for (const row of normalized) {
      if (row.length !== this.numInputs) {
        throw new Error(`this model reads ${this.numInputs} function(s) per prediction, got ${row.length}. ` +
          "Pass one code string, or codeA and codeB for a pair model.");
      }
    }
    const predictions = [];
    for (let start = 0; start < normalized.length; start += batchSize) {
      for (const logits of await this.logits(normalized.slice(start, start + batchSize))) {
        const probabilities = softmax(logits);
        let label = 0;
        probabilities.forEach((p, i) => { if (p > probabilities[label]) label = i; });
        predictions.push({ label, probability: probabilities[label], probabilities });
      }
    }
    return predictions;
  }
}

/**
 * A shipped student in Node.js: `TinyClassifier.fromPretrained(folder)` then `predict(code)` or
 * `predict(codeA, codeB)`, with the folder's tokenizer, block size and ONNX graph, as Python's
 * `lit_compressor.TinyClassifier` does.
 *
 * `folder` is the shipped folder `lit-compressor export` writes (`OUTPUT/shipped`: the int8 graphs), a full
 * export (`OUTPUT/full`: every form), or the export folder itself (its `shipped/` or `full/`, whichever holds
 * the file the backend runs).
 */

import { access, readFile } from "node:fs/promises";
import path from "node:path";

import ort from "onnxruntime-node";

import { CodeTokenizer } from "./tokenizer.js";

/**
 * ONNX files of each backend, preferred first (Python's `runners.ONNX_FILES`); a single-function student ships
 * its graph in the layout transformers.js reads (`onnx/`, `[B, L]` inputs).
 */
export const ONNX_FILES = {
  onnx: ["model.optimized.onnx", "model.onnx", "onnx/model.onnx"],
  "onnx-int8": ["model.int8.onnx", "onnx/model_quantized.onnx"],
};
export const DEFAULT_BLOCK_SIZE = 400;
/** The subfolders of an export folder: what a runtime loads, and every form (written with `--full true`). */
export const SHIPPED = "shipped";
export const FULL = "full";

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
  throw new Error(`${folder}: no ${names.join(" or ")} (${what}). Export the student with ` +
    "`lit-compressor export --model STUDENT --output DIR` and load DIR/shipped (DIR/full, with `--full true`, for fp32).");
}

/**
 * `folder` itself when it is a model folder, else (an export folder) its `shipped/` or `full/` subfolder, the
 * first that holds one of `names` (Python's `resolve_folder`).
 * @param {string} folder
 * @param {string[]} names
 */
export async function resolveFolder(folder, names) {
  const subfolders = [path.join(folder, SHIPPED), path.join(folder, FULL)];
  if (await exists(path.join(folder, "config.json"))) return folder;
  if (!(await exists(subfolders[0])) && !(await exists(subfolders[1]))) return folder;
  for (const sub of subfolders) {
    for (const name of names) if (await exists(path.join(sub, name))) return sub;
  }
  throw new Error(`${folder}: this export folder holds no ${names.join(" or ")}. ${SHIPPED}/ holds only the shipped ` +
    `graphs: export again with \`--full true\` to keep every form in ${FULL}/, or load the shipped form (onnx-int8).`);
}

/**
 * The backend a folder is meant for: its int8 graph when it has one (a shipped folder, or an export folder's),
 * else fp32 ONNX.
 * @param {string} folder
 * @returns {Promise<"onnx" | "onnx-int8">}
 */
export async function defaultBackend(folder) {
  for (const base of [folder, path.join(folder, SHIPPED)]) {
    for (const name of ONNX_FILES["onnx-int8"]) if (await exists(path.join(base, name))) return "onnx-int8";
  }
  return "onnx";
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
 * Pad functions' ids into `[rows, n, L]` int64 tensors (L: the longest function of the batch); `[rows, L]` for a
 * graph that reads one function per row (the transformers.js layout).
 * @param {number[][][]} rows
 * @param {number} padId
 * @param {boolean} [perFunction]
 */
export function padBatch(rows, padId, perFunction = false) {
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
  const dims = perFunction ? [rows.length, length] : [rows.length, n, length];
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
    const [ids] = session.inputMetadata;
    /** Whether the graph reads `[B, L]` (one function a row) rather than `[B, n, L]`. */
    this.perFunction = ids.isTensor && ids.shape.length === 2;
    this.tokenizer = tokenizer;
    this.numInputs = meta.numInputs;
    this.blockSize = meta.blockSize;
    this.positiveLabel = meta.positiveLabel;
    this.file = file;
  }

  /**
   * Load a shipped or exported folder. `backend` "onnx-int8" (the default when the folder has an int8 graph) or
   * "onnx" (a full export's fp32 graph).
   * @param {string} folder
   * @param {{backend?: "onnx" | "onnx-int8", threads?: number}} [options]
   */
  static async fromPretrained(folder, options = {}) {
    const backend = options.backend ?? (await defaultBackend(folder));
    if (!(backend in ONNX_FILES)) throw new Error(`unknown backend ${backend}: use onnx or onnx-int8`);
    folder = await resolveFolder(folder, ONNX_FILES[backend]);
    const meta = await readModelConfig(folder);
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
    const ids = rows.map((row) => row.map((code) => this.tokenizer.encode(code)));
    const feeds = padBatch(ids, this.tokenizer.padId, this.perFunction);
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

/**
 * Clone search in Node.js, on the same files as Python's `lit_compressor.clones`:
 * `encoder.onnx` (or `encoder.int8.onnx`) embeds one function at a time; `head_prepare.onnx` applies
 * the pair head's per-function blocks to every cached vector once, and `head.onnx` then scores
 * `(query, vectors[i])` for every row in one run (Python runs the same graphs); a `CloneIndex`
 * folder (`index.json` + `vectors.f32`) written by either language is read by both.
 */

import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

import ort from "onnxruntime-node";

import { createSession, exists, firstFile, readModelConfig, resolveFolder } from "./classifier.js";
import { normalizeWhitespace } from "./normalize.js";
import { CodeTokenizer } from "./tokenizer.js";

export const ENCODER_FILES = { fp32: ["encoder.optimized.onnx", "encoder.onnx"], int8: ["encoder.int8.onnx"] };
export const INDEX_FORMAT = 1;

/**
 * The content key of a function: Python's `code_hash`, `hash_texts([normalize_whitespace(code)])` (the first 16 hex
 * digits of the SHA-256 of the whitespace-normalised text and a NUL).
 * @param {string} code
 */
export function codeHash(code) {
  return sha256Hex(`${normalizeWhitespace(code)}\0`);
}

/**
 * Probability of `positiveLabel` for each row of `[rows, labels]` logits (float64 softmax).
 * @param {Float32Array} logits
 * @param {number} labels
 * @param {number} positiveLabel
 */
function positiveProbabilities(logits, labels, positiveLabel) {
  const rows = logits.length / labels;
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let max = -Infinity;
    for (let k = 0; k < labels; k++) max = Math.max(max, logits[i * labels + k]);
    let sum = 0;
    for (let k = 0; k < labels; k++) sum += Math.exp(logits[i * labels + k] - max);
    out[i] = Math.exp(logits[i * labels + positiveLabel] - max) / sum;
  }
  return out;
}

/**
 * "fp32" when `folder` itself holds the fp32 encoder graph (a full export), else "int8" (a shipped folder, or an
 * export folder: its shipped/ subfolder).
 * @param {string} folder
 * @returns {Promise<"fp32" | "int8">}
 */
export async function defaultPrecision(folder) {
  for (const name of ENCODER_FILES.fp32) if (await exists(path.join(folder, name))) return "fp32";
  return "int8";
}

export class CloneModel {
  /**
   * @param {ort.InferenceSession} encoder
   * @param {{prepare: ort.InferenceSession, score: ort.InferenceSession} | null} head
   * @param {CodeTokenizer} tokenizer
   * @param {Awaited<ReturnType<typeof readModelConfig>>} meta
   * @param {{folder: string, graph: string, precision: string}} files
   */
  constructor(encoder, head, tokenizer, meta, files) {
    this.encoder = encoder;
    this.headSession = head;
    this.tokenizer = tokenizer;
    this.meta = meta;
    this.hiddenSize = meta.hiddenSize;
    this.numInputs = meta.numInputs;
    this.folder = files.folder;
    this.graph = files.graph;
    this.precision = files.precision;
    /** @type {string | null} */
    this.fingerprintCache = null;
  }

  /**
   * Load the clone-search graphs of a shipped or exported folder. `precision` "int8" (a shipped folder's
   * `encoder.int8.onnx`) or "fp32" (a full export's: equal to the pair model's scores; dynamic int8 makes them
   * differ by ~1e-3); by default the folder's own (Python's `default_precision`).
   * @param {string} folder
   * @param {{precision?: "fp32" | "int8", threads?: number}} [options]
   */
  static async fromPretrained(folder, options = {}) {
    const precision = options.precision ?? (await defaultPrecision(folder));
    if (!(precision in ENCODER_FILES)) throw new Error(`unknown precision ${precision}: use fp32 or int8`);
    folder = await resolveFolder(folder, ENCODER_FILES[precision]);
    const meta = await readModelConfig(folder);
    const graph = await firstFile(folder, ENCODER_FILES[precision], "the encoder-only graph");
    const tokenizer = await CodeTokenizer.fromFolder(folder, meta.blockSize);
    const [headFile, prepareFile] = [path.join(folder, "head.onnx"), path.join(folder, "head_prepare.onnx")];
    const head = meta.numInputs === 2 && (await exists(headFile)) && (await exists(prepareFile))
      ? { prepare: await createSession(prepareFile, options.threads), score: await createSession(headFile, options.threads) }
      : null;
    const encoder = await createSession(graph, options.threads);
    return new CloneModel(encoder, head, tokenizer, meta, { folder, graph, precision });
  }

  /** The pair head's session, or an error for models without one. */
  get head() {
    if (this.headSession) return this.headSession;
    throw new Error(this.numInputs === 2
      ? `${this.folder}: no head.onnx and head_prepare.onnx. Re-export the model with \`lit-compressor export\`.`
      : `${this.folder}: this model reads one function at a time; it has no pair head. Use a clone detection (pair) model.`);
  }

  /**
   * The pooled `[H]` vector of one function.
   * @param {string} code
   * @returns {Promise<Float32Array>}
   */
  async embed(code) {
    const ids = this.tokenizer.encode(code);
    const dims = [1, ids.length];
    const feeds = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), dims),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(ids.length).fill(1n), dims),
    };
    const { pooled } = await this.encoder.run(feeds);
    return Float32Array.from(/** @type {Float32Array} */ (pooled.data));
  }

  /**
   * The head's blocks for every row of a float32 `[rows, H]` tensor, as the first function of a pair
   * and as the second (compute them once per index).
   * @param {ort.Tensor} vectors
   * @returns {Promise<{first: ort.Tensor, second: ort.Tensor}>}
   */
  async prepare(vectors) {
    if (Number(vectors.dims[0]) === 0) return { first: vectors, second: vectors };
    const { first, second } = await this.head.prepare.run({ vectors });
    return { first, second };
  }

  /**
   * Clone probability of `(query, row i)` for each row of `vectors` (`[rows, H]`, row-major).
   * @param {Float32Array} query
   * @param {ort.Tensor} vectors a float32 `[rows, H]` tensor (reuse it across queries)
   * @param {ort.Tensor} prepared `(await prepare(vectors)).second` (reuse it too)
   */
  async scoreRows(query, vectors, prepared) {
    const queryTensor = new ort.Tensor("float32", query, [1, this.hiddenSize]);
    /** @type {Record<string, ort.Tensor>} */
    const feeds = { query: queryTensor, query_block: (await this.prepare(queryTensor)).first, prepared, vectors };
    const session = this.head.score;
    const { logits } = await session.run(Object.fromEntries(session.inputNames.map((name) => [name, feeds[name]])));
    return positiveProbabilities(/** @type {Float32Array} */ (logits.data), Number(logits.dims[1]), this.meta.positiveLabel);
  }

  /**
   * The clone probability of `(codeA, codeB)` from two embeddings and the head.
   * @param {string} codeA
   * @param {string} codeB
   */
  async pairProbability(codeA, codeB) {
    const other = new ort.Tensor("float32", await this.embed(codeB), [1, this.hiddenSize]);
    return (await this.scoreRows(await this.embed(codeA), other, (await this.prepare(other)).second))[0];
  }

  /**
   * Python's `CloneModel.fingerprint`: `hash_json(hash_files(graph), hash_files(tokenizer.json), block_size,
   * pooling)`, i.e. the first 16 hex digits of the SHA-256 of Python's `json.dumps` of those four values and a NUL.
   */
  async fingerprint() {
    if (this.fingerprintCache) return this.fingerprintCache;
    /** @param {string} file */
    const fileHash = async (file) => ((await exists(file)) ? sha256Hex(await readFile(file)) : null);
    const parts = [await fileHash(this.graph), await fileHash(path.join(this.folder, "tokenizer.json")),
      this.meta.blockSize, this.meta.pooling];
    // json.dumps(list) separates items with ", " where JSON.stringify uses ","
    this.fingerprintCache = sha256Hex(`[${parts.map((part) => JSON.stringify(part)).join(", ")}]\0`);
    return this.fingerprintCache;
  }
}

/**
 * Python's `core.fingerprint` cut: the first 16 hex digits of SHA-256.
 * @param {string | Buffer} data
 */
function sha256Hex(data) {
  return createHash("sha256").update(data).digest("hex").slice(0, 16);
}

/**
 * @typedef {{path: string, name: string, language: string, start_line: number, end_line: number, hash: string}} IndexedFunction
 * @typedef {{path: string, name: string, language: string, start_line: number, end_line: number, code: string}} SourceFunction
 */

export class CloneIndex {
  /** @param {CloneModel} model */
  constructor(model) {
    this.model = model;
    model.head; // fail now for models without a pair head
    /** @type {IndexedFunction[]} */
    this.entries = [];
    /** @type {string[]} */
    this.hashes = [];
    this.vectors = new Float32Array(0);
    /** @type {Map<string, number>} */
    this.rowOf = new Map();
    this.entryRows = new Int32Array(0);
    this.tensor = new ort.Tensor("float32", this.vectors, [0, model.hiddenSize]);
    /** @type {ort.Tensor} */
    this.prepared = this.tensor;
  }

  get size() {
    return this.entries.length;
  }

  /** Recompute the lookups and the head's per-vector part after the rows or entries changed. */
  async refresh() {
    this.rowOf = new Map(this.hashes.map((h, i) => [h, i]));
    this.entryRows = Int32Array.from(this.entries.map((e) => /** @type {number} */ (this.rowOf.get(e.hash))));
    this.tensor = new ort.Tensor("float32", this.vectors, [this.hashes.length, this.model.hiddenSize]);
    this.prepared = (await this.model.prepare(this.tensor)).second;
  }

  /**
   * Make the index hold exactly `functions`, embedding only content it has not seen.
   * @param {SourceFunction[]} functions
   * @param {(done: number, total: number) => void} [onProgress]
   */
  async update(functions, onProgress) {
    const entries = functions.map((f) => ({ path: f.path, name: f.name, language: f.language, start_line: f.start_line,
      end_line: f.end_line, hash: codeHash(f.code) }));
    /** @type {Map<string, string>} */
    const codeOf = new Map();
    entries.forEach((e, i) => { if (!codeOf.has(e.hash)) codeOf.set(e.hash, functions[i].code); });
    const needed = [...codeOf.keys()];
    const fresh = needed.filter((h) => !this.rowOf.has(h));
    const old = needed.filter((h) => this.rowOf.has(h));
    const H = this.model.hiddenSize;
    const vectors = new Float32Array((old.length + fresh.length) * H);
    old.forEach((h, i) => {
      const row = /** @type {number} */ (this.rowOf.get(h));
      vectors.set(this.vectors.subarray(row * H, (row + 1) * H), i * H);
    });
    for (let i = 0; i < fresh.length; i++) {
      vectors.set(await this.model.embed(/** @type {string} */ (codeOf.get(fresh[i]))), (old.length + i) * H);
      onProgress?.(i + 1, fresh.length);
    }
    const dropped = this.hashes.filter((h) => !codeOf.has(h)).length;
    this.hashes = [...old, ...fresh];
    this.vectors = vectors;
    this.entries = entries;
    await this.refresh();
    return { functions: entries.length, embedded: fresh.length, reused: old.length, dropped };
  }

  /**
   * Clone probability of `(query, entry)` for every entry.
   * @param {Float32Array} vector the query's embedding
   */
  async scores(vector) {
    if (this.entries.length === 0) return new Float64Array(0);
    const perRow = await this.model.scoreRows(vector, this.tensor, this.prepared);
    return Float64Array.from(this.entryRows, (row) => perRow[row]);
  }

  /**
   * The `topK` indexed functions most likely to be clones of `code` (score >= `threshold`).
   * @param {string} code
   * @param {number} [topK]
   * @param {number} [threshold]
   */
  async search(code, topK = 10, threshold = 0) {
    return this.searchVector(await this.model.embed(code), topK, threshold);
  }

  /**
   * @param {Float32Array} vector
   * @param {number} [topK]
   * @param {number} [threshold]
   */
  async searchVector(vector, topK = 10, threshold = 0) {
    const scores = await this.scores(vector);
    /** @type {number[]} the best entries so far, best first (ties: the earlier entry first) */
    const best = [];
    for (let i = 0; i < scores.length; i++) {
      if (scores[i] < threshold || (best.length === topK && scores[i] <= scores[best[best.length - 1]])) continue;
      let k = best.length;
      while (k > 0 && scores[best[k - 1]] < scores[i]) k--;
      best.splice(k, 0, i);
      if (best.length > topK) best.pop();
    }
    return best.map((i) => ({ function: this.entries[i], score: scores[i] }));
  }

  /**
   * Write `index.json` and `vectors.f32` (each replaced atomically).
   * @param {string} folder
   */
  async save(folder) {
    await mkdir(folder, { recursive: true });
    const meta = { format: INDEX_FORMAT, fingerprint: await this.model.fingerprint(), precision: this.model.precision,
      hidden_size: this.model.hiddenSize, rows: this.hashes.length, hashes: this.hashes, entries: this.entries };
    const bytes = Buffer.from(this.vectors.buffer, this.vectors.byteOffset, this.vectors.byteLength);
    for (const [name, data] of /** @type {[string, Buffer | string][]} */ ([["vectors.f32", bytes], ["index.json", JSON.stringify(meta)]])) {
      const tmp = path.join(folder, `${name}.${process.pid}.tmp`);
      await writeFile(tmp, data);
      await rename(tmp, path.join(folder, name));
    }
    return folder;
  }

  /**
   * Read an index written by `save` (Node or Python) for the same model.
   * @param {string} folder
   * @param {CloneModel} model
   */
  static async load(folder, model) {
    const metaFile = path.join(folder, "index.json");
    if (!(await exists(metaFile)) || !(await exists(path.join(folder, "vectors.f32")))) {
      throw new Error(`${folder}: no clone index here (index.json and vectors.f32). Build one with CloneIndex.update and save, or \`lit-compressor clones --index DIR\`.`);
    }
    const meta = JSON.parse(await readFile(metaFile, "utf8"));
    if (meta.format !== INDEX_FORMAT) throw new Error(`${metaFile}: index format ${meta.format}, this runtime reads ${INDEX_FORMAT}. Delete the folder to rebuild it.`);
    if (meta.fingerprint !== (await model.fingerprint())) {
      throw new Error(`${metaFile}: the index was built with another model, tokenizer, block size or precision. Delete the folder to rebuild it.`);
    }
    const bytes = await readFile(path.join(folder, "vectors.f32"));
    if (bytes.length !== 4 * meta.hidden_size * meta.hashes.length) {
      throw new Error(`${folder}: vectors.f32 holds ${bytes.length} bytes, not ${meta.hashes.length} x ${meta.hidden_size} float32. Delete the folder to rebuild it.`);
    }
    const index = new CloneIndex(model);
    index.hashes = meta.hashes;
    index.vectors = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    index.entries = meta.entries;
    await index.refresh();
    return index;
  }
}

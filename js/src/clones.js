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
export const INDEX_FORMAT = 2;
export const CALIBRATION_FILE = "calibration.json";
const SCORE_EPSILON = 1e-12;
const COSINE_EPSILON = 1e-7;

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
   * @param {ort.Tensor} prepared `(await prepare(vectors)).second` (reuse it too); `.first` when `queryFirst` is false
   * @param {boolean} [queryFirst] false: score `(row i, query)` instead (the head is not symmetric)
   */
  async scoreRows(query, vectors, prepared, queryFirst = true) {
    const queryTensor = new ort.Tensor("float32", query, [1, this.hiddenSize]);
    const blocks = await this.prepare(queryTensor);
    /** @type {Record<string, ort.Tensor>} */
    const feeds = { query: queryTensor, query_block: queryFirst ? blocks.first : blocks.second, prepared, vectors };
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

/** @param {number} p */
function logit(p) {
  const q = Math.min(Math.max(p, SCORE_EPSILON), 1 - SCORE_EPSILON);
  return Math.log(q) - Math.log1p(-q);
}

/** @param {number} z */
const sigmoid = (z) => 0.5 * (1 + Math.tanh(0.5 * z));

/**
 * @typedef {{slope: number, closeness_slope: number, intercept: number, valid_prior: number, prior: number}} Calibration
 */

/**
 * The `calibration.json` that `lit-compressor calibrate` wrote into a model folder, or null when there is none.
 * @param {string} folder
 * @returns {Promise<Calibration | null>}
 */
export async function readCalibration(folder) {
  const file = path.join(folder, CALIBRATION_FILE);
  if (!(await exists(file))) return null;
  const data = JSON.parse(await readFile(file, "utf8"));
  if (data.format !== 1) throw new Error(`${file}: not a calibration this runtime reads. Run \`lit-compressor calibrate\` again.`);
  return data;
}

/**
 * Python's `Calibration.probability`: the chance that a pair with this `score` (mean of both orders) and vectors'
 * `cosine` is a clone in a project where a share `prior` (default: the calibration's) of the function pairs are.
 * @param {Calibration} calibration
 * @param {number} score
 * @param {number} cosine
 * @param {number} [prior]
 */
export function calibratedProbability(calibration, score, cosine, prior) {
  const shift = logit(prior ?? calibration.prior) - logit(calibration.valid_prior);
  const closeness = -Math.log(Math.max(1 - cosine, COSINE_EPSILON));
  return sigmoid(calibration.slope * logit(score) + calibration.closeness_slope * closeness + calibration.intercept + shift);
}

/**
 * Python's `clone_classes`: the connected components of `pairs`, largest first (then the best probability or score,
 * then the first member's place).
 * @param {ClonePair[]} pairs
 */
export function cloneClasses(pairs) {
  /** @param {IndexedFunction} e */
  const key = (e) => `${e.path}\0${e.start_line}\0${e.name}`;
  /** @type {Map<string, string>} */
  const parent = new Map();
  /** @type {Map<string, IndexedFunction>} */
  const entryOf = new Map();
  /** @param {string} k */
  const root = (k) => {
    if (!parent.has(k)) parent.set(k, k);
    while (parent.get(k) !== k) {
      const up = /** @type {string} */ (parent.get(/** @type {string} */ (parent.get(k))));
      parent.set(k, up);
      k = up;
    }
    return k;
  };
  for (const pair of pairs) {
    entryOf.set(key(pair.first), pair.first);
    entryOf.set(key(pair.second), pair.second);
    const [a, b] = [root(key(pair.first)), root(key(pair.second))];
    if (a !== b) {
      const [low, high] = comparePlaces(/** @type {IndexedFunction} */ (entryOf.get(a)), /** @type {IndexedFunction} */ (entryOf.get(b))) <= 0 ? [a, b] : [b, a];
      parent.set(high, low);
    }
  }
  /** @type {Map<string, ClonePair[]>} */
  const groups = new Map();
  for (const pair of pairs) {
    const r = root(key(pair.first));
    if (!groups.has(r)) groups.set(r, []);
    /** @type {ClonePair[]} */ (groups.get(r)).push(pair);
  }
  const classes = [...groups.values()].map((group) => {
    /** @type {Map<string, IndexedFunction>} */
    const members = new Map();
    for (const pair of group) for (const e of [pair.first, pair.second]) members.set(key(e), e);
    const best = group.reduce((b, p) => (rankOf(p) > rankOf(b) ? p : b));
    return { members: [...members.values()].sort(comparePlaces), pairs: group.length, score: best.score,
      probability: best.probability };
  });
  classes.sort((a, b) => b.members.length - a.members.length || rankOf(b) - rankOf(a) || comparePlaces(a.members[0], b.members[0]));
  return classes;
}

/** @param {{score: number, probability: number | null}} x */
const rankOf = (x) => (x.probability === null ? x.score : x.probability);

/** @param {string} a @param {string} b */
const compareText = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Python's `(path, start_line, name)` order. @param {IndexedFunction} a @param {IndexedFunction} b */
function comparePlaces(a, b) {
  return compareText(a.path, b.path) || a.start_line - b.start_line || compareText(a.name, b.name);
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
 * @typedef {{first: IndexedFunction, second: IndexedFunction, score: number, scores: [number, number], similarity: number, probability: number | null}} ClonePair
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
    /** @type {number[]} per row: the model's input length (special tokens included, at most the block size) */
    this.tokens = [];
    this.vectors = new Float32Array(0);
    /** @type {Map<string, number>} */
    this.rowOf = new Map();
    this.entryRows = new Int32Array(0);
    this.tensor = new ort.Tensor("float32", this.vectors, [0, model.hiddenSize]);
    /** @type {ort.Tensor} */
    this.prepared = this.tensor;
    /** @type {ort.Tensor} */
    this.preparedFirst = this.tensor;
  }

  get size() {
    return this.entries.length;
  }

  /** Recompute the lookups and the head's per-vector part after the rows or entries changed. */
  async refresh() {
    this.rowOf = new Map(this.hashes.map((h, i) => [h, i]));
    this.entryRows = Int32Array.from(this.entries.map((e) => /** @type {number} */ (this.rowOf.get(e.hash))));
    this.tensor = new ort.Tensor("float32", this.vectors, [this.hashes.length, this.model.hiddenSize]);
    const blocks = await this.model.prepare(this.tensor);
    this.prepared = blocks.second;
    this.preparedFirst = blocks.first;
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
    this.tokens = [...old.map((h) => this.tokens[/** @type {number} */ (this.rowOf.get(h))]),
      ...fresh.map((h) => this.model.tokenizer.encode(/** @type {string} */ (codeOf.get(h))).length)];
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
   * Python's `CloneIndex.pairs`: pairs of indexed functions of at least `minTokens` model tokens whose clone
   * probability (`calibration`'s at `prior`, else the mean of the head's two orders) is at least `threshold`; with
   * `perFunction`, only the pairs among the `perFunction` best of one of their two functions (highest first, of equal
   * ones the earlier row). Sorted as Python sorts them.
   * @param {{threshold?: number, perFunction?: number | null, minTokens?: number, calibration?: Calibration | null,
   *   prior?: number}} [options]
   * @returns {Promise<ClonePair[]>}
   */
  async pairs(options = {}) {
    const { threshold = 0.5, perFunction = 10, minTokens = 0, calibration = null, prior } = options;
    const H = this.model.hiddenSize;
    const keep = this.hashes.map((_, row) => row).filter((row) => this.tokens[row] >= minTokens);
    const rows = keep.length;
    const vectors = new Float32Array(rows * H);
    keep.forEach((row, k) => vectors.set(this.vectors.subarray(row * H, (row + 1) * H), k * H));
    const norms = keep.map((_, k) => Math.hypot(...vectors.subarray(k * H, (k + 1) * H)) || 1e-30);
    const all = new ort.Tensor("float32", vectors, [rows, H]);
    const blocks = rows ? await this.model.prepare(all) : { first: all, second: all };
    const [first, second] = [/** @type {Float32Array} */ (blocks.first.data), /** @type {Float32Array} */ (blocks.second.data)];
    /** @type {Map<number, IndexedFunction[]>} */
    const members = new Map();
    const compact = new Map(keep.map((row, k) => [row, k]));
    this.entries.forEach((entry, e) => {
      const k = compact.get(this.entryRows[e]);
      if (k === undefined) return;
      if (!members.has(k)) members.set(k, []);
      /** @type {IndexedFunction[]} */ (members.get(k)).push(entry);
    });
    /** @param {number} score @param {number} cosine */
    const rank = (score, cosine) => (calibration ? calibratedProbability(calibration, score, cosine, prior) : score);
    /** @param {IndexedFunction} a @param {IndexedFunction} b @param {number} forward @param {number} backward @param {number} cosine */
    const pair = (a, b, forward, backward, cosine) => {
      const score = (forward + backward) / 2;
      return /** @type {ClonePair} */ ({ first: a, second: b, score, scores: [forward, backward], similarity: cosine,
        probability: calibration ? rank(score, cosine) : null });
    };
    /** @type {ClonePair[]} */
    const found = [];
    /** @type {{i: number, j: number, forward: number, backward: number, cosine: number, rank: number}[]} */
    const hits = [];
    for (let i = 0; i < rows; i++) {
      const query = vectors.subarray(i * H, (i + 1) * H);
      const same = members.get(i) ?? [];
      if (same.length > 1) {
        const self = new ort.Tensor("float32", Float32Array.from(query), [1, H]);
        const score = (await this.model.scoreRows(query, self, (await this.model.prepare(self)).second))[0];
        if (rank(score, 1) >= threshold) {
          same.forEach((a, k) => same.slice(k + 1).forEach((b) => found.push(pair(a, b, score, score, 1))));
        }
      }
      if (i + 1 === rows) continue;
      const rest = new ort.Tensor("float32", vectors.slice((i + 1) * H), [rows - i - 1, H]);
      const forward = await this.model.scoreRows(query, rest, new ort.Tensor("float32", second.slice((i + 1) * H), [rows - i - 1, H]), true);
      const backward = await this.model.scoreRows(query, rest, new ort.Tensor("float32", first.slice((i + 1) * H), [rows - i - 1, H]), false);
      for (let j = i + 1; j < rows; j++) {
        let dot = 0;
        for (let h = 0; h < H; h++) dot += vectors[i * H + h] * vectors[j * H + h];
        const cosine = dot / (norms[i] * norms[j]);
        const f = forward[j - i - 1], b = backward[j - i - 1];
        const r = rank((f + b) / 2, cosine);
        if (r >= threshold) hits.push({ i, j, forward: f, backward: b, cosine, rank: r });
      }
    }
    let chosen = hits;
    if (perFunction !== null) {
      /** @type {Map<number, {partner: number, rank: number, hit: number}[]>} */
      const lists = new Map();
      hits.forEach((hit, h) => {
        for (const [row, partner] of [[hit.i, hit.j], [hit.j, hit.i]]) {
          if (!lists.has(row)) lists.set(row, []);
          /** @type {{partner: number, rank: number, hit: number}[]} */ (lists.get(row)).push({ partner, rank: hit.rank, hit: h });
        }
      });
      const kept = new Set();
      for (const list of lists.values()) {
        list.sort((a, b) => b.rank - a.rank || a.partner - b.partner);
        list.slice(0, perFunction).forEach((x) => kept.add(x.hit));
      }
      chosen = hits.filter((_, h) => kept.has(h));
    }
    for (const hit of chosen) {
      for (const a of members.get(hit.i) ?? []) for (const b of members.get(hit.j) ?? []) found.push(pair(a, b, hit.forward, hit.backward, hit.cosine));
    }
    found.sort((a, b) => rankOf(b) - rankOf(a) || compareText(a.first.path, b.first.path) || a.first.start_line - b.first.start_line
      || compareText(a.second.path, b.second.path) || a.second.start_line - b.second.start_line);
    return found;
  }

  /**
   * Write `index.json` and `vectors.f32` (each replaced atomically).
   * @param {string} folder
   */
  async save(folder) {
    await mkdir(folder, { recursive: true });
    const meta = { format: INDEX_FORMAT, fingerprint: await this.model.fingerprint(), precision: this.model.precision,
      hidden_size: this.model.hiddenSize, rows: this.hashes.length, hashes: this.hashes, tokens: this.tokens,
      entries: this.entries };
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
    if (!Array.isArray(meta.tokens) || meta.tokens.length !== meta.hashes.length) {
      throw new Error(`${metaFile}: the token counts do not match the rows. Delete the folder to rebuild it.`);
    }
    const index = new CloneIndex(model);
    index.hashes = meta.hashes;
    index.tokens = meta.tokens;
    index.vectors = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    index.entries = meta.entries;
    await index.refresh();
    return index;
  }
}

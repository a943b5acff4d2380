// Types of lit-compressor's Node.js runtime (src/index.js).
import type { InferenceSession, Tensor } from "onnxruntime-node";

/** `" ".join(code.split())` of Python: every run of Python whitespace becomes one space. */
export function normalizeWhitespace(code: string): string;

/** Code -> model input ids, exactly as Python's `CodeEncoder.encode`. */
export class CodeTokenizer {
  constructor(tokenizerJson: object, tokenizerConfig: object, blockSize: number);
  static fromFolder(folder: string, blockSize: number): Promise<CodeTokenizer>;
  readonly blockSize: number;
  readonly padId: number;
  /** Normalised, truncated to `blockSize` tokens (special tokens included), wrapped in special tokens. */
  encode(code: string): number[];
}

/** The `lit_compressor` block of a model folder's config.json. */
export interface ModelConfig {
  config: Record<string, unknown>;
  numInputs: number;
  blockSize: number;
  pooling: string;
  pairHead: string;
  positiveLabel: number;
  hiddenSize: number;
}
export function readModelConfig(folder: string): Promise<ModelConfig>;
export function softmax(logits: ArrayLike<number>): number[];

export interface Prediction {
  /** The most probable label. */
  label: number;
  /** The probability of `label`. */
  probability: number;
  /** The probability of every label. */
  probabilities: number[];
}

export interface ClassifierOptions {
  /** "onnx-int8" (a shipped folder's `model.int8.onnx` or `onnx/model_quantized.onnx`: the default when present) or
   * "onnx" (a full export's `model.optimized.onnx`/`model.onnx`/`onnx/model.onnx`). */
  backend?: "onnx" | "onnx-int8";
  /** Intra-op CPU threads (ONNX Runtime's default: all cores). */
  threads?: number;
}

/** A shipped student: `predict(code)` (one function) or `predict(codeA, codeB)` (a pair). `folder`: the shipped
 * folder (`OUTPUT/shipped`), a full export (`OUTPUT/full`), or the export folder `OUTPUT` itself. */
export class TinyClassifier {
  static fromPretrained(folder: string, options?: ClassifierOptions): Promise<TinyClassifier>;
  readonly numInputs: number;
  readonly blockSize: number;
  readonly positiveLabel: number;
  /** The ONNX file this classifier runs. */
  readonly file: string;
  /** Whether that graph reads `[B, L]` (one function a row: the transformers.js layout) rather than `[B, n, L]`. */
  readonly perFunction: boolean;
  tokenIds(code: string): number[];
  logits(rows: string[][]): Promise<number[][]>;
  predict(...codes: string[]): Promise<Prediction>;
  predictBatch(rows: (string | string[])[], batchSize?: number): Promise<Prediction[]>;
}

export interface CloneModelOptions {
  /** "int8" (a shipped folder's `encoder.int8.onnx`) or "fp32" (a full export's: scores equal the pair model's);
   * default: the folder's own. */
  precision?: "fp32" | "int8";
  threads?: number;
}

/** sha256 of the whitespace-normalised function: the index's content key. */
export function codeHash(code: string): string;

/** The encoder-only graph and the pair head of an exported student. */
export class CloneModel {
  static fromPretrained(folder: string, options?: CloneModelOptions): Promise<CloneModel>;
  readonly hiddenSize: number;
  readonly numInputs: number;
  readonly precision: string;
  /** `head_prepare.onnx` and `head.onnx` (an error for models without a pair head). */
  readonly head: { prepare: InferenceSession; score: InferenceSession };
  /** The function's pooled `[H]` vector. */
  embed(code: string): Promise<Float32Array>;
  /** The head's blocks of every row of a float32 `[rows, H]` tensor, as first and as second function of a
   * pair (compute them once per index). */
  prepare(vectors: Tensor): Promise<{ first: Tensor; second: Tensor }>;
  /** Clone probability of `(query, row i)` for every row; `prepared` is `(await prepare(vectors)).second`. */
  scoreRows(query: Float32Array, vectors: Tensor, prepared: Tensor, queryFirst?: boolean): Promise<Float64Array>;
  pairProbability(codeA: string, codeB: string): Promise<number>;
  fingerprint(): Promise<string>;
}

/** A function of a project, as extracted for indexing. */
export interface SourceFunction {
  path: string;
  name: string;
  language: string;
  start_line: number;
  end_line: number;
  code: string;
}

/** An indexed function (the on-disk record of `index.json`). */
export interface IndexedFunction {
  path: string;
  name: string;
  language: string;
  start_line: number;
  end_line: number;
  hash: string;
}

export interface Match {
  function: IndexedFunction;
  /** The pair model's clone probability of (query, function). */
  score: number;
}

export interface UpdateStats {
  functions: number;
  embedded: number;
  reused: number;
  dropped: number;
}

/** `calibration.json` (`lit-compressor calibrate`): Platt scaling of the pair score and the vectors' cosine. */
export interface Calibration {
  slope: number;
  closeness_slope: number;
  intercept: number;
  valid_prior: number;
  prior: number;
}

export interface ClonePair {
  first: IndexedFunction;
  second: IndexedFunction;
  /** Mean of the two orders' clone probabilities. */
  score: number;
  scores: [number, number];
  /** Cosine of the two functions' vectors. */
  similarity: number;
  /** Calibrated: the chance it is a clone at the project's base rate (null without a calibration). */
  probability: number | null;
}

export interface CloneClass {
  members: IndexedFunction[];
  pairs: number;
  score: number;
  probability: number | null;
}

export interface PairOptions {
  threshold?: number;
  perFunction?: number | null;
  minTokens?: number;
  calibration?: Calibration | null;
  prior?: number;
}

export function readCalibration(folder: string): Promise<Calibration | null>;
export function calibratedProbability(calibration: Calibration, score: number, cosine: number, prior?: number): number;
export function cloneClasses(pairs: ClonePair[]): CloneClass[];

/** Vectors of many functions; `search` scores a query against all of them with the pair head. */
export class CloneIndex {
  constructor(model: CloneModel);
  readonly size: number;
  entries: IndexedFunction[];
  hashes: string[];
  /** Per row: the model's input length (special tokens included, at most the block size). */
  tokens: number[];
  vectors: Float32Array;
  pairs(options?: PairOptions): Promise<ClonePair[]>;
  update(functions: SourceFunction[], onProgress?: (done: number, total: number) => void): Promise<UpdateStats>;
  scores(vector: Float32Array): Promise<Float64Array>;
  search(code: string, topK?: number, threshold?: number): Promise<Match[]>;
  searchVector(vector: Float32Array, topK?: number, threshold?: number): Promise<Match[]>;
  save(folder: string): Promise<string>;
  static load(folder: string, model: CloneModel): Promise<CloneIndex>;
}

/** Model shapes the synthetic checkpoint generator knows: the published gpt-oss sizes and a tiny one. */
import type { ModelConfigInfo } from "../addon.ts";

/** The shape part of a model's config (what a synthetic checkpoint is generated from). */
export type ModelShape = Pick<
  ModelConfigInfo,
  | "numLayers"
  | "hidden"
  | "intermediate"
  | "numExperts"
  | "expertsPerToken"
  | "numQHeads"
  | "numKvHeads"
  | "headDim"
  | "vocab"
  | "slidingWindow"
>;

export const SHAPES = {
  /** Small enough for every test and for UP's default model; real vocabulary so the tokenizer fits. */
  tiny: {
    numLayers: 2,
    hidden: 64,
    intermediate: 64,
    numExperts: 4,
    expertsPerToken: 2,
    numQHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    vocab: 201088,
    slidingWindow: 128,
  },
  "20b": {
    numLayers: 24,
    hidden: 2880,
    intermediate: 2880,
    numExperts: 32,
    expertsPerToken: 4,
    numQHeads: 64,
    numKvHeads: 8,
    headDim: 64,
    vocab: 201088,
    slidingWindow: 128,
  },
  "120b": {
    numLayers: 36,
    hidden: 2880,
    intermediate: 2880,
    numExperts: 128,
    expertsPerToken: 4,
    numQHeads: 64,
    numKvHeads: 8,
    headDim: 64,
    vocab: 201088,
    slidingWindow: 128,
  },
} as const satisfies Record<string, ModelShape>;

export type ShapeName = keyof typeof SHAPES;

export function validateShape(s: ModelShape): void {
  const pos = (k: keyof ModelShape) => {
    if (!Number.isInteger(s[k]) || s[k] <= 0) throw new RangeError(`shape.${k} must be a positive integer, got ${s[k]}`);
  };
  for (const k of Object.keys(s) as Array<keyof ModelShape>) pos(k);
  if (s.hidden % 32 !== 0 || s.intermediate % 32 !== 0)
    throw new RangeError("shape.hidden and shape.intermediate must be multiples of 32 (MXFP4 blocks)");
  if (s.numQHeads % s.numKvHeads !== 0) throw new RangeError("shape.numQHeads must be a multiple of shape.numKvHeads");
  if (s.headDim % 2 !== 0) throw new RangeError("shape.headDim must be even");
  if (s.expertsPerToken > s.numExperts) throw new RangeError("shape.expertsPerToken must be <= shape.numExperts");
}

/** Parameters (elements) of a shape, counting MXFP4 experts as their logical weights. */
export function parameterCount(s: ModelShape): number {
  const q = s.numQHeads * s.headDim;
  const kv = s.numKvHeads * s.headDim;
  const attn = s.hidden * (q + 2 * kv) + q + 2 * kv + q * s.hidden + s.hidden + s.numQHeads + 2 * s.hidden;
  const moe =
    s.numExperts * s.hidden +
    s.numExperts +
    s.numExperts * (2 * s.intermediate * s.hidden + 2 * s.intermediate + s.hidden * s.intermediate + s.hidden);
  return 2 * s.vocab * s.hidden + s.hidden + s.numLayers * (attn + moe);
}

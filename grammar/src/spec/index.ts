/**
 * @expertmesh/grammar/spec — the constraint spec and its checks, for the gateway (which builds specs and
 * answers 400 on unsupported schemas) and the worker (which parses them). No xgrammar here.
 */
export {
  CONSTRAINT_SPEC_VERSION,
  type ConstraintSpec,
  constraintKey,
  type FinalFormat,
  type FunctionToolSpec,
  isUnconstrained,
  MAX_SPEC_BYTES,
  parseConstraintSpec,
  type ToolChoice,
  validateConstraintSpec,
} from "./constraint-spec.ts";
export { HarmonySpecial } from "./harmony-tokens.ts";
export { pointer, resolvePointer } from "./json-pointer.ts";
export { MAX_PATTERN_GROUP_DEPTH, MAX_PATTERN_REPEAT, MAX_SCHEMA_DEPTH, MAX_STRING_LENGTH } from "./schema-limits.ts";
export { assertSchemaSupported, type JsonSchema, SUPPORTED_FORMATS } from "./schema-support.ts";

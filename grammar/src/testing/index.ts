/** @expertmesh/grammar/testing — the seeded random walk and the schemas the tests and bench/grammar share. */
export {
  type DriveOptions,
  type DriveResult,
  drive,
  headerParts,
  type ParsedMessage,
  seededRandom,
  splitMessages,
} from "./driven-generation.ts";
export { TEST_SCHEMAS } from "./schemas.ts";

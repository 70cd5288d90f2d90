/** Test helpers shared by every workspace: real servers, never mocks of them. */
export { killOnExit } from "./children.ts";
export { freePort, type RedisServer, startRedisServer } from "./redis-server.ts";
export { seededRandom } from "./seeded-random.ts";
export { createTestPki, type TestPki } from "./tls.ts";

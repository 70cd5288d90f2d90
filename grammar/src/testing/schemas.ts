/**
 * JSON schemas of different shapes for the driven-generation tests and bench/grammar.ts: nested objects,
 * bounded arrays, enums and const, integers (bounded too) and numbers, optional fields, anyOf, patterns, formats, $ref,
 * tuples, bounded string lengths, nullable types and maps. Only keywords schema-support.ts accepts.
 */
import type { JsonSchema } from "../spec/schema-support.ts";

export const TEST_SCHEMAS: Readonly<Record<string, JsonSchema>> = {
  nested_objects: {
    type: "object",
    properties: {
      user: {
        type: "object",
        properties: {
          name: { type: "string" },
          address: {
            type: "object",
            properties: { city: { type: "string" }, zip: { type: "string", pattern: "^[0-9]{5}$" } },
            required: ["city", "zip"],
          },
        },
        required: ["name", "address"],
      },
    },
    required: ["user"],
  },
  bounded_array: {
    type: "object",
    properties: { scores: { type: "array", items: { type: "integer" }, minItems: 2, maxItems: 4 } },
    required: ["scores"],
  },
  enum_and_const: {
    type: "object",
    properties: {
      color: { enum: ["red", "green", "blue"] },
      kind: { const: "paint" },
      size: { enum: [1, 2, "large", null] },
    },
    required: ["color", "kind", "size"],
  },
  numbers: {
    type: "object",
    properties: { age: { type: "integer" }, temperature: { type: "number" }, ratio: { type: ["number", "null"] } },
    required: ["age", "temperature", "ratio"],
  },
  integer_bounds: {
    type: "object",
    properties: {
      age: { type: "integer", minimum: 0, maximum: 130 },
      percent: { type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 100 },
      offset: { type: "integer", minimum: -1250, maximum: -7 },
      floor: { type: "integer", minimum: -20 },
      ceiling: { type: "integer", maximum: 3 },
    },
    required: ["age", "percent", "offset", "floor", "ceiling"],
  },
  optional_fields: {
    type: "object",
    properties: {
      id: { type: "integer" },
      note: { type: "string" },
      done: { type: "boolean" },
      parent: { type: "null" },
    },
    required: ["id"],
  },
  any_of: {
    type: "object",
    properties: {
      value: {
        anyOf: [{ type: "string" }, { type: "integer" }, { type: "object", properties: { x: { type: "number" } }, required: ["x"] }],
      },
    },
    required: ["value"],
  },
  pattern: {
    type: "object",
    properties: { code: { type: "string", pattern: "^[A-Z]{3}-[0-9]{2,4}$" }, slug: { type: "string", pattern: "^[a-z]+(-[a-z]+)*$" } },
    required: ["code", "slug"],
  },
  formats: {
    type: "object",
    properties: {
      id: { type: "string", format: "uuid" },
      ids: { type: "array", items: { type: "string", format: "uuid" }, maxItems: 2 },
      day: { type: "string", pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" },
    },
    required: ["id", "ids", "day"],
  },
  refs: {
    $defs: { point: { type: "object", properties: { x: { type: "integer" }, y: { type: "integer" } }, required: ["x", "y"] } },
    type: "object",
    properties: { from: { $ref: "#/$defs/point" }, to: { $ref: "#/$defs/point" } },
    required: ["from", "to"],
  },
  tuple: {
    type: "array",
    prefixItems: [{ type: "string" }, { type: "integer" }, { type: "boolean" }],
    items: false,
  },
  string_lengths: {
    type: "object",
    properties: { short: { type: "string", maxLength: 5 }, tag: { type: "string", maxLength: 1 } },
    required: ["short", "tag"],
  },
  nullable_and_map: {
    type: "object",
    properties: {
      title: { type: ["string", "null"] },
      counts: { type: "object", additionalProperties: { type: "integer" } },
    },
    required: ["title", "counts"],
  },
  array_of_objects: {
    type: "object",
    properties: {
      items: {
        type: "array",
        maxItems: 3,
        items: {
          type: "object",
          properties: { sku: { type: "string" }, qty: { type: "integer", minimum: 1 }, tags: { type: "array", items: { type: "string" } } },
          required: ["sku", "qty"],
        },
      },
    },
    required: ["items"],
  },
};

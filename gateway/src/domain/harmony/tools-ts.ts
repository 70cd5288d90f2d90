/**
 * The tools section of system/developer messages (spec §6.6): namespaces sorted by name, each tool's
 * JSON Schema rendered as a TypeScript type exactly as Harmony does (comments, defaults, oneOf, enums).
 * Property order is the schema's own insertion order.
 */
import type { JsonSchema, ToolNamespace } from "./types.ts";

function lines(text: string): string[] {
  const out = text.replace(/\r\n/g, "\n").split("\n");
  if (out.length > 1 && out[out.length - 1] === "") out.pop();
  return out;
}

function defaultComment(schema: JsonSchema): string | null {
  if (!("default" in schema)) return null;
  const d = schema.default;
  if (typeof d === "string")
    return Array.isArray(schema.enum) && schema.enum.length > 0 ? `default: ${d}` : `default: ${JSON.stringify(d)}`;
  return `default: ${JSON.stringify(d)}`;
}

function variantComment(v: JsonSchema, skipDescription: string | null): string {
  const parts: string[] = [];
  if (typeof v.description === "string" && v.description !== skipDescription) parts.push(v.description);
  const d = defaultComment(v);
  if (d) parts.push(d);
  return parts.length ? ` // ${parts.join(" ")}` : "";
}

/**
 * Collects the rendering in one array, so a schema costs time linear in its size: a nested type is never
 * rendered into a string that its parent then copies. `nulls` counts pieces mentioning null, so a
 * parent learns whether a child's text does without scanning it again.
 */
class Writer {
  readonly parts: string[] = [];
  nulls = 0;
  push(piece: string): void {
    this.parts.push(piece);
    if (piece.includes("null")) this.nulls++;
  }
}

/** A subschema followed by " | null" when it is nullable and its text does not already say null. */
function emitNullable(v: JsonSchema, indent: string, w: Writer): void {
  const before = w.nulls;
  emit(v, indent, w);
  if (v.nullable === true && w.nulls === before) w.push(" | null");
}

function emitProperty(key: string, value: JsonSchema, opt: string, indent: string, w: Writer): void {
  if (typeof value.title === "string") w.push(`${indent}// ${value.title}\n${indent}//\n`);
  if (!Array.isArray(value.oneOf) && typeof value.description === "string") w.push(`${indent}// ${value.description}\n`);
  if (Array.isArray(value.examples) && value.examples.length > 0) {
    w.push(`${indent}// Examples:\n`);
    for (const ex of value.examples) if (typeof ex === "string") w.push(`${indent}// - "${ex}"\n`);
  }
  if (!Array.isArray(value.oneOf)) {
    const d = defaultComment(value);
    w.push(`${indent}${key}${opt}: `);
    emitNullable(value, `${indent}    `, w);
    w.push(`,${d ? ` // ${d}` : ""}\n`);
    return;
  }
  const variants = value.oneOf as JsonSchema[];
  const desc = typeof value.description === "string" ? value.description : null;
  const firstDesc = typeof variants[0]?.description === "string" ? variants[0].description : null;
  if (desc !== null && desc !== firstDesc) w.push(`${indent}// ${desc}\n`);
  const d = defaultComment(value);
  if (d) w.push(`${indent}// ${d}\n`);
  w.push(`${indent}${key}${opt}:\n`);
  variants.forEach((v, i) => {
    const skip = i === 0 && desc !== null ? v.description : desc;
    w.push(`${indent} | `);
    emitNullable(v, `${indent}   `, w);
    w.push(`${variantComment(v, skip ?? null)}\n`);
  });
  w.push(`${indent},\n`);
}

function emitObject(schema: JsonSchema, indent: string, w: Writer): void {
  if (typeof schema.description === "string") w.push(`${indent}// ${schema.description}\n`);
  w.push("{\n");
  const required = new Set<string>(Array.isArray(schema.required) ? schema.required : []);
  for (const [key, value] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>))
    emitProperty(key, value, required.has(key) ? "" : "?", indent, w);
  w.push(`${indent}}`);
}

/** The text of a type with no subschemas. */
function leafType(schema: JsonSchema): string {
  if (Array.isArray(schema.type)) return schema.type.map((t: string) => (t === "integer" ? "number" : t)).join(" | ");
  switch (schema.type) {
    case "string":
      return Array.isArray(schema.enum) && schema.enum.length > 0
        ? schema.enum.map((e: unknown) => JSON.stringify(e)).join(" | ")
        : "string";
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "array":
      return "Array<any>";
    default:
      return "any";
  }
}

function emit(schema: JsonSchema, indent: string, w: Writer): void {
  if (Array.isArray(schema.oneOf)) {
    for (const v of schema.oneOf as JsonSchema[]) {
      w.push(`\n${indent} | `);
      emitNullable(v, `${indent}   `, w);
      w.push(variantComment(v, null));
    }
  } else if (schema.type === "object") {
    emitObject(schema, indent, w);
  } else if (schema.type === "array" && schema.items) {
    emit(schema.items, indent, w);
    w.push("[]");
  } else {
    w.push(leafType(schema));
  }
}

export function schemaToTs(schema: JsonSchema, indent: string): string {
  const w = new Writer();
  emit(schema, indent, w);
  return w.parts.join("");
}

function namespaceBlock(ns: ToolNamespace): string {
  const out: string[] = [`## ${ns.name}\n`];
  if (ns.description) {
    for (const l of lines(ns.description)) out.push(ns.tools.length > 0 ? `// ${l}` : l);
  }
  if (ns.tools.length > 0) {
    out.push(`namespace ${ns.name} {\n`);
    for (const tool of ns.tools) {
      for (const l of lines(tool.description)) out.push(`// ${l}`);
      out.push(
        tool.parameters ? `type ${tool.name} = (_: ${schemaToTs(tool.parameters, "")}) => any;\n` : `type ${tool.name} = () => any;\n`,
      );
    }
    out.push(`} // namespace ${ns.name}`);
  }
  return out.join("\n");
}

export function toolsSection(namespaces: ToolNamespace[]): string {
  const sorted = [...namespaces].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return ["# Tools", ...sorted.map(namespaceBlock)].join("\n\n");
}

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

function nullable(v: JsonSchema, text: string): string {
  return v.nullable === true && !text.includes("null") ? `${text} | null` : text;
}

export function schemaToTs(schema: JsonSchema, indent: string): string {
  if (Array.isArray(schema.oneOf)) {
    return schema.oneOf
      .map((v: JsonSchema) => `\n${indent} | ${nullable(v, schemaToTs(v, `${indent}   `))}${variantComment(v, null)}`)
      .join("");
  }
  if (Array.isArray(schema.type)) return schema.type.map((t: string) => (t === "integer" ? "number" : t)).join(" | ");
  switch (schema.type) {
    case "object": {
      let out = "";
      if (typeof schema.description === "string") out += `${indent}// ${schema.description}\n`;
      out += "{\n";
      const required = new Set<string>(Array.isArray(schema.required) ? schema.required : []);
      for (const [key, value] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) {
        const opt = required.has(key) ? "" : "?";
        if (typeof value.title === "string") out += `${indent}// ${value.title}\n${indent}//\n`;
        if (!Array.isArray(value.oneOf) && typeof value.description === "string") out += `${indent}// ${value.description}\n`;
        if (Array.isArray(value.examples) && value.examples.length > 0) {
          out += `${indent}// Examples:\n`;
          for (const ex of value.examples) if (typeof ex === "string") out += `${indent}// - "${ex}"\n`;
        }
        if (Array.isArray(value.oneOf)) {
          const variants = value.oneOf as JsonSchema[];
          const desc = typeof value.description === "string" ? value.description : null;
          const firstDesc = typeof variants[0]?.description === "string" ? variants[0].description : null;
          if (desc !== null && desc !== firstDesc) out += `${indent}// ${desc}\n`;
          const d = defaultComment(value);
          if (d) out += `${indent}// ${d}\n`;
          out += `${indent}${key}${opt}:\n`;
          variants.forEach((v, i) => {
            const skip = i === 0 && desc !== null ? v.description : desc;
            out += `${indent} | ${nullable(v, schemaToTs(v, `${indent}   `))}${variantComment(v, skip ?? null)}\n`;
          });
          out += `${indent},\n`;
        } else {
          const d = defaultComment(value);
          out += `${indent}${key}${opt}: ${nullable(value, schemaToTs(value, `${indent}    `))},${d ? ` // ${d}` : ""}\n`;
        }
      }
      return `${out}${indent}}`;
    }
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
      return schema.items ? `${schemaToTs(schema.items, indent)}[]` : "Array<any>";
    default:
      return "any";
  }
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

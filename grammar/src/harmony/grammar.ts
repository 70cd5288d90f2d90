/**
 * The Harmony grammar of a constraint spec, as xgrammar EBNF. The completion starts right after the
 * prompt's `<|start|>assistant` (spec §6.2), so the grammar begins at a header:
 *
 *   (free message, <|end|><|start|>assistant)*  then the last message
 *   free message  = <|channel|>analysis|commentary <|message|> free text        (reasoning, preambles;
 *                   only analysis before a json_object / json_schema final, whose body is the whole answer)
 *   last message  = <|channel|>final <|message|> body <|return|>
 *                 | a call: <|channel|>analysis|commentary to=functions.NAME[ ]<|constrain|>json<|message|> args <|call|>
 *                   (or with the recipient first: " to=functions.NAME<|channel|>commentary …", spec §6.8)
 *
 * tool_choice picks which last messages exist; response_format picks the final body; a strict tool's
 * arguments follow its schema, a forced call's any JSON object, otherwise they are free text (the guard
 * shapes only headers). JSON rules come from xgrammar's own schema converter, embedded with a prefix.
 */
import type { ConstraintSpec, FunctionToolSpec } from "../spec/constraint-spec.ts";
import type { JsonSchema } from "../spec/schema-support.ts";
import { prefixRules } from "./ebnf-embed.ts";
import { extractIntegerRanges, restoreIntegerRanges } from "./integer-range.ts";
import { markerLiteral as m } from "./markers.ts";

/**
 * xgrammar's EBNF for a JSON schema, root rule "root". `exact`: no properties beyond those declared
 * (strict schemas); otherwise the schema is a floor (any JSON object for `{"type":"object"}`).
 */
export type JsonGrammarSource = (schema: JsonSchema, exact: boolean) => Promise<string>;

const ANY_OBJECT: JsonSchema = { type: "object" };

interface Part {
  /** The rule text a position uses: a rule name. */
  readonly ref: string;
  /** Rules to add to the grammar for it. */
  readonly rules: string;
}

const FREE: Part = { ref: "text", rules: "" };

async function jsonPart(json: JsonGrammarSource, schema: JsonSchema, exact: boolean, prefix: string): Promise<Part> {
  const extracted = extractIntegerRanges(schema);
  const ebnf = restoreIntegerRanges(await json(extracted.schema, exact), extracted.ranges);
  return { ref: `${prefix}root`, rules: prefixRules(ebnf, prefix) };
}

function forcesCall(spec: ConstraintSpec): boolean {
  return spec.toolChoice.kind === "required" || spec.toolChoice.kind === "function";
}

/** The tools the model may call under this spec's tool_choice. */
function callableTools(spec: ConstraintSpec): readonly FunctionToolSpec[] {
  const choice = spec.toolChoice;
  if (choice.kind === "none") return [];
  if (choice.kind === "function") return spec.tools.filter((t) => t.name === choice.name);
  return spec.tools;
}

async function argumentsPart(spec: ConstraintSpec, tool: FunctionToolSpec, i: number, json: JsonGrammarSource): Promise<Part> {
  if (tool.strict) return jsonPart(json, tool.parameters, true, `t${i}_`);
  return forcesCall(spec) ? jsonPart(json, ANY_OBJECT, false, `t${i}_`) : FREE;
}

async function finalPart(spec: ConstraintSpec, json: JsonGrammarSource): Promise<Part> {
  const format = spec.finalFormat;
  if (format.kind === "json_schema") return jsonPart(json, format.schema, true, "f_");
  if (format.kind === "json_object") return jsonPart(json, ANY_OBJECT, false, "f_");
  return FREE;
}

async function callRules(spec: ConstraintSpec, json: JsonGrammarSource): Promise<{ alternatives: string[]; rules: string[] }> {
  const alternatives: string[] = [];
  const rules: string[] = [];
  for (const [i, tool] of callableTools(spec).entries()) {
    const args = await argumentsPart(spec, tool, i, json);
    const recipient = `" to=functions.${tool.name}"`;
    const channel = `${m("channel")} call_channel`;
    rules.push(
      `call_${i} ::= ((${channel} ${recipient}) | (${recipient} ${channel})) " "? ${m("constrain")} "json" ${m("message")} ${args.ref} ${m("call")}`,
      args.rules,
    );
    alternatives.push(`call_${i}`);
  }
  return { alternatives, rules };
}

/**
 * Which part of a completion the grammar covers: all of it, or only the answer that follows a reasoning
 * budget's cut (after the forced `<|end|><|start|>assistant`): no more free messages, and the answer is
 * the final message, or a call when tool_choice forces one.
 */
export type GrammarVariant = "completion" | "answer";

/** The EBNF (root rule "root") for a spec that constrains something (see isUnconstrained). */
export async function harmonyGrammar(
  spec: ConstraintSpec,
  json: JsonGrammarSource,
  variant: GrammarVariant = "completion",
): Promise<string> {
  // After a budget's cut the answer is the final message unless a call is forced.
  const callable: ConstraintSpec = variant === "answer" && !forcesCall(spec) ? { ...spec, toolChoice: { kind: "none" } } : spec;
  const calls = await callRules(callable, json);
  const final = await finalPart(spec, json);
  // Messages before the last one: none after a budget's cut. A formatted final answer is the whole
  // visible answer, so only reasoning may come before it (a commentary preamble would join the content);
  // commentary preambles stay free before a call.
  const before = (message: string) => (variant === "completion" ? `(${message} ${m("end")} ${m("start")} "assistant")* ` : "");
  const finalPrelude = spec.finalFormat.kind === "text" ? "free_message" : "analysis_message";
  const last: string[] = [];
  if (calls.alternatives.length > 0) last.push(`${before("free_message")}(${calls.alternatives.join(" | ")})`);
  if (!forcesCall(spec)) last.push(`${before(finalPrelude)}final_message`);
  const lines = [
    `root ::= ${last.map((l) => `(${l})`).join(" | ")}`,
    `analysis_message ::= ${m("channel")} "analysis" ${m("message")} text`,
    `free_message ::= ${m("channel")} ("analysis" | "commentary") ${m("message")} text`,
    `final_message ::= ${m("channel")} "final" ${m("message")} ${final.ref} ${m("return")}`,
    `call_channel ::= "analysis" | "commentary"`,
    String.raw`text ::= [^\x1f]*`,
    ...calls.rules,
    final.rules,
  ];
  return lines.filter((l) => l.length > 0).join("\n");
}

/**
 * A request's `input` as the items GET /v1/responses/{id}/input_items lists: OpenAI's item objects, each
 * with an id (the client's own when it sent one, as when it passes back a previous output item), in input
 * order; and one page of them. Only this response's input: earlier turns of a previous_response_id chain
 * are listed under their own responses. Instructions are not items (they are the response's field).
 */
import type { InputItem } from "./input.ts";

export type InputItemObject = Record<string, unknown> & { id: string; type: string };

type Part = { type: string; text?: string; annotations?: unknown[] };

const ID_PREFIX: Record<string, string> = { message: "msg", function_call: "fc", function_call_output: "fco", reasoning: "rs" };

/** Message content as OpenAI lists it: parts, input_text for the caller's roles, output_text for the assistant's. */
function contentParts(role: string, content: string | Part[]): Part[] {
  if (typeof content !== "string") return content;
  return role === "assistant" ? [{ type: "output_text", text: content, annotations: [] }] : [{ type: "input_text", text: content }];
}

export function inputItemObjects(input: string | InputItem[], newId: (prefix: string) => string): InputItemObject[] {
  const items: InputItem[] = typeof input === "string" ? [{ type: "message", role: "user", content: input }] : input;
  return items.map((item) => {
    const type = item.type ?? "message";
    const id = typeof item.id === "string" && item.id ? item.id : newId(ID_PREFIX[type] ?? "item");
    const object: InputItemObject = { ...item, id, type, status: "completed" };
    if (type === "message") {
      const m = item as Extract<InputItem, { role: string }>;
      object.content = contentParts(m.role, m.content);
    }
    return object;
  });
}

export interface ItemPageQuery {
  limit: number;
  order: "asc" | "desc";
  /** An item id: the page starts after it (in `order`). */
  after?: string;
}

/** One page of items stored in input order; null when `after` names no item of this list. */
export function itemPage(items: readonly InputItemObject[], q: ItemPageQuery): { data: InputItemObject[]; has_more: boolean } | null {
  const ordered = q.order === "asc" ? items : items.toReversed();
  let start = 0;
  if (q.after !== undefined) {
    start = ordered.findIndex((i) => i.id === q.after) + 1;
    if (start === 0) return null;
  }
  const data = ordered.slice(start, start + q.limit);
  return { data, has_more: start + q.limit < ordered.length };
}

/** Input items as GET /v1/responses/{id}/input_items lists them: ids (the client's kept), content parts, pages. */
import { describe, expect, it } from "vitest";
import { inputItemObjects, itemPage } from "./input-items.ts";

let n = 0;
const newId = (prefix: string) => `${prefix}_${++n}`;

describe("inputItemObjects", () => {
  it("gives every item an id by its type, keeps the client's own, and lists message text as parts", () => {
    const items = inputItemObjects(
      [
        { type: "function_call", call_id: "call_1", name: "get_weather", arguments: "{}" },
        { type: "function_call_output", call_id: "call_1", output: '{"sky":"clear"}' },
        { type: "reasoning", summary: [], content: [{ type: "reasoning_text", text: "hm" }] },
        { type: "message", role: "assistant", content: "noted", id: "msg_client" },
      ],
      newId,
    );
    expect(items).toMatchObject([
      { id: expect.stringMatching(/^fc_/), type: "function_call", call_id: "call_1", name: "get_weather", status: "completed" },
      { id: expect.stringMatching(/^fco_/), type: "function_call_output", call_id: "call_1", output: '{"sky":"clear"}' },
      { id: expect.stringMatching(/^rs_/), type: "reasoning", content: [{ type: "reasoning_text", text: "hm" }] },
      { id: "msg_client", type: "message", role: "assistant", content: [{ type: "output_text", text: "noted", annotations: [] }] },
    ]);
    expect(inputItemObjects("hi", newId)).toMatchObject([
      { id: expect.stringMatching(/^msg_/), type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] },
    ]);
  });
});

describe("itemPage", () => {
  const items = ["a", "b", "c"].map((id) => ({ id, type: "message" }));
  it("pages in either order after an id; an id not in the list is null", () => {
    expect(itemPage(items, { limit: 2, order: "desc" })).toEqual({ data: [items[2], items[1]], has_more: true });
    expect(itemPage(items, { limit: 2, order: "desc", after: "b" })).toEqual({ data: [items[0]], has_more: false });
    expect(itemPage(items, { limit: 3, order: "asc" })).toEqual({ data: items, has_more: false });
    expect(itemPage(items, { limit: 1, order: "asc", after: "c" })).toEqual({ data: [], has_more: false });
    expect(itemPage(items, { limit: 1, order: "asc", after: "zz" })).toBeNull();
  });
});

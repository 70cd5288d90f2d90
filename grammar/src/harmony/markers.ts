/**
 * How Harmony's special tokens appear to the grammar engine. xgrammar matches text, and a special token
 * has no text of its own that ordinary tokens cannot also spell ("<|end|>" is five ordinary tokens too),
 * so each special the grammar uses is given a marker: the unit-separator byte 0x1F and a letter. In
 * o200k only one ordinary token contains 0x1F (the lone byte itself); the vocabulary drops that token
 * from constrained sequences, so no ordinary token can spell a marker and free text is simply
 * "anything without 0x1F" (`[^\x1F]*`, a cheap ASCII class for the engine).
 */
import { HarmonySpecial } from "../spec/harmony-tokens.ts";

/** Token ids of the Harmony specials the grammar uses (spec §5). */
export const HarmonyToken = {
  return: HarmonySpecial.return,
  constrain: HarmonySpecial.constrain,
  channel: HarmonySpecial.channel,
  start: HarmonySpecial.start,
  end: HarmonySpecial.end,
  message: HarmonySpecial.message,
  call: HarmonySpecial.call,
} as const;

export type HarmonyTokenName = keyof typeof HarmonyToken;

export const MARKER_BYTE = 0x1f;

const LETTER: Record<HarmonyTokenName, string> = {
  return: "R",
  constrain: "K",
  channel: "H",
  start: "S",
  end: "N",
  message: "M",
  call: "L",
};

// No letter is a hex digit: in an EBNF literal "\x1fC" would read as the one character U+01FC.
/** The marker text of a special, as the vocabulary gives it to xgrammar. */
export const markerText = (name: HarmonyTokenName): string => `\x1f${LETTER[name]}`;

/** The same marker as an EBNF string literal. */
export const markerLiteral = (name: HarmonyTokenName): string => `"\\x1f${LETTER[name]}"`;

const BY_LETTER = new Map<string, number>((Object.keys(LETTER) as HarmonyTokenName[]).map((name) => [LETTER[name], HarmonyToken[name]]));

/** The special token id a marker letter stands for. */
export const tokenOfMarkerLetter = (letter: string): number | undefined => BY_LETTER.get(letter);

/** The marker text for a vocabulary id, when that id is one of the grammar's specials. */
export function markerOfToken(id: number): string | undefined {
  for (const name of Object.keys(HarmonyToken) as HarmonyTokenName[]) if (HarmonyToken[name] === id) return markerText(name);
  return undefined;
}

/** The Harmony special tokens of o200k_harmony by name (spec §5), for every workspace that needs their ids. */
export const HarmonySpecial = {
  startoftext: 199998,
  endoftext: 199999,
  return: 200002,
  constrain: 200003,
  channel: 200005,
  start: 200006,
  end: 200007,
  message: 200008,
  call: 200012,
} as const;

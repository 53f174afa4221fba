// Op types get stable colours from one palette, readable on light and dark backgrounds, so the
// studio's chart and the exported HTML report colour the same op the same way.
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#8c8c8c',
  '#1f9e89', '#d37295', '#a0cbe8', '#b6992d', '#8cd17d', '#86bcb6', '#ffbe7d', '#d4a6c8'];

/** Colours in order of first appearance (graph order for a report's layers). */
export function opColours(ops: Iterable<string>): Map<string, string> {
  const colours = new Map<string, string>();
  for (const op of ops) if (!colours.has(op)) colours.set(op, PALETTE[colours.size % PALETTE.length]);
  return colours;
}

/**
 * Round half to even: ONNX QuantizeLinear, Python's round() and C's lrint in the default mode.
 * Math.floor(v + 0.5) is several times faster than Math.round in V8, and this sits in the
 * innermost loop of every weight quantization. The sum can round up past v's nearest integer
 * (0.49999999999999994, odd integers past 2^52); the distance r − v then exceeds one half, or
 * rounds to one half with r odd, and either steps r down, as a half that landed on an odd integer
 * does. Zero keeps no sign.
 */
export function roundHalfEven(v: number): number {
  const r = Math.floor(v + 0.5);
  const d = r - v;
  return d > 0.5 || (d === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

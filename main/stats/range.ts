/** A tensor's calibrated range: what observers produce and quantization parameters are computed from. */
export interface Range {
  min: number;
  max: number;
}

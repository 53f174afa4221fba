// Float and dequantized values of one tensor on one chart, from the engine's bins.
import { memo, useMemo } from 'react';
import { Bar, BarChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { Histogram as Bins } from '../../shared/ipc';

function HistogramImpl({ bins }: { bins: Bins }) {
  const rows = useMemo(() => {
    const width = (bins.max - bins.min) / bins.float.length;
    return bins.float.map((f, i) => ({ x: (bins.min + (i + 0.5) * width).toPrecision(3), float: f, dequantized: bins.quantized[i] }));
  }, [bins]);
  return (
    <div className="histogram">
      <ResponsiveContainer width="100%" height={180}>
        {/* The two series share each bin: float filled, dequantized outlined over it, so a gap or a spike shows. */}
        <BarChart data={rows} barGap="-100%" barCategoryGap={0} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <XAxis dataKey="x" interval="preserveStartEnd" minTickGap={24} />
          <YAxis width={48} scale="sqrt" domain={[0, 'auto']} />
          <Tooltip isAnimationActive={false} />
          <Bar dataKey="float" name="float" fill="var(--hist-float)" fillOpacity={0.55} isAnimationActive={false} />
          <Bar dataKey="dequantized" name="dequantized" fill="none" stroke="var(--hist-quant)" strokeWidth={1.2} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
      <p className="hist-legend"><i className="float" />float <i className="dequantized" />dequantized</p>
    </div>
  );
}

export const Histogram = memo(HistogramImpl);

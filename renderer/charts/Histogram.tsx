// Float and dequantized values of one tensor on one chart, from the engine's bins.
import { memo, useMemo } from 'react';
import { Bar, BarChart, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { Histogram as Bins } from '../../shared/ipc';

function HistogramImpl({ bins }: { bins: Bins }) {
  const rows = useMemo(() => {
    const width = (bins.max - bins.min) / bins.float.length;
    return bins.float.map((f, i) => ({ x: (bins.min + (i + 0.5) * width).toPrecision(3), float: f, dequantized: bins.quantized[i] }));
  }, [bins]);
  return (
    <div className="histogram">
      <ResponsiveContainer width="100%" height={200}>
        <BarChart data={rows} barGap={0} barCategoryGap={0} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <XAxis dataKey="x" interval="preserveStartEnd" minTickGap={24} />
          <YAxis width={48} scale="sqrt" domain={[0, 'auto']} />
          <Tooltip isAnimationActive={false} />
          <Legend />
          <Bar dataKey="float" name="float" className="hist-float" fill="var(--hist-float)" isAnimationActive={false} />
          <Bar dataKey="dequantized" name="dequantized" className="hist-quant" fill="var(--hist-quant)" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

export const Histogram = memo(HistogramImpl);

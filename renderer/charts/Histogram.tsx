// Float and dequantized values of one tensor on one chart, from the engine's bins.
import { memo, useMemo, useState } from 'react';
import { Bar, BarChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { Histogram as Bins } from '../../shared/ipc';

/** Counts in a few characters (1.2k, 45k, 3.1M), so no axis label is cut to "000000". */
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

function HistogramImpl({ bins }: { bins: Bins }) {
  // Log counts show the tails a square-root axis flattens; a log axis has no 0, so empty bins draw nothing.
  const [log, setLog] = useState(false);
  const rows = useMemo(() => {
    const width = (bins.max - bins.min) / bins.float.length;
    const count = (n: number) => (log && n === 0 ? undefined : n);
    return bins.float.map((f, i) => ({ x: (bins.min + (i + 0.5) * width).toPrecision(3), float: count(f), dequantized: count(bins.quantized[i]) }));
  }, [bins, log]);
  return (
    <div className="histogram" data-scale={log ? 'log' : 'sqrt'}>
      <ResponsiveContainer width="100%" height={180}>
        {/* The two series share each bin: float filled, dequantized outlined over it, so a gap or a spike shows. */}
        <BarChart data={rows} barGap="-100%" barCategoryGap={0} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <XAxis dataKey="x" interval="preserveStartEnd" minTickGap={24} />
          <YAxis width={48} scale={log ? 'log' : 'sqrt'} domain={log ? [1, 'auto'] : [0, 'auto']} allowDataOverflow={log} tickFormatter={(v: number) => compact.format(v)} />
          <Tooltip isAnimationActive={false} />
          <Bar dataKey="float" name="float" fill="var(--hist-float)" fillOpacity={0.55} isAnimationActive={false} />
          <Bar dataKey="dequantized" name="dequantized" fill="none" stroke="var(--hist-quant)" strokeWidth={1.2} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
      <p className="hist-legend">
        <i className="float" />float <i className="dequantized" />dequantized
        <label className="hist-log"><input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} data-testid="hist-log" />log counts</label>
      </p>
    </div>
  );
}

export const Histogram = memo(HistogramImpl);

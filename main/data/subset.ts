// Evaluation subsets: a few samples read into memory once, which every run of an analysis or a
// repair search sees, so that its figures compare with one another.
import { commonShapes, feedSamples, feedSlice, sampleCount, type Feed } from '../base/feed';
import type { SampleSource } from './readers';

/**
 * Samples a search (analysis, repair) runs on by default: all the evaluation samples up to this
 * many, so that on a small evaluation set its baseline and before/after are the run's own figures.
 */
export const SEARCH_SAMPLES = 32;

/** Reads up to `limit` samples of a source into memory, in batches: the fixed subset every run sees. */
export async function readSubset(source: SampleSource, limit: number, batchSize: number): Promise<{ feeds: Feed[]; samples: number }> {
  const feeds: Feed[] = [];
  let samples = 0;
  for await (const feed of source.batches(batchSize)) {
    const n = feedSamples(feed);
    if (samples + n > limit) {
      const keep = limit - samples;
      if (keep <= 0) break;
      feeds.push(feedSlice(feed, 0, keep));
      samples += keep;
      break;
    }
    feeds.push(feed);
    samples += n;
    if (samples >= limit) break;
  }
  if (samples === 0) throw new Error(`no samples in ${source.description}`);
  return { feeds, samples };
}

/** A SampleSource over batches already in memory (the fixed subset of a search). */
export function memorySource(feeds: readonly Feed[], description: string): SampleSource {
  const count = sampleCount(feeds);
  return {
    description, count, warnings: [], feedShapes: commonShapes(feeds),
    async *batches() {
      yield* feeds;
    },
  };
}

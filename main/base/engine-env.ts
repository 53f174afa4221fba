// The environment the engine's processes start in.

/**
 * glibc gives threads malloc arenas of their own, and memory freed in one arena is not reused for
 * another thread's allocations: the engine's threads (ONNX Runtime's, the stats workers, libuv's)
 * then map fresh pages, which cost 2.5 to 3.5 ms a megabyte on the VMs this was measured on. With
 * one arena, on an AMD EPYC (2 cores; the recognizer, 64 lines, alternating): entropy calibration
 * 3.44-3.89 s and 444-453 MB against 3.86-4.36 s and 484-508 MB, evaluation 5.3-6.8 s against
 * 6.7-6.9 s, the repair 87.9 s and 0.87 GB against 93.4 s and 0.92 GB; plain inference the same.
 *
 * glibc's mmap and trim thresholds start at 128 KB and rise only as mapped buffers are freed, up
 * to 32 and 64 MB; until then every output ONNX Runtime's binding hands over (a new buffer each
 * run) comes from fresh pages and goes back to the kernel when freed. Fixed at those maxima from
 * the start, freed outputs are reused, and a process holds no more than a warmed-up one may
 * (same EPYC, alternating, three runs each): the sample model's percentile calibration 0.62–0.66 s
 * against 0.64–0.68 s, entropy 0.77–0.82 against 0.81–0.84 s, MSE 0.64–0.66 against 0.66–0.80 s,
 * evaluation 0.32–0.34 against 0.34–0.46 s; the recognizer's evaluation 4.9–5.5 s against
 * 5.1–5.9 s, its entropy calibration within noise; the repair 88.6 s and 0.88 GB against 89.9 s
 * and 0.87 GB.
 *
 * Other C libraries ignore these variables (Electron's utility process allocates through
 * Chromium's own), and a value the user set stays.
 */
export function engineEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: String(32 << 20), MALLOC_TRIM_THRESHOLD_: String(64 << 20), ...base };
}

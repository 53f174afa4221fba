// The environment the engine's processes start in.

/**
 * glibc gives threads malloc arenas of their own, and memory freed in one arena is not reused for
 * another thread's allocations: the engine's threads (ONNX Runtime's, the stats workers, libuv's)
 * then map fresh pages, which cost 2.5 to 3.5 ms a megabyte on the VMs this was measured on. With
 * one arena, on an AMD EPYC (2 cores; the recognizer, 64 lines, alternating): entropy calibration
 * 3.44-3.89 s and 444-453 MB against 3.86-4.36 s and 484-508 MB, evaluation 5.3-6.8 s against
 * 6.7-6.9 s, the repair 87.9 s and 0.87 GB against 93.4 s and 0.92 GB; plain inference the same.
 * Other C libraries ignore the variable (Electron's utility process allocates through Chromium's
 * own), and a value the user set stays.
 */
export function engineEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { MALLOC_ARENA_MAX: '1', ...base };
}

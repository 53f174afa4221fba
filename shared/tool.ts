// The tool's name and version as every report, recipe and the CLI's --version carry them (a test
// pins the version to package.json's).
export const TOOL = { name: 'quant-studio', version: '0.1.0' } as const;

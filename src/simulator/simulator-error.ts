/**
 * The bundled simulator's own error codes. They are not exporter error codes: the exporter
 * never raises them, so they do not appear in `pulumi_exporter_errors_total`.
 * docs/simulator.md lists each one; test/unit/simulator/simulator-error.test.ts keeps the two in step.
 */
export const SIMULATOR_ERROR_CODES = {
  SIMULATOR_OPTION_INVALID: 'startSimulator or the simulate command was given an invalid option',
  SIMULATOR_FAULT_INVALID: 'a fault rule is malformed (kind, endpoint, count, everyNth, retryAfterSeconds or delayMs)',
  SIMULATOR_CONTROL_INVALID: 'a control call names an unknown stack or update, or asks for something the stack cannot do',
  SIMULATOR_FIXTURES_MISSING: 'fixtures were required but fixtures/pulumi-samples was not found next to package.json',
} as const;

export type SimulatorErrorCode = keyof typeof SIMULATOR_ERROR_CODES;

export class SimulatorError extends Error {
  readonly code: SimulatorErrorCode;

  constructor(code: SimulatorErrorCode, message: string) {
    super(message);
    this.name = 'SimulatorError';
    this.code = code;
  }
}

/**
 * The command's exit codes (README, docs/scenarios.md): 0 everything held;
 * 1 an expectation, an invariant or an event without expect_error failed;
 * 2 invalid input (the scenario, or a flag's value); 3 a bug in the model
 * (it threw); 64 a usage error (unknown command or option, missing argument).
 */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_INVALID = 2;
export const EXIT_MODEL_BUG = 3;
/** EX_USAGE of sysexits.h */
export const EXIT_USAGE = 64;

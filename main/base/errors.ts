// Errors a person can act on: the message names the file or input, says what is wrong and what to
// do. Hosts print the message alone (the CLI adds the stack only with --debug).

/** A job refused its input or could not finish. */
export class JobError extends Error {}

/** One thing wrong with the configuration, with where it came from. */
export interface ConfigProblem {
  /** Dotted key path, with array indexes as `[0]` (`pulumi.orgs[0].name`). */
  readonly path: string;
  readonly message: string;
  /** The environment variable that supplied the value, when it came from the environment. */
  readonly variable?: string;
  /** The config file that supplied the value, when it came from the file. */
  readonly file?: string;
}

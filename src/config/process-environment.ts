/** The process environment; read here so that only src/config/ touches process.env. */
export function processEnvironment(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

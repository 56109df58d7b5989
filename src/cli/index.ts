/** cli: the `runwall` command's face. Entry point: main.ts. */
export {};

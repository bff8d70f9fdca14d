import { accessSync, constants } from 'node:fs';

/** A setting that is wrong, named by its option path or environment variable. */
export class EventBusConfigError extends Error {
  override readonly name = 'EventBusConfigError';
}

export type Env = Readonly<Record<string, string | undefined>>;

/** One setting: its value, and where it came from (the option path in code, or the environment variable). */
export class Setting<T> {
  constructor(
    readonly value: T | undefined,
    readonly label: string,
  ) {}

  fail(why: string): never {
    throw new EventBusConfigError(`${this.label}: ${why}`);
  }
}

/** The value in code if given, else the parsed environment variable, else none (the caller's default applies). */
export function pick<T>(code: T | undefined, optionPath: string, env: Env, variable: string, parse: (raw: string, s: Setting<T>) => T): Setting<T> {
  if (code !== undefined) return new Setting(code, `option ${optionPath}`);
  const raw = env[variable];
  if (raw === undefined || raw.trim() === '') return new Setting<T>(undefined, `option ${optionPath} or environment variable ${variable}`);
  const setting = new Setting<T>(undefined, `environment variable ${variable}`);
  return new Setting(parse(raw.trim(), setting), setting.label);
}

export const asString = (raw: string): string => raw;

export const asBoolean = (raw: string, s: Setting<boolean>): boolean => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  return s.fail(`expected true or false, got ${JSON.stringify(raw)}`);
};

export const asInteger = (raw: string, s: Setting<number>): number => {
  if (!/^-?\d+$/.test(raw)) s.fail(`expected an integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
};

export function oneOf<T extends string>(setting: Setting<T>, allowed: readonly T[], fallback: T): T {
  const value = setting.value ?? fallback;
  if (!allowed.includes(value)) setting.fail(`expected ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}`);
  return value;
}

export function integerAtLeast(setting: Setting<number>, min: number, fallback: number): number {
  const value = setting.value ?? fallback;
  if (!Number.isInteger(value) || value < min) setting.fail(`expected an integer >= ${min}, got ${value}`);
  return value;
}

/** An integer setting from code or the environment, at least `min`, else the fallback. */
export function integerSetting(env: Env, code: number | undefined, optionPath: string, variable: string, min: number, fallback: number): number {
  return integerAtLeast(pick(code, optionPath, env, variable, asInteger), min, fallback);
}

export function readableFile(setting: Setting<string>): string | undefined {
  if (setting.value === undefined) return undefined;
  try {
    accessSync(setting.value, constants.R_OK);
  } catch {
    setting.fail(`cannot read file ${JSON.stringify(setting.value)}`);
  }
  return setting.value;
}

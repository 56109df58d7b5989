/**
 * GitHub Actions expressions (`${{ … }}` and `if:`), parsed once when the
 * workflow is read and evaluated when a step is about to run. Pure.
 *
 * Semantics follow the Actions documentation: `!`, comparison, `==`/`!=`
 * (strings compared case-insensitively, mixed types compared as numbers),
 * `&&`/`||` returning an operand, property and index access that yield null
 * when absent, and the functions contains, startsWith, endsWith, format, join,
 * toJSON, fromJSON and the status checks. What cannot be known on this machine
 * (`github.event`, `matrix`, `needs`, `hashFiles`…) raises ExpressionUnavailable,
 * so a caller can skip the step and say why instead of guessing.
 */

export type ExpressionValue = null | boolean | number | string | readonly ExpressionValue[] | { readonly [key: string]: ExpressionValue };

export type Expression =
  | { readonly type: 'literal'; readonly value: null | boolean | number | string }
  | { readonly type: 'context'; readonly name: string }
  | { readonly type: 'member'; readonly object: Expression; readonly property: string }
  | { readonly type: 'index'; readonly object: Expression; readonly index: Expression }
  | { readonly type: 'filter'; readonly object: Expression }
  | { readonly type: 'not'; readonly operand: Expression }
  | { readonly type: 'binary'; readonly operator: BinaryOperator; readonly left: Expression; readonly right: Expression }
  | { readonly type: 'call'; readonly name: string; readonly args: readonly Expression[] }
  /** Text with `${{ }}` parts used where an expression is expected (an `if:` such as `${{ a }} == b`): a string. */
  | { readonly type: 'text'; readonly parts: Template };

export type BinaryOperator = '==' | '!=' | '<' | '<=' | '>' | '>=' | '&&' | '||';

/** A text with `${{ }}` parts, split once. */
export type Template = readonly (string | Expression)[];

/** A syntax error, with the offset in the expression text. */
export class ExpressionSyntaxError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = 'ExpressionSyntaxError';
    this.offset = offset;
  }
}

/** The expression needs something this machine does not have; `reference` names it (e.g. `github.event_name`). */
export class ExpressionUnavailable extends Error {
  readonly reference: string;
  constructor(reference: string, why: string) {
    super(`${reference} ${why}`);
    this.name = 'ExpressionUnavailable';
    this.reference = reference;
  }
}

/**
 * A context of which only some properties are known locally (e.g. `github`):
 * reading any other property is ExpressionUnavailable, never a silent null.
 */
export interface PartialContext {
  readonly partial: true;
  readonly name: string;
  readonly known: { readonly [key: string]: ExpressionValue };
}

export type ContextValue = ExpressionValue | PartialContext | { readonly unavailable: string };

export interface JobStatusView {
  /** `success`, `failure` or `cancelled`: what `job.status` and the status functions report. */
  readonly status: 'success' | 'failure' | 'cancelled';
}

export interface EvaluationContext extends JobStatusView {
  /** Context name (lower case) → value; a missing name is ExpressionUnavailable. */
  readonly contexts: { readonly [name: string]: ContextValue };
}

export const KNOWN_CONTEXTS = ['github', 'env', 'vars', 'job', 'jobs', 'steps', 'runner', 'secrets', 'strategy', 'matrix', 'needs', 'inputs'] as const;
const STATUS_FUNCTIONS = ['success', 'failure', 'cancelled', 'always'] as const;
const FUNCTION_ARITY: Readonly<Record<string, readonly [number, number]>> = {
  success: [0, 0],
  failure: [0, 0],
  cancelled: [0, 0],
  always: [0, 0],
  contains: [2, 2],
  startswith: [2, 2],
  endswith: [2, 2],
  format: [1, 255],
  join: [1, 2],
  tojson: [1, 1],
  fromjson: [1, 1],
  hashfiles: [1, 255],
};

// ---------------------------------------------------------------- tokens

type Token =
  | { readonly kind: 'number'; readonly value: number; readonly at: number }
  | { readonly kind: 'string'; readonly value: string; readonly at: number }
  | { readonly kind: 'word'; readonly value: string; readonly at: number }
  | { readonly kind: 'punct'; readonly value: string; readonly at: number }
  | { readonly kind: 'end'; readonly at: number };

const PUNCTUATION = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '[', ']', '.', ',', '*'] as const;
const WORD_START = /[A-Za-z_]/;
const WORD_PART = /[A-Za-z0-9_-]/;
const NUMBER = /^-?(?:0x[0-9a-fA-F]+|0o[0-7]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] ?? '';
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i += 1;
      continue;
    }
    if (c === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw new ExpressionSyntaxError('unterminated string', i);
        if (text[j] === "'") {
          if (text[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += text[j];
        j += 1;
      }
      tokens.push({ kind: 'string', value, at: i });
      i = j + 1;
      continue;
    }
    // `.5` and `-1` are numbers only where a value may start (so `a.b` is never read as `a` `.b`).
    const previous = tokens[tokens.length - 1];
    const afterValue = previous !== undefined && (previous.kind !== 'punct' || previous.value === ')' || previous.value === ']');
    if (/[0-9]/.test(c) || (!afterValue && (c === '-' || c === '.') && /[0-9]/.test(text[i + 1] ?? ''))) {
      const match = NUMBER.exec(text.slice(i));
      if (match === null) throw new ExpressionSyntaxError(`bad number`, i);
      const raw = match[0];
      const negative = raw.startsWith('-');
      const body = negative ? raw.slice(1) : raw;
      const magnitude = body.startsWith('0o') ? parseInt(body.slice(2), 8) : Number(body);
      tokens.push({ kind: 'number', value: negative ? -magnitude : magnitude, at: i });
      i += raw.length;
      continue;
    }
    if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < text.length && WORD_PART.test(text[j] ?? '')) j += 1;
      tokens.push({ kind: 'word', value: text.slice(i, j), at: i });
      i = j;
      continue;
    }
    const punct = PUNCTUATION.find((p) => text.startsWith(p, i));
    if (punct === undefined) throw new ExpressionSyntaxError(`unexpected character '${c}'`, i);
    tokens.push({ kind: 'punct', value: punct, at: i });
    i += punct.length;
  }
  tokens.push({ kind: 'end', at: text.length });
  return tokens;
}

// ---------------------------------------------------------------- parser

const MAX_DEPTH = 50;

class Parser {
  readonly #tokens: Token[];
  #position = 0;
  #depth = 0;

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  parse(): Expression {
    const expression = this.#or();
    const next = this.#peek();
    if (next.kind !== 'end') throw new ExpressionSyntaxError(`unexpected ${describe(next)}`, next.at);
    return expression;
  }

  #peek(): Token {
    return this.#tokens[this.#position] ?? { kind: 'end', at: 0 };
  }

  #take(): Token {
    const token = this.#peek();
    this.#position += 1;
    return token;
  }

  #isPunct(value: string): boolean {
    const token = this.#peek();
    return token.kind === 'punct' && token.value === value;
  }

  #expect(value: string): void {
    const token = this.#take();
    if (token.kind !== 'punct' || token.value !== value) throw new ExpressionSyntaxError(`expected '${value}', found ${describe(token)}`, token.at);
  }

  #nested<T>(parse: () => T): T {
    this.#depth += 1;
    if (this.#depth > MAX_DEPTH) throw new ExpressionSyntaxError(`nested more than ${MAX_DEPTH} deep`, this.#peek().at);
    try {
      return parse();
    } finally {
      this.#depth -= 1;
    }
  }

  #binary(operators: readonly BinaryOperator[], next: () => Expression): Expression {
    let left = next();
    for (;;) {
      const token = this.#peek();
      if (token.kind !== 'punct' || !(operators as readonly string[]).includes(token.value)) return left;
      this.#take();
      left = { type: 'binary', operator: token.value as BinaryOperator, left, right: next() };
    }
  }

  #or(): Expression {
    return this.#nested(() => this.#binary(['||'], () => this.#and()));
  }

  #and(): Expression {
    return this.#binary(['&&'], () => this.#equality());
  }

  #equality(): Expression {
    return this.#binary(['==', '!='], () => this.#comparison());
  }

  #comparison(): Expression {
    return this.#binary(['<', '<=', '>', '>='], () => this.#unary());
  }

  #unary(): Expression {
    if (this.#isPunct('!')) {
      this.#take();
      return this.#nested(() => ({ type: 'not', operand: this.#unary() }));
    }
    return this.#postfix();
  }

  #postfix(): Expression {
    let expression = this.#primary();
    for (;;) {
      if (this.#isPunct('.')) {
        this.#take();
        const token = this.#take();
        if (token.kind === 'punct' && token.value === '*') expression = { type: 'filter', object: expression };
        else if (token.kind === 'word') expression = { type: 'member', object: expression, property: token.value };
        else throw new ExpressionSyntaxError(`expected a property name after '.', found ${describe(token)}`, token.at);
      } else if (this.#isPunct('[')) {
        this.#take();
        const index = this.#or();
        this.#expect(']');
        expression = { type: 'index', object: expression, index };
      } else {
        return expression;
      }
    }
  }

  #primary(): Expression {
    const token = this.#take();
    switch (token.kind) {
      case 'number':
      case 'string':
        return { type: 'literal', value: token.value };
      case 'punct':
        if (token.value === '(') {
          const inner = this.#or();
          this.#expect(')');
          return inner;
        }
        throw new ExpressionSyntaxError(`unexpected ${describe(token)}`, token.at);
      case 'end':
        throw new ExpressionSyntaxError('unexpected end of expression', token.at);
      case 'word': {
        const lower = token.value.toLowerCase();
        if (this.#isPunct('(')) {
          this.#take();
          const arity = FUNCTION_ARITY[lower];
          if (arity === undefined) throw new ExpressionSyntaxError(`unknown function '${token.value}'`, token.at);
          const args: Expression[] = [];
          if (!this.#isPunct(')')) {
            for (;;) {
              args.push(this.#or());
              if (!this.#isPunct(',')) break;
              this.#take();
            }
          }
          this.#expect(')');
          if (args.length < arity[0] || args.length > arity[1]) {
            throw new ExpressionSyntaxError(`${token.value}() takes ${arity[0] === arity[1] ? arity[0] : `${arity[0]}-${arity[1]}`} arguments, not ${args.length}`, token.at);
          }
          return { type: 'call', name: lower, args };
        }
        if (lower === 'true' || lower === 'false') return { type: 'literal', value: lower === 'true' };
        if (lower === 'null') return { type: 'literal', value: null };
        if (!(KNOWN_CONTEXTS as readonly string[]).includes(lower)) {
          throw new ExpressionSyntaxError(`unknown context '${token.value}' (contexts: ${KNOWN_CONTEXTS.join(', ')})`, token.at);
        }
        return { type: 'context', name: lower };
      }
    }
  }
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'end':
      return 'end of expression';
    case 'string':
      return `string '${token.value}'`;
    default:
      return `'${String(token.value)}'`;
  }
}

/** Parses the text between `${{` and `}}` (or a bare `if:`). Throws ExpressionSyntaxError. */
export function parseExpression(text: string): Expression {
  if (text.trim() === '') throw new ExpressionSyntaxError('empty expression', 0);
  return new Parser(tokenize(text)).parse();
}

/**
 * Finds where a `${{ … }}` that opens at `start` closes: the first `}}`
 * outside a quoted string. Returns -1 when it never closes.
 */
function closingOf(text: string, start: number): number {
  let quoted = false;
  for (let i = start + 3; i < text.length - 1; i += 1) {
    if (text[i] === "'") quoted = !quoted;
    else if (!quoted && text[i] === '}' && text[i + 1] === '}') return i;
  }
  return -1;
}

/** Splits a text into literal parts and parsed `${{ }}` expressions. Throws ExpressionSyntaxError (offset into `text`). */
export function parseTemplate(text: string): Template {
  const parts: (string | Expression)[] = [];
  let from = 0;
  for (;;) {
    const open = text.indexOf('${{', from);
    if (open < 0) break;
    const close = closingOf(text, open);
    if (close < 0) throw new ExpressionSyntaxError("'${{' is never closed by '}}'", open);
    if (open > from) parts.push(text.slice(from, open));
    try {
      parts.push(parseExpression(text.slice(open + 3, close)));
    } catch (error: unknown) {
      if (error instanceof ExpressionSyntaxError) throw new ExpressionSyntaxError(error.message, open + 3 + error.offset);
      throw error;
    }
    from = close + 2;
  }
  if (from < text.length || parts.length === 0) parts.push(text.slice(from));
  return parts;
}

/**
 * An `if:` condition. It may be written with or without `${{ }}`; without a
 * status function it means `success() && (…)`, as on GitHub.
 */
export function parseCondition(text: string): Expression {
  const trimmed = text.trim();
  let expression: Expression;
  const whole = /^\$\{\{([\s\S]*)\}\}$/.exec(trimmed);
  if (whole !== null && closingOf(trimmed, 0) === trimmed.length - 2) {
    expression = parseExpression(whole[1] ?? '');
  } else if (trimmed.includes('${{')) {
    // Text around an expression makes the condition a string: true when not empty (as on GitHub).
    expression = { type: 'text', parts: parseTemplate(trimmed) };
  } else {
    expression = parseExpression(trimmed);
  }
  return usesStatusFunction(expression) ? expression : { type: 'binary', operator: '&&', left: { type: 'call', name: 'success', args: [] }, right: expression };
}

export function usesStatusFunction(expression: Expression): boolean {
  switch (expression.type) {
    case 'call':
      return (STATUS_FUNCTIONS as readonly string[]).includes(expression.name) || expression.args.some(usesStatusFunction);
    case 'binary':
      return usesStatusFunction(expression.left) || usesStatusFunction(expression.right);
    case 'not':
      return usesStatusFunction(expression.operand);
    case 'member':
    case 'filter':
      return usesStatusFunction(expression.object);
    case 'index':
      return usesStatusFunction(expression.object) || usesStatusFunction(expression.index);
    case 'text':
      return expression.parts.some((part) => typeof part !== 'string' && usesStatusFunction(part));
    default:
      return false;
  }
}

// ---------------------------------------------------------------- values

export function isTruthy(value: ExpressionValue): boolean {
  if (value === null) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  if (typeof value === 'string') return value !== '';
  return true;
}

export function toNumber(value: ExpressionValue): number {
  if (value === null) return 0;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const trimmed = value.trim();
    if (trimmed === '') return 0;
    if (/^[+-]?0x[0-9a-f]+$/i.test(trimmed)) return (trimmed.startsWith('-') ? -1 : 1) * parseInt(trimmed.replace(/^[+-]/, '').slice(2), 16);
    if (/^[+-]?0o[0-7]+$/i.test(trimmed)) return (trimmed.startsWith('-') ? -1 : 1) * parseInt(trimmed.replace(/^[+-]/, '').slice(2), 8);
    if (/^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i.test(trimmed)) return Number(trimmed);
    if (/^[+-]?infinity$/i.test(trimmed)) return trimmed.startsWith('-') ? -Infinity : Infinity;
    return NaN;
  }
  return NaN;
}

/** How a value reads inside a string (`${{ }}` in `run:`, `env:`…). */
export function toText(value: ExpressionValue): string {
  if (value === null) return '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Object.is(value, -0) ? '0' : String(value);
  if (typeof value === 'string') return value;
  return Array.isArray(value) ? 'Array' : 'Object';
}

function typeOf(value: ExpressionValue): 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value as 'boolean' | 'number' | 'string' | 'object';
}

function compareText(a: string, b: string): number {
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

export function looselyEqual(a: ExpressionValue, b: ExpressionValue): boolean {
  const ta = typeOf(a);
  const tb = typeOf(b);
  if (ta === tb) {
    if (ta === 'string') return compareText(a as string, b as string) === 0;
    return a === b; // numbers (NaN ≠ NaN), booleans, null; arrays and objects by identity
  }
  if (ta === 'array' || ta === 'object' || tb === 'array' || tb === 'object') return false;
  const x = toNumber(a);
  const y = toNumber(b);
  return !Number.isNaN(x) && !Number.isNaN(y) && x === y;
}

function compareValues(a: ExpressionValue, b: ExpressionValue): number {
  if (typeof a === 'string' && typeof b === 'string') return compareText(a, b);
  const x = toNumber(a);
  const y = toNumber(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return NaN;
  return x < y ? -1 : x > y ? 1 : 0;
}

// ---------------------------------------------------------------- evaluation

function isPartial(value: ContextValue | undefined): value is PartialContext {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && (value as PartialContext).partial === true && 'known' in value;
}

function isUnavailable(value: ContextValue | undefined): value is { readonly unavailable: string } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { unavailable?: unknown }).unavailable === 'string' && Object.keys(value).length === 1;
}

/** A property of an object: exact name first, then without regard to case (Actions contexts are case-insensitive). */
function property(object: ExpressionValue | PartialContext, key: string): ExpressionValue {
  if (isPartial(object)) {
    const found = lookup(object.known, key);
    if (found === undefined) throw new ExpressionUnavailable(`${object.name}.${key}`, 'is not known when a workflow runs locally');
    return found;
  }
  if (object === null || typeof object !== 'object') return null;
  if (Array.isArray(object)) {
    const index = toNumber(key);
    return Number.isInteger(index) && index >= 0 ? (object[index] ?? null) : null;
  }
  return lookup(object as { readonly [key: string]: ExpressionValue }, key) ?? null;
}

function lookup(object: { readonly [key: string]: ExpressionValue }, key: string): ExpressionValue | undefined {
  if (Object.prototype.hasOwnProperty.call(object, key)) return object[key];
  const lower = key.toLowerCase();
  for (const name of Object.keys(object)) if (name.toLowerCase() === lower) return object[name];
  return undefined;
}

/** Source-like text of an expression, for messages. */
export function expressionText(expression: Expression): string {
  switch (expression.type) {
    case 'literal':
      return typeof expression.value === 'string' ? `'${expression.value.replace(/'/g, "''")}'` : String(expression.value);
    case 'context':
      return expression.name;
    case 'member':
      return `${expressionText(expression.object)}.${expression.property}`;
    case 'index':
      return `${expressionText(expression.object)}[${expressionText(expression.index)}]`;
    case 'filter':
      return `${expressionText(expression.object)}.*`;
    case 'not':
      return `!${expressionText(expression.operand)}`;
    case 'binary':
      return `(${expressionText(expression.left)} ${expression.operator} ${expressionText(expression.right)})`;
    case 'call':
      return `${expression.name}(${expression.args.map(expressionText).join(', ')})`;
    case 'text':
      return expression.parts.map((part) => (typeof part === 'string' ? part : `\${{ ${expressionText(part)} }}`)).join('');
  }
}

/** The result of `.*`: a property read on it reads that property of every item (`labels.*.name`). */
class Filtered {
  readonly items: readonly ExpressionValue[];
  constructor(items: readonly ExpressionValue[]) {
    this.items = items;
  }
}

type Intermediate = ExpressionValue | PartialContext | Filtered;

function plain(value: Intermediate, text: string): ExpressionValue {
  if (value instanceof Filtered) return [...value.items];
  if (isPartial(value)) throw new ExpressionUnavailable(text, 'is not fully known when a workflow runs locally');
  return value;
}

function read(object: Intermediate, key: string): Intermediate {
  if (object instanceof Filtered) {
    // Items without the property are left out, as on GitHub.
    return new Filtered(object.items.map((item) => property(item, key)).filter((value) => value !== null));
  }
  return property(object, key);
}

function evaluateInner(expression: Expression, context: EvaluationContext): Intermediate {
  switch (expression.type) {
    case 'literal':
      return expression.value;
    case 'context': {
      const value = context.contexts[expression.name];
      if (value === undefined) throw new ExpressionUnavailable(expression.name, 'is not available when a workflow runs locally');
      if (isUnavailable(value)) throw new ExpressionUnavailable(expression.name, value.unavailable);
      return value;
    }
    case 'member':
      return read(evaluateInner(expression.object, context), expression.property);
    case 'index': {
      const object = evaluateInner(expression.object, context);
      const index = plain(evaluateInner(expression.index, context), expressionText(expression.index));
      return read(object, toText(index));
    }
    case 'filter': {
      const object = plain(evaluateInner(expression.object, context), expressionText(expression.object));
      if (object === null || typeof object !== 'object') return new Filtered([]);
      return new Filtered(Array.isArray(object) ? [...object] : Object.values(object));
    }
    case 'not':
      return !isTruthy(plain(evaluateInner(expression.operand, context), expressionText(expression.operand)));
    case 'binary': {
      const left = plain(evaluateInner(expression.left, context), expressionText(expression.left));
      if (expression.operator === '&&') return isTruthy(left) ? plain(evaluateInner(expression.right, context), expressionText(expression.right)) : left;
      if (expression.operator === '||') return isTruthy(left) ? left : plain(evaluateInner(expression.right, context), expressionText(expression.right));
      const right = plain(evaluateInner(expression.right, context), expressionText(expression.right));
      switch (expression.operator) {
        case '==':
          return looselyEqual(left, right);
        case '!=':
          return !looselyEqual(left, right);
        case '<':
          return compareValues(left, right) < 0;
        case '<=':
          return compareValues(left, right) <= 0;
        case '>':
          return compareValues(left, right) > 0;
        case '>=':
          return compareValues(left, right) >= 0;
      }
      return null;
    }
    case 'call':
      return call(expression, context);
    case 'text':
      return renderTemplate(expression.parts, context);
  }
}

function call(expression: Extract<Expression, { type: 'call' }>, context: EvaluationContext): ExpressionValue {
  const args = (): ExpressionValue[] => expression.args.map((arg) => plain(evaluateInner(arg, context), expressionText(arg)));
  switch (expression.name) {
    case 'success':
      return context.status === 'success';
    case 'failure':
      return context.status === 'failure';
    case 'cancelled':
      return context.status === 'cancelled';
    case 'always':
      return true;
    case 'contains': {
      const [haystack = null, needle = null] = args();
      if (Array.isArray(haystack)) return haystack.some((item: ExpressionValue) => looselyEqual(item, needle));
      return toText(haystack).toUpperCase().includes(toText(needle).toUpperCase());
    }
    case 'startswith': {
      const [text = null, prefix = null] = args();
      return toText(text).toUpperCase().startsWith(toText(prefix).toUpperCase());
    }
    case 'endswith': {
      const [text = null, suffix = null] = args();
      return toText(text).toUpperCase().endsWith(toText(suffix).toUpperCase());
    }
    case 'format': {
      const [format = null, ...rest] = args();
      return formatText(toText(format), rest.map(toText));
    }
    case 'join': {
      const [items = null, separator = ','] = args();
      return Array.isArray(items) ? items.map(toText).join(toText(separator)) : toText(items);
    }
    case 'tojson':
      return JSON.stringify(args()[0] ?? null, null, 2);
    case 'fromjson': {
      const text = toText(args()[0] ?? null);
      try {
        return JSON.parse(text) as ExpressionValue;
      } catch {
        throw new ExpressionUnavailable(`fromJSON('${text.slice(0, 40)}')`, 'is not valid JSON');
      }
    }
    case 'hashfiles':
      throw new ExpressionUnavailable('hashFiles()', 'reads the workspace and is not evaluated locally');
    default:
      throw new ExpressionUnavailable(`${expression.name}()`, 'is not a known function');
  }
}

/** `format('{0} and {1}', a, b)`; `{{` and `}}` are literal braces. */
export function formatText(format: string, args: readonly string[]): string {
  let out = '';
  for (let i = 0; i < format.length; i += 1) {
    const c = format[i];
    if (c === '{' && format[i + 1] === '{') {
      out += '{';
      i += 1;
    } else if (c === '}' && format[i + 1] === '}') {
      out += '}';
      i += 1;
    } else if (c === '{') {
      const close = format.indexOf('}', i);
      const index = close < 0 ? NaN : Number(format.slice(i + 1, close));
      if (!Number.isInteger(index) || index < 0 || index >= args.length) {
        throw new ExpressionUnavailable(`format('${format.slice(0, 40)}')`, 'has a placeholder without an argument');
      }
      out += args[index];
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/** Evaluates an expression. Throws ExpressionUnavailable when it needs what this machine does not have. */
export function evaluateExpression(expression: Expression, context: EvaluationContext): ExpressionValue {
  return plain(evaluateInner(expression, context), expressionText(expression));
}

/** Evaluates an `if:` condition (from parseCondition) to true or false. */
export function evaluateCondition(condition: Expression, context: EvaluationContext): boolean {
  return isTruthy(evaluateExpression(condition, context));
}

/** Renders a template: literal parts as they are, expressions as text. */
export function renderTemplate(template: Template, context: EvaluationContext): string {
  return template.map((part) => (typeof part === 'string' ? part : toText(evaluateExpression(part, context)))).join('');
}

/** A template that is a single expression keeps its value's type (`continue-on-error: ${{ true }}`). */
export function evaluateTemplateValue(template: Template, context: EvaluationContext): ExpressionValue {
  const [only] = template;
  if (template.length === 1 && only !== undefined && typeof only !== 'string') return evaluateExpression(only, context);
  return renderTemplate(template, context);
}

export function templateHasExpressions(template: Template): boolean {
  return template.some((part) => typeof part !== 'string');
}

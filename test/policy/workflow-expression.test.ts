import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  evaluateCondition,
  evaluateExpression,
  ExpressionSyntaxError,
  ExpressionUnavailable,
  parseCondition,
  parseExpression,
  parseTemplate,
  renderTemplate,
  type EvaluationContext,
  type ExpressionValue,
} from '../../src/policy/index.js';

const CONTEXT: EvaluationContext = {
  status: 'success',
  contexts: {
    env: { NAME: 'World', EMPTY: '', NUM: '42' },
    steps: { build: { outputs: { version: '1.2.3', ok: 'true' }, outcome: 'success', conclusion: 'success' } },
    github: { partial: true, name: 'github', known: { workspace: '/w', job: 'build' } },
    matrix: { unavailable: 'comes from the matrix' },
    secrets: {},
  },
};

function run(text: string, context: EvaluationContext = CONTEXT): ExpressionValue {
  return evaluateExpression(parseExpression(text), context);
}

describe('expressions: values and operators, as the Actions documentation defines them', () => {
  it.each<[string, ExpressionValue]>([
    ['null', null],
    ['true', true],
    ['FALSE', false],
    ['711', 711],
    ['-9.2', -9.2],
    ['0xff', 255],
    ['2.99e-2', 0.0299],
    ["'It''s open source!'", "It's open source!"],
    ["'abc' == 'ABC'", true],
    ["'1' == 1", true],
    ['null == 0', true],
    ["'' == 0", true],
    ["'x' == 0", false],
    ['true == 1', true],
    ["'a' != 'b'", true],
    ['2 > 10', false],
    ["'2' > '10'", true],
    ["1 < 'x'", false],
    ["'' || 'default'", 'default'],
    ["'first' && 'second'", 'second'],
    ['0 && true', 0],
    ['!0', true],
    ["!'x'", false],
    ['(1 == 1) && !(2 == 3)', true],
  ])('%s → %j', (text, expected) => {
    expect(run(text)).toEqual(expected);
  });

  it('reads contexts case-insensitively, null when a property is missing', () => {
    expect(run('env.NAME')).toBe('World');
    expect(run("ENV['NAME']")).toBe('World');
    expect(run('steps.build.outputs.version')).toBe('1.2.3');
    expect(run('Steps.Build.Outputs.Version')).toBe('1.2.3');
    expect(run('steps.missing.outputs.version')).toBeNull();
    expect(run('env.NAME.length')).toBeNull();
    expect(run('steps.*.outcome')).toEqual(['success']);
  });

  it('has the functions a workflow uses', () => {
    expect(run("contains('Hello world', 'WORLD')")).toBe(true);
    expect(run("contains(fromJSON('[\"push\", \"pull_request\"]'), 'PUSH')")).toBe(true);
    expect(run("startsWith(env.NAME, 'wor')")).toBe(true);
    expect(run("endsWith('v1.2.3', '.3')")).toBe(true);
    expect(run("format('{0} {{x}} {1}', 'Hello', env.NAME)")).toBe('Hello {x} World');
    expect(run("join(fromJSON('[1, 2]'), '-')")).toBe('1-2');
    expect(run("toJSON(fromJSON('{\"a\":1}'))")).toBe('{\n  "a": 1\n}');
  });

  it('what this machine cannot know is ExpressionUnavailable naming it, never a silent null', () => {
    const unavailable = (text: string): string => {
      try {
        run(text);
      } catch (error) {
        expect(error).toBeInstanceOf(ExpressionUnavailable);
        return (error as ExpressionUnavailable).reference;
      }
      throw new Error(`${text} evaluated`);
    };
    expect(unavailable('github.event_name')).toBe('github.event_name');
    expect(unavailable("matrix.os == 'linux'")).toBe('matrix');
    expect(unavailable("hashFiles('**/package-lock.json')")).toBe('hashFiles()');
    expect(unavailable('needs.build.result')).toBe('needs');
    expect(run('github.workspace')).toBe('/w');
    // Short-circuiting does not touch what it does not need.
    expect(run("false && github.event_name == 'push'")).toBe(false);
  });

  it('syntax errors say what and where', () => {
    const error = (text: string): ExpressionSyntaxError => {
      try {
        parseExpression(text);
      } catch (caught) {
        expect(caught).toBeInstanceOf(ExpressionSyntaxError);
        return caught as ExpressionSyntaxError;
      }
      throw new Error(`${text} parsed`);
    };
    expect(error("'open").message).toBe('unterminated string');
    expect(error('frobnicate(1)').message).toBe("unknown function 'frobnicate'");
    expect(error('foo.bar').message).toMatch(/^unknown context 'foo'/);
    expect(error('1 2').message).toBe("unexpected '2'");
    expect(error('contains(1)').message).toBe('contains() takes 2 arguments, not 1');
    expect(error('(((1').message).toMatch(/^expected '\)'/);
    expect(error('env.NAME ==').offset).toBe(11);
  });
});

describe('if: conditions', () => {
  const at = (status: EvaluationContext['status']): EvaluationContext => ({ ...CONTEXT, status });

  it('without a status function, a condition means success() && (…)', () => {
    const condition = parseCondition("env.NAME == 'World'");
    expect(evaluateCondition(condition, at('success'))).toBe(true);
    expect(evaluateCondition(condition, at('failure'))).toBe(false);
  });

  it('status functions decide by the job status so far', () => {
    const table = (text: string) => (['success', 'failure', 'cancelled'] as const).map((status) => evaluateCondition(parseCondition(text), at(status)));
    expect(table('success()')).toEqual([true, false, false]);
    expect(table('failure()')).toEqual([false, true, false]);
    expect(table('cancelled()')).toEqual([false, false, true]);
    expect(table('always()')).toEqual([true, true, true]);
    expect(table('${{ failure() || cancelled() }}')).toEqual([false, true, true]);
    expect(table("!cancelled() && env.NAME == 'World'")).toEqual([true, true, false]);
  });

  it('accepts ${{ }} around the whole condition, and text around an expression is a string (true when not empty)', () => {
    expect(evaluateCondition(parseCondition('${{ false }}'), CONTEXT)).toBe(false);
    expect(evaluateCondition(parseCondition('${{ false }} && x'), CONTEXT)).toBe(true);
  });
});

describe('templates', () => {
  it('split text and expressions; }} inside a string literal does not close', () => {
    const template = parseTemplate("echo ${{ env.NAME }} '${{ '}}' }}' done");
    expect(template).toHaveLength(5);
    expect(renderTemplate(template, CONTEXT)).toBe("echo World '}}' done");
  });

  it('renders values as text: null empty, booleans and numbers as written', () => {
    expect(renderTemplate(parseTemplate('[${{ null }}|${{ true }}|${{ 1.5 }}|${{ env.EMPTY }}]'), CONTEXT)).toBe('[|true|1.5|]');
  });

  it('an unclosed ${{ is a syntax error at its position', () => {
    expect(() => parseTemplate('echo ${{ env.NAME')).toThrow(ExpressionSyntaxError);
  });
});

describe('expression properties', () => {
  const text = fc.string({ maxLength: 40 }).filter((s) => !s.includes('${{'));
  const literal = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -1_000_000, max: 1_000_000 }),
    fc.string({ maxLength: 20 }),
  );
  const source = (value: null | boolean | number | string): string => (typeof value === 'string' ? `'${value.replace(/'/g, "''")}'` : String(value));

  it('text without ${{ renders as itself', () => {
    fc.assert(fc.property(text, (s) => renderTemplate(parseTemplate(s), CONTEXT) === s));
  });

  it('a literal written as source evaluates back to itself', () => {
    fc.assert(fc.property(literal, (value) => Object.is(run(source(value)), value) || run(source(value)) === value));
  });

  it('== is symmetric and != is its complement', () => {
    fc.assert(
      fc.property(literal, literal, (a, b) => {
        const eq = run(`${source(a)} == ${source(b)}`);
        expect(run(`${source(b)} == ${source(a)}`)).toBe(eq);
        expect(run(`${source(a)} != ${source(b)}`)).toBe(!eq);
      }),
    );
  });

  it("De Morgan holds for the operators' truthiness", () => {
    fc.assert(
      fc.property(literal, literal, (a, b) => {
        expect(run(`!(${source(a)} && ${source(b)})`)).toBe(run(`!${source(a)} || !${source(b)}`));
      }),
    );
  });

  it('any text either parses or is an ExpressionSyntaxError, nothing else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        try {
          parseExpression(s);
        } catch (error) {
          expect(error).toBeInstanceOf(ExpressionSyntaxError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

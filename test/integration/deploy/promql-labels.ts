/**
 * A small PromQL parser for the deploy assets test: it reads the subset of PromQL the rules and
 * the dashboard use, works out which labels every sub-expression can carry, and reports
 * metrics that do not exist and labels a matcher, a grouping or a join names that the series
 * cannot have. promtool checks the syntax; this checks the expressions against our metrics.
 */

export type Labels = ReadonlySet<string>;

/** Labels of every series name an expression may select (metrics, histogram series, recorded rules). */
export type SeriesCatalog = ReadonlyMap<string, Labels>;

export interface Matcher {
  readonly label: string;
  readonly op: string;
  readonly value: string;
}

type Node =
  | { readonly t: 'num' }
  | { readonly t: 'str'; readonly value: string }
  | { readonly t: 'sel'; readonly name: string | undefined; readonly matchers: readonly Matcher[] }
  | { readonly t: 'range'; readonly inner: Node }
  | { readonly t: 'agg'; readonly op: string; readonly by?: readonly string[]; readonly without?: readonly string[]; readonly args: readonly Node[] }
  | { readonly t: 'call'; readonly fn: string; readonly args: readonly Node[] }
  | {
      readonly t: 'bin';
      readonly op: string;
      readonly lhs: Node;
      readonly rhs: Node;
      readonly on?: readonly string[];
      readonly ignoring?: readonly string[];
      readonly group?: { readonly side: 'left' | 'right'; readonly labels: readonly string[] };
    }
  | { readonly t: 'neg'; readonly inner: Node };

interface Token {
  readonly k: 'id' | 'num' | 'dur' | 'str' | 'range' | 'op';
  readonly v: string;
}

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile']);
const SCALAR_FUNCTIONS = new Set(['time', 'scalar', 'pi']);
/** Functions whose result carries the labels of their (first) vector argument. */
const LABEL_PRESERVING = new Set([
  'abs', 'ceil', 'floor', 'round', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'sgn', 'clamp', 'clamp_min', 'clamp_max',
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'changes', 'resets',
  'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'last_over_time',
  'quantile_over_time', 'stddev_over_time', 'present_over_time', 'timestamp', 'sort', 'sort_desc',
]);
const BINARY_PRECEDENCE: Readonly<Record<string, number>> = {
  or: 1,
  and: 2,
  unless: 2,
  '==': 3,
  '!=': 3,
  '<': 3,
  '<=': 3,
  '>': 3,
  '>=': 3,
  '+': 4,
  '-': 4,
  '*': 5,
  '/': 5,
  '%': 5,
  atan2: 5,
  '^': 6,
};
const SET_OPERATORS = new Set(['and', 'or', 'unless']);

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at offset ${i} of ${JSON.stringify(src)}`);
  };
  while (i < src.length) {
    const rest = src.slice(i);
    const ws = /^(\s+|#[^\n]*)/.exec(rest);
    if (ws) {
      i += ws[0].length;
      continue;
    }
    const c = src[i]!;
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      let value = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && c !== '`') j++;
        value += src[j] ?? '';
        j++;
      }
      if (j >= src.length) fail('unterminated string');
      out.push({ k: 'str', v: value });
      i = j + 1;
      continue;
    }
    if (c === '[') {
      const end = src.indexOf(']', i);
      if (end < 0) fail('unterminated range');
      out.push({ k: 'range', v: src.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    const dur = /^(\d+(ms|s|m|h|d|w|y))+(?![\w.])/.exec(rest);
    if (dur) {
      out.push({ k: 'dur', v: dur[0] });
      i += dur[0].length;
      continue;
    }
    const num = /^(0x[0-9a-f]+|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)/i.exec(rest);
    if (num) {
      out.push({ k: 'num', v: num[0] });
      i += num[0].length;
      continue;
    }
    const id = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest);
    if (id) {
      out.push({ k: 'id', v: id[0] });
      i += id[0].length;
      continue;
    }
    const op = /^(==|!=|>=|<=|=~|!~|[-+*/%^<>=(){},])/.exec(rest);
    if (op) {
      out.push({ k: 'op', v: op[0] });
      i += op[0].length;
      continue;
    }
    fail(`unexpected ${JSON.stringify(c)}`);
  }
  return out;
}

class Parser {
  private pos = 0;

  constructor(
    private readonly tokens: readonly Token[],
    private readonly src: string,
  ) {}

  parse(): Node {
    const node = this.expr(0);
    if (this.pos < this.tokens.length) this.fail(`unexpected ${this.tokens[this.pos]!.v}`);
    return node;
  }

  private fail(what: string): never {
    throw new Error(`${what} in ${JSON.stringify(this.src)}`);
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.pos + offset];
  }

  private isOp(v: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t !== undefined && t.k === 'op' && t.v === v;
  }

  private isId(v: string): boolean {
    const t = this.peek();
    return t !== undefined && t.k === 'id' && t.v === v;
  }

  private take(): Token {
    const t = this.tokens[this.pos++];
    if (!t) this.fail('unexpected end');
    return t;
  }

  private expect(v: string): void {
    if (!this.isOp(v)) this.fail(`expected ${v}, found ${this.peek()?.v ?? 'end'}`);
    this.pos++;
  }

  private binaryOperator(): string | undefined {
    const t = this.peek();
    if (!t) return undefined;
    if ((t.k === 'op' || t.k === 'id') && Object.hasOwn(BINARY_PRECEDENCE, t.v)) return t.v;
    return undefined;
  }

  private expr(minPrecedence: number): Node {
    let lhs = this.unary();
    for (;;) {
      const op = this.binaryOperator();
      if (op === undefined) return lhs;
      const precedence = BINARY_PRECEDENCE[op]!;
      if (precedence < minPrecedence) return lhs;
      this.pos++;
      if (this.isId('bool')) this.pos++;
      let on: string[] | undefined;
      let ignoring: string[] | undefined;
      let group: { side: 'left' | 'right'; labels: string[] } | undefined;
      if (this.isId('on')) {
        this.pos++;
        on = this.labelList();
      } else if (this.isId('ignoring')) {
        this.pos++;
        ignoring = this.labelList();
      }
      if (this.isId('group_left') || this.isId('group_right')) {
        const side = this.take().v === 'group_left' ? 'left' : 'right';
        group = { side, labels: this.isOp('(') ? this.labelList() : [] };
      }
      // ^ is right-associative, every other operator left-associative.
      const rhs = this.expr(op === '^' ? precedence : precedence + 1);
      lhs = { t: 'bin', op, lhs, rhs, ...(on && { on }), ...(ignoring && { ignoring }), ...(group && { group }) };
    }
  }

  private unary(): Node {
    if (this.isOp('-') || this.isOp('+')) {
      const negative = this.take().v === '-';
      const inner = this.unary();
      return negative ? { t: 'neg', inner } : inner;
    }
    return this.postfix(this.primary());
  }

  private postfix(node: Node): Node {
    let out = node;
    for (;;) {
      const t = this.peek();
      if (t?.k === 'range') {
        this.pos++;
        out = { t: 'range', inner: out };
      } else if (t?.k === 'id' && t.v === 'offset') {
        this.pos++;
        if (this.isOp('-')) this.pos++;
        if (this.take().k !== 'dur') this.fail('expected a duration after offset');
      } else {
        return out;
      }
    }
  }

  private primary(): Node {
    const t = this.take();
    if (t.k === 'num' || t.k === 'dur') return { t: 'num' };
    if (t.k === 'str') return { t: 'str', value: t.v };
    if (t.k === 'op' && t.v === '(') {
      const inner = this.expr(0);
      this.expect(')');
      return inner;
    }
    if (t.k === 'op' && t.v === '{') return { t: 'sel', name: undefined, matchers: this.matchers() };
    if (t.k !== 'id') return this.fail(`unexpected ${t.v}`);
    if (t.v === 'Inf' || t.v === 'NaN' || t.v === 'inf' || t.v === 'nan') return { t: 'num' };
    if (AGGREGATIONS.has(t.v) && (this.isOp('(') || this.isId('by') || this.isId('without'))) return this.aggregation(t.v);
    if (this.isOp('(')) return { t: 'call', fn: t.v, args: this.args() };
    if (this.isOp('{')) {
      this.pos++;
      return { t: 'sel', name: t.v, matchers: this.matchers() };
    }
    return { t: 'sel', name: t.v, matchers: [] };
  }

  private aggregation(op: string): Node {
    let by: string[] | undefined;
    let without: string[] | undefined;
    const grouping = (): void => {
      if (this.isId('by') || this.isId('without')) {
        const kind = this.take().v;
        const labels = this.labelList();
        if (kind === 'by') by = labels;
        else without = labels;
      }
    };
    grouping();
    const args = this.args();
    grouping();
    return { t: 'agg', op, args, ...(by && { by }), ...(without && { without }) };
  }

  private args(): Node[] {
    this.expect('(');
    const args: Node[] = [];
    while (!this.isOp(')')) {
      args.push(this.expr(0));
      if (!this.isOp(')')) this.expect(',');
    }
    this.expect(')');
    return args;
  }

  private labelList(): string[] {
    this.expect('(');
    const labels: string[] = [];
    while (!this.isOp(')')) {
      const t = this.take();
      if (t.k !== 'id') this.fail(`expected a label name, found ${t.v}`);
      labels.push(t.v);
      if (!this.isOp(')')) this.expect(',');
    }
    this.expect(')');
    return labels;
  }

  /** After `{`: `label op "value"` pairs up to `}`. */
  private matchers(): Matcher[] {
    const out: Matcher[] = [];
    while (!this.isOp('}')) {
      const label = this.take();
      const op = this.take();
      const value = this.take();
      if (label.k !== 'id' || op.k !== 'op' || !['=', '!=', '=~', '!~'].includes(op.v) || value.k !== 'str') {
        this.fail(`malformed matcher after ${label.v}`);
      }
      out.push({ label: label.v, op: op.v, value: value.v });
      if (!this.isOp('}')) this.expect(',');
    }
    this.expect('}');
    return out;
  }
}

export function parsePromql(src: string): Node {
  return new Parser(tokenize(src), src).parse();
}

/** What an expression evaluates to: a scalar or string, or a vector whose series carry at most these labels. */
type Shape = { readonly kind: 'scalar' } | { readonly kind: 'vector'; readonly labels: Labels };

export interface Selector {
  readonly name: string;
  readonly matchers: readonly Matcher[];
}

export interface PromqlCheck {
  /** Labels the result's series can carry; undefined for a scalar result. */
  readonly labels: Labels | undefined;
  /** Every selector in the expression, in order. */
  readonly selectors: readonly Selector[];
  readonly problems: readonly string[];
}

/**
 * Checks one expression against the catalog: every selected series must exist; every label in
 * a matcher, `by`/`without`, `on`/`ignoring` or `group_*` list must be one the operand can carry;
 * a one-to-one join of two vectors must compare the same label sets (else it never matches).
 */
export function checkPromql(src: string, catalog: SeriesCatalog): PromqlCheck {
  const problems: string[] = [];
  const selectors: Selector[] = [];
  const missing = (labels: readonly string[], have: Labels, where: string): void => {
    for (const l of labels) if (!have.has(l)) problems.push(`${where}: label "${l}" is not one of {${[...have].sort().join(', ')}}`);
  };
  const vectorOf = (node: Node, where: string): Labels => {
    const shape = visit(node);
    if (shape.kind === 'vector') return shape.labels;
    problems.push(`${where}: expected a vector`);
    return new Set();
  };

  const visit = (node: Node): Shape => {
    switch (node.t) {
      case 'num':
      case 'str':
        return { kind: 'scalar' };
      case 'neg':
        return visit(node.inner);
      case 'range':
        return visit(node.inner);
      case 'sel': {
        const name = node.name ?? node.matchers.find((m) => m.label === '__name__' && m.op === '=')?.value;
        if (name === undefined) {
          problems.push('a selector without a metric name');
          return { kind: 'vector', labels: new Set() };
        }
        selectors.push({ name, matchers: node.matchers });
        const labels = catalog.get(name);
        if (!labels) {
          problems.push(`unknown metric ${name}`);
          return { kind: 'vector', labels: new Set(node.matchers.map((m) => m.label)) };
        }
        missing(
          node.matchers.map((m) => m.label).filter((l) => l !== '__name__'),
          labels,
          `matcher on ${name}`,
        );
        return { kind: 'vector', labels };
      }
      case 'agg': {
        const vectorArg = node.args[node.args.length - 1];
        if (!vectorArg) {
          problems.push(`${node.op}() without an argument`);
          return { kind: 'vector', labels: new Set() };
        }
        for (const param of node.args.slice(0, -1)) visit(param);
        const input = vectorOf(vectorArg, node.op);
        if (node.by) {
          missing(node.by, input, `${node.op} by`);
          return { kind: 'vector', labels: new Set(node.by) };
        }
        if (node.without) {
          missing(node.without, input, `${node.op} without`);
          return { kind: 'vector', labels: new Set([...input].filter((l) => !node.without!.includes(l))) };
        }
        if (node.op === 'topk' || node.op === 'bottomk') return { kind: 'vector', labels: input };
        if (node.op === 'count_values') {
          const param = node.args[0];
          return { kind: 'vector', labels: new Set(param?.t === 'str' ? [param.value] : []) };
        }
        return { kind: 'vector', labels: new Set() };
      }
      case 'call': {
        const shapes = node.args.map((a) => visit(a));
        if (SCALAR_FUNCTIONS.has(node.fn)) return { kind: 'scalar' };
        if (node.fn === 'vector') return { kind: 'vector', labels: new Set() };
        if (node.fn === 'absent' || node.fn === 'absent_over_time') {
          const arg = node.args[0];
          const sel = arg?.t === 'range' ? arg.inner : arg;
          const equal = sel?.t === 'sel' ? sel.matchers.filter((m) => m.op === '=' && m.label !== '__name__') : [];
          return { kind: 'vector', labels: new Set(equal.map((m) => m.label)) };
        }
        const firstVector = shapes.find((s): s is Extract<Shape, { kind: 'vector' }> => s.kind === 'vector');
        if (node.fn === 'histogram_quantile') {
          const input = firstVector?.labels ?? new Set<string>();
          missing(['le'], input, 'histogram_quantile');
          return { kind: 'vector', labels: new Set([...input].filter((l) => l !== 'le')) };
        }
        if (node.fn === 'label_replace' || node.fn === 'label_join') {
          const dst = node.args[1];
          return { kind: 'vector', labels: new Set([...(firstVector?.labels ?? []), ...(dst?.t === 'str' ? [dst.value] : [])]) };
        }
        if (!LABEL_PRESERVING.has(node.fn)) problems.push(`unknown function ${node.fn}()`);
        return firstVector ?? { kind: 'vector', labels: new Set() };
      }
      case 'bin': {
        const lhs = visit(node.lhs);
        const rhs = visit(node.rhs);
        if (lhs.kind === 'scalar' && rhs.kind === 'scalar') return { kind: 'scalar' };
        if (lhs.kind === 'scalar') return rhs;
        if (rhs.kind === 'scalar') return lhs;
        const l = lhs.labels;
        const r = rhs.labels;
        const where = `"${node.op}"`;
        if (node.on) {
          missing(node.on, l, `${where} on (left side)`);
          if (node.op !== 'or') missing(node.on, r, `${where} on (right side)`);
        }
        if (node.ignoring) missing(node.ignoring, new Set([...l, ...r]), `${where} ignoring`);
        if (SET_OPERATORS.has(node.op)) {
          if (node.op === 'or') return { kind: 'vector', labels: new Set([...l, ...r]) };
          if (!node.on) sameLabels(l, r, node.ignoring ?? [], where);
          return { kind: 'vector', labels: l };
        }
        if (node.group) {
          const [many, one] = node.group.side === 'left' ? [l, r] : [r, l];
          missing(node.group.labels, one, `${where} group_${node.group.side}`);
          return { kind: 'vector', labels: new Set([...many, ...node.group.labels]) };
        }
        // One-to-one: on() keeps only the listed labels, ignoring() drops them.
        if (node.on) return { kind: 'vector', labels: new Set(node.on) };
        const ignored = node.ignoring ?? [];
        sameLabels(l, r, ignored, where);
        return { kind: 'vector', labels: new Set([...l].filter((x) => !ignored.includes(x))) };
      }
    }
  };

  const sameLabels = (l: Labels, r: Labels, ignoring: readonly string[], where: string): void => {
    const a = [...l].filter((x) => !ignoring.includes(x)).sort();
    const b = [...r].filter((x) => !ignoring.includes(x)).sort();
    if (a.join() !== b.join()) problems.push(`${where} joins {${a.join(', ')}} with {${b.join(', ')}}: no series would match`);
  };

  let node: Node;
  try {
    node = parsePromql(src);
  } catch (err) {
    return { labels: undefined, selectors, problems: [`cannot parse: ${(err as Error).message}`] };
  }
  const shape = visit(node);
  return { labels: shape.kind === 'vector' ? shape.labels : undefined, selectors, problems };
}

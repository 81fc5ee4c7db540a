/**
 * MLflow's search grammar, hand-written: a tokenizer and a recursive-descent parser for
 * `filter_string` (comparisons joined by AND) and `order_by` clauses, then a check of every
 * comparison against what the searched entity (runs or experiments) supports. The output is a
 * small typed AST; the repository turns it into parameter-bound SQL. Nothing here evaluates or
 * concatenates user text into SQL.
 *
 * Supported, as MLflow does:
 * - identifiers `metrics.x`, `params.x`, `tags.x`, `attributes.x` (aliases `metric`, `param`,
 *   `tag`, `attribute`, `attr`, `run`), `datasets.x`, bare attribute names (`status`,
 *   `start_time`, ...), keys split at the first dot (`tags.mlflow.runName` is the tag
 *   `mlflow.runName`), quoted keys (metrics.`my metric`, params."my param");
 * - numeric comparisons `= != > >= < <=` (metrics, time attributes), string comparisons
 *   `= != LIKE ILIKE` (params, tags, string attributes), `IN (...)` / `NOT IN (...)` for string
 *   keys, and `IS NULL` / `IS NOT NULL`;
 * - `AND` in any case; `OR` and parentheses are refused with a message saying so.
 */
import { AppError } from '../platform/errors.ts';

/** The kind of thing an identifier names. */
export type EntityType = 'metric' | 'param' | 'tag' | 'attribute' | 'dataset';

export type ComparisonOperator = '=' | '!=' | '>' | '>=' | '<' | '<=' | 'LIKE' | 'ILIKE' | 'IN' | 'NOT IN' | 'IS NULL' | 'IS NOT NULL';

/** `metrics.accuracy`, `params.lr`, `status`: what a comparison or an order_by clause is about. */
export interface SearchIdentifier {
  readonly type: EntityType;
  /** Metric/param/tag key, or the canonical attribute/dataset field name. */
  readonly key: string;
}

export type ComparisonValue =
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'list'; readonly values: readonly string[] }
  | { readonly kind: 'none' };

export interface Comparison {
  readonly identifier: SearchIdentifier;
  readonly operator: ComparisonOperator;
  readonly value: ComparisonValue;
}

export interface OrderByClause {
  readonly identifier: SearchIdentifier;
  readonly ascending: boolean;
}

/** How values of an attribute compare: as numbers (times) or as strings. */
export type AttributeKind = 'numeric' | 'string';

/** What one searchable entity (runs, experiments) accepts. */
export interface SearchSchema {
  /** Human name used in messages, e.g. `runs`. */
  readonly name: string;
  /** Canonical attribute name -> how it compares. */
  readonly attributes: Readonly<Record<string, AttributeKind>>;
  /** Other spellings of attributes (MLflow's `created`, `Run name`) -> canonical name. */
  readonly attributeAliases: Readonly<Record<string, string>>;
  /** Entity types other than attributes that may appear. */
  readonly entities: readonly EntityType[];
  /** Dataset fields -> kind (runs only). */
  readonly datasetFields?: Readonly<Record<string, AttributeKind>>;
  /** Attributes allowed in order_by (defaults to all attributes). */
  readonly orderableAttributes?: readonly string[];
}

/** Runs: MLflow's run attributes plus `datasets.name|version|digest`. */
export const RUN_SEARCH: SearchSchema = {
  name: 'runs',
  attributes: {
    run_id: 'string',
    run_name: 'string',
    status: 'string',
    user_id: 'string',
    artifact_uri: 'string',
    start_time: 'numeric',
    end_time: 'numeric',
  },
  attributeAliases: { created: 'start_time', Created: 'start_time', 'run name': 'run_name', 'Run name': 'run_name', 'Run Name': 'run_name', run_uuid: 'run_id' },
  entities: ['metric', 'param', 'tag', 'dataset'],
  datasetFields: { name: 'string', digest: 'string', version: 'numeric' },
};

/** Experiments: MLflow's `search_experiments` attributes and tags. */
export const EXPERIMENT_SEARCH: SearchSchema = {
  name: 'experiments',
  attributes: { name: 'string', creation_time: 'numeric', last_update_time: 'numeric', experiment_id: 'numeric' },
  attributeAliases: {},
  entities: ['tag'],
};

const ENTITY_PREFIXES: Readonly<Record<string, EntityType>> = {
  metric: 'metric',
  metrics: 'metric',
  param: 'param',
  params: 'param',
  parameter: 'param',
  parameters: 'param',
  tag: 'tag',
  tags: 'tag',
  attribute: 'attribute',
  attributes: 'attribute',
  attr: 'attribute',
  run: 'attribute',
  dataset: 'dataset',
  datasets: 'dataset',
};

// ---------------------------------------------------------------------------------------------
// Tokenizer

type TokenKind = 'word' | 'string' | 'backquoted' | 'number' | 'op' | 'lparen' | 'rparen' | 'comma' | 'eof';

interface Token {
  readonly kind: TokenKind;
  /** Decoded text: the word, the unquoted string, the operator. */
  readonly text: string;
  /** Offset of the first character in the input. */
  readonly start: number;
  /** Offset just past the last character. */
  readonly end: number;
  /** The raw slice of input, for messages. */
  readonly raw: string;
}

/** Characters allowed in a bare (unquoted) identifier after its first character. */
const WORD_CHAR = /[\p{L}\p{N}_.\-:/]/u;
const WORD_START = /[\p{L}_]/u;
const DIGIT = /[0-9]/;

function syntaxError(what: string, input: string, position: number, message: string): AppError {
  const near = input.slice(position, position + 20);
  const where = position >= input.length ? 'at the end' : `at character ${position + 1} (near '${near}')`;
  return new AppError(400, 'invalid_parameter_value', `invalid ${what} ${where}: ${message}`);
}

function tokenize(input: string, what: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = input.length;
  const push = (kind: TokenKind, text: string, start: number, end: number): void => {
    tokens.push({ kind, text, start, end, raw: input.slice(start, end) });
  };
  while (i < n) {
    const c = input[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (c === '(') {
      push('lparen', c, start, ++i);
    } else if (c === ')') {
      push('rparen', c, start, ++i);
    } else if (c === ',') {
      push('comma', c, start, ++i);
    } else if (c === '=') {
      // `==` is a common slip; accept it as `=` like SQL engines that tolerate it.
      i += input[i + 1] === '=' ? 2 : 1;
      push('op', '=', start, i);
    } else if (c === '!') {
      if (input[i + 1] !== '=') throw syntaxError(what, input, i, "'!' must be followed by '=' (use != for not equal)");
      i += 2;
      push('op', '!=', start, i);
    } else if (c === '<' || c === '>') {
      if (c === '<' && input[i + 1] === '>') {
        i += 2;
        push('op', '!=', start, i);
      } else if (input[i + 1] === '=') {
        i += 2;
        push('op', `${c}=`, start, i);
      } else {
        push('op', c, start, ++i);
      }
    } else if (c === "'" || c === '"' || c === '`') {
      // Quotes are escaped by doubling them ('it''s'), as in SQL.
      let text = '';
      i++;
      for (;;) {
        if (i >= n) throw syntaxError(what, input, start, `unterminated ${c === '`' ? 'backquoted name' : 'string'} starting here`);
        const d = input[i]!;
        if (d === c) {
          if (input[i + 1] === c) {
            text += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += d;
        i++;
      }
      push(c === '`' ? 'backquoted' : 'string', text, start, i);
    } else if (DIGIT.test(c) || (c === '.' && DIGIT.test(input[i + 1] ?? '')) || ((c === '-' || c === '+') && /[0-9.]/.test(input[i + 1] ?? ''))) {
      const m = /^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?/.exec(input.slice(i));
      if (m === null) throw syntaxError(what, input, i, 'malformed number');
      i += m[0].length;
      if (i < n && WORD_CHAR.test(input[i]!) && input[i] !== '.') throw syntaxError(what, input, start, `malformed number '${input.slice(start, i + 1)}'`);
      push('number', m[0], start, i);
    } else if (WORD_START.test(c)) {
      i++;
      while (i < n && WORD_CHAR.test(input[i]!)) i++;
      push('word', input.slice(start, i), start, i);
    } else {
      throw syntaxError(what, input, i, `unexpected character '${c}'`);
    }
  }
  tokens.push({ kind: 'eof', text: '', start: n, end: n, raw: '' });
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Parser

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'IN', 'LIKE', 'ILIKE', 'IS', 'NULL', 'ASC', 'DESC']);

class Parser {
  private pos = 0;
  constructor(
    private readonly tokens: readonly Token[],
    private readonly input: string,
    private readonly what: string,
    private readonly schema: SearchSchema,
  ) {}

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (this.pos < this.tokens.length - 1) this.pos++;
    return t;
  }

  error(token: Token, message: string): AppError {
    return syntaxError(this.what, this.input, token.start, message);
  }

  private isKeyword(token: Token, keyword: string): boolean {
    return token.kind === 'word' && token.text.toUpperCase() === keyword;
  }

  atEnd(): boolean {
    return this.peek().kind === 'eof';
  }

  /** filter := comparison (AND comparison)* */
  parseFilter(): Comparison[] {
    const out: Comparison[] = [];
    if (this.atEnd()) return out;
    out.push(this.parseComparison());
    while (!this.atEnd()) {
      const t = this.next();
      if (this.isKeyword(t, 'AND')) {
        if (this.atEnd()) throw this.error(t, "'AND' must be followed by a comparison");
        out.push(this.parseComparison());
        continue;
      }
      if (this.isKeyword(t, 'OR')) throw this.error(t, "'OR' is not supported: comparisons can only be joined with AND");
      throw this.error(t, `expected AND between comparisons, found '${t.raw}'`);
    }
    return out;
  }

  /** One order_by clause: identifier [ASC|DESC]. */
  parseOrderBy(): OrderByClause {
    const identifier = this.parseIdentifier();
    let ascending = true;
    const t = this.peek();
    if (this.isKeyword(t, 'ASC') || this.isKeyword(t, 'DESC')) {
      ascending = this.next().text.toUpperCase() === 'ASC';
    }
    const extra = this.peek();
    if (extra.kind !== 'eof') throw this.error(extra, `expected ASC, DESC or the end of the clause, found '${extra.raw}'`);
    if (identifier.type === 'dataset') throw this.error(this.tokens[0]!, 'datasets fields cannot be used in order_by');
    if (identifier.type === 'attribute') {
      const allowed = this.schema.orderableAttributes ?? Object.keys(this.schema.attributes);
      if (!allowed.includes(identifier.key)) {
        throw this.error(this.tokens[0]!, `attribute '${identifier.key}' cannot be used in order_by (use one of ${allowed.join(', ')})`);
      }
    }
    return { identifier, ascending };
  }

  /** identifier := word | word '.' key | '`attribute`' where key may be quoted */
  private parseIdentifier(): SearchIdentifier {
    const t = this.next();
    if (t.kind === 'backquoted' || (t.kind === 'string' && t.raw.startsWith('"'))) {
      return this.resolveAttribute(t, t.text);
    }
    if (t.kind !== 'word') {
      if (t.kind === 'lparen') throw this.error(t, 'parentheses are not supported around comparisons');
      if (t.kind === 'eof') throw this.error(t, 'expected an identifier such as metrics.accuracy, params.x, tags.x or an attribute');
      throw this.error(t, `expected an identifier such as metrics.accuracy, params.x, tags.x or an attribute, found '${t.raw}'`);
    }
    if (KEYWORDS.has(t.text.toUpperCase())) throw this.error(t, `expected an identifier, found the keyword '${t.raw}'`);
    const dot = t.text.indexOf('.');
    if (dot < 0) return this.resolveAttribute(t, t.text);
    const prefix = t.text.slice(0, dot);
    const type = ENTITY_PREFIXES[prefix] ?? ENTITY_PREFIXES[prefix.toLowerCase()];
    if (type === undefined) {
      throw this.error(t, `unknown entity '${prefix}' in '${t.text}': use metrics., params., tags., attributes.${this.schema.datasetFields === undefined ? '' : ' or datasets.'}`);
    }
    let key = t.text.slice(dot + 1);
    if (key === '') {
      // `metrics.` followed directly by a quoted key: metrics.`my metric` or metrics."my metric".
      const q = this.peek();
      if ((q.kind === 'backquoted' || q.kind === 'string') && q.start === t.end) {
        this.next();
        key = q.text;
      } else {
        throw this.error(t, `'${t.text}' needs a key after the dot (quote keys with spaces: ${prefix}.\`my key\`)`);
      }
    }
    if (key === '') throw this.error(t, 'empty key');
    if (type === 'attribute') return this.resolveAttribute(t, key);
    if (type === 'dataset') {
      const fields = this.schema.datasetFields;
      if (fields === undefined) throw this.error(t, `${this.schema.name} have no datasets`);
      if (!(key in fields)) throw this.error(t, `unknown dataset field '${key}' (use one of ${Object.keys(fields).join(', ')})`);
      return { type, key };
    }
    if (!this.schema.entities.includes(type)) throw this.error(t, `${this.schema.name} cannot be searched by ${prefix}`);
    return { type, key };
  }

  private resolveAttribute(t: Token, name: string): SearchIdentifier {
    const canonical = this.schema.attributeAliases[name] ?? name;
    if (canonical in this.schema.attributes) return { type: 'attribute', key: canonical };
    const known = Object.keys(this.schema.attributes).join(', ');
    throw this.error(t, `unknown attribute '${name}' for ${this.schema.name} (known: ${known}; prefix metrics., params. or tags. for logged keys)`);
  }

  /** comparison := identifier operator value */
  private parseComparison(): Comparison {
    const first = this.peek();
    const identifier = this.parseIdentifier();
    const opToken = this.next();
    let operator: ComparisonOperator;
    if (opToken.kind === 'op') {
      operator = opToken.text as ComparisonOperator;
    } else if (opToken.kind === 'word') {
      const w = opToken.text.toUpperCase();
      if (w === 'LIKE' || w === 'ILIKE' || w === 'IN') {
        operator = w;
      } else if (w === 'NOT') {
        const t2 = this.next();
        if (!this.isKeyword(t2, 'IN')) throw this.error(t2, "only 'NOT IN' is supported after NOT");
        operator = 'NOT IN';
      } else if (w === 'IS') {
        let t2 = this.next();
        let negated = false;
        if (this.isKeyword(t2, 'NOT')) {
          negated = true;
          t2 = this.next();
        }
        if (!this.isKeyword(t2, 'NULL')) throw this.error(t2, `expected NULL after IS${negated ? ' NOT' : ''}`);
        operator = negated ? 'IS NOT NULL' : 'IS NULL';
      } else {
        throw this.error(opToken, `expected a comparison operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN, IS NULL) after the identifier, found '${opToken.raw}'`);
      }
    } else {
      throw this.error(opToken, `expected a comparison operator after the identifier, found ${opToken.kind === 'eof' ? 'the end' : `'${opToken.raw}'`}`);
    }
    let value: ComparisonValue;
    if (operator === 'IS NULL' || operator === 'IS NOT NULL') {
      value = { kind: 'none' };
    } else if (operator === 'IN' || operator === 'NOT IN') {
      value = this.parseList();
    } else {
      value = this.parseScalar();
    }
    const comparison = { identifier, operator, value };
    this.check(comparison, first);
    return comparison;
  }

  private parseScalar(): ComparisonValue {
    const t = this.next();
    if (t.kind === 'number') {
      const v = Number(t.text);
      if (!Number.isFinite(v)) throw this.error(t, `number '${t.raw}' is out of range`);
      return { kind: 'number', value: v };
    }
    if (t.kind === 'string') return { kind: 'string', value: t.text };
    if (t.kind === 'eof') throw this.error(t, 'expected a value (a number or a quoted string)');
    if (t.kind === 'word') throw this.error(t, `expected a value, found '${t.raw}' (quote strings: '${t.raw}')`);
    throw this.error(t, `expected a value (a number or a quoted string), found '${t.raw}'`);
  }

  private parseList(): ComparisonValue {
    const open = this.next();
    if (open.kind !== 'lparen') throw this.error(open, "expected '(' to start the IN list");
    const values: string[] = [];
    for (;;) {
      const t = this.next();
      if (t.kind !== 'string') throw this.error(t, `IN lists hold quoted strings, found ${t.kind === 'eof' ? 'the end' : `'${t.raw}'`}`);
      values.push(t.text);
      const sep = this.next();
      if (sep.kind === 'rparen') break;
      if (sep.kind !== 'comma') throw this.error(sep, `expected ',' or ')' in the IN list, found ${sep.kind === 'eof' ? 'the end' : `'${sep.raw}'`}`);
    }
    return { kind: 'list', values };
  }

  /** Type rules: numbers for metrics and time attributes, strings for the rest. */
  private check(c: Comparison, at: Token): void {
    const { identifier: id, operator: op, value } = c;
    const label = id.type === 'attribute' ? id.key : `${id.type === 'dataset' ? 'datasets' : `${id.type}s`}.${id.key}`;
    const kind: AttributeKind =
      id.type === 'metric'
        ? 'numeric'
        : id.type === 'attribute'
          ? this.schema.attributes[id.key]!
          : id.type === 'dataset'
            ? this.schema.datasetFields![id.key]!
            : 'string';
    if (op === 'IS NULL' || op === 'IS NOT NULL') return;
    if (kind === 'numeric') {
      if (op === 'LIKE' || op === 'ILIKE' || op === 'IN' || op === 'NOT IN') {
        throw this.error(at, `${label} is numeric: use =, !=, >, >=, < or <= (not ${op})`);
      }
      if (value.kind !== 'number') throw this.error(at, `${label} is numeric: compare it with a number, not a string`);
      if (id.type !== 'metric' && !Number.isSafeInteger(value.value)) {
        throw this.error(at, `${label} holds integers (milliseconds since the epoch for times): ${value.value} is not one`);
      }
      return;
    }
    if (op === '>' || op === '>=' || op === '<' || op === '<=') {
      throw this.error(at, `${label} is a string: use =, !=, LIKE, ILIKE, IN or NOT IN (not ${op})`);
    }
    if (value.kind === 'number') throw this.error(at, `${label} is a string: quote the value ('${value.value}')`);
  }
}

/**
 * Parses an MLflow `filter_string` into comparisons (implicitly ANDed). An empty or blank filter
 * gives `[]`. Syntax and type errors are 400s naming the position and the offending token.
 */
export function parseFilter(filter: string | undefined, schema: SearchSchema = RUN_SEARCH): Comparison[] {
  if (filter === undefined || filter.trim() === '') return [];
  const parser = new Parser(tokenize(filter, 'filter'), filter, 'filter', schema);
  return parser.parseFilter();
}

/**
 * Parses `order_by` clauses such as `metrics.accuracy DESC` or `start_time`. Each element may
 * itself hold several clauses separated by top-level commas (`?order_by=a DESC,b`).
 */
export function parseOrderBy(clauses: readonly string[] | undefined, schema: SearchSchema = RUN_SEARCH): OrderByClause[] {
  const out: OrderByClause[] = [];
  for (const text of clauses ?? []) {
    if (text.trim() === '') continue;
    const tokens = tokenize(text, 'order_by');
    // Split at commas outside quotes (the tokenizer already consumed quoted text).
    let group: Token[] = [];
    const flush = (at: Token): void => {
      if (group.length === 0) throw syntaxError('order_by', text, at.start, 'empty clause');
      const eof: Token = { kind: 'eof', text: '', start: at.start, end: at.start, raw: '' };
      out.push(new Parser([...group, eof], text, 'order_by', schema).parseOrderBy());
      group = [];
    };
    for (const t of tokens) {
      if (t.kind === 'comma' || t.kind === 'eof') flush(t);
      else group.push(t);
    }
  }
  return out;
}

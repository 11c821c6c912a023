// The explain trace of a decision: every rule's outcome (with why a rule's
// condition was false) and every candidate touchpoint (with why it won or
// lost), filterable by name.

import { h, icon, pill, fmtNumber, fmtValue, humanize, ident } from './dom.js';
import { state } from './state.js';

// Filters outlive a single decision, so deciding again keeps the view the
// user set up.
const filters = { q: '', hideMismatch: true, outcome: 'all' };
// Expanded rows ("why not" of a rule, a candidate's models) stay open when
// the trace is drawn again, for the next decision or when the rules index
// arrives, so what the user was reading does not snap shut.
const expanded = new Set();

const OUTCOME_FILTERS = [
  ['all', 'All outcomes'],
  ['matched', 'Matched'],
  ['not', 'Not matched'],
  ['inactive', 'Inactive'],
  ['error', 'Errors'],
];

function outcomeTone(outcome) {
  if (outcome === 'matched') return 'ok';
  if (outcome === 'condition_false') return 'muted';
  if (/error/.test(outcome)) return 'bad';
  if (/^inactive/.test(outcome)) return 'warn';
  return 'warn';
}

function outcomeLabel(outcome) {
  if (outcome === 'condition_false') return 'not matched';
  return humanize(outcome);
}

function outcomeGroup(outcome) {
  if (outcome === 'matched') return 'matched';
  if (outcome === 'condition_false') return 'not';
  if (/error/.test(outcome)) return 'error';
  if (/^inactive/.test(outcome)) return 'inactive';
  return 'other';
}

function reasonTone(reason) {
  if (reason === 'chosen') return 'ok';
  if (reason === 'placement_mismatch' || reason === 'lower_score') return 'muted';
  if (/error/.test(reason)) return 'bad';
  return 'warn';
}

// openInDrafts asks the Drafts tab to show a rule file at a line.
function openInDrafts(file, line) {
  document.dispatchEvent(new CustomEvent('touchpoint:open-file', { detail: { path: file, line } }));
}

export function renderExplain(explain, { request } = {}) {
  if (!explain) {
    return h('div', { class: 'card' }, h('div', { class: 'card-body muted' }, 'The answer carries no explanation.'));
  }
  const rules = explain.rules || [];
  const candidates = explain.candidates || [];
  const requested = new Set(((request && request.placements) || []).map((p) => p.id));

  const search = h('input', {
    type: 'search', id: 'explain-search', placeholder: 'Filter by name', value: filters.q,
    'aria-label': 'Filter rules and candidates by rule or touchpoint name', autocomplete: 'off', spellcheck: 'false',
  });
  const outcomeSel = h('select', { id: 'explain-outcome', 'aria-label': 'Show rules with outcome' },
    OUTCOME_FILTERS.map(([v, label]) => h('option', { value: v, selected: v === filters.outcome }, label)));
  const mismatch = h('input', { type: 'checkbox', id: 'hide-mismatch', checked: filters.hideMismatch });
  const rulesCount = h('span', { class: 'muted small' });
  const candCount = h('span', { class: 'muted small' });

  const rulesBody = h('tbody');
  for (const r of rules) rulesBody.append(...ruleRows(r));
  const candBody = h('tbody');
  for (const c of candidates) candBody.append(...candidateRows(c, requested));

  const counts = tally(rules);
  const chosen = candidates.filter((c) => c.chosen).length;

  function apply() {
    const q = filters.q.trim().toLowerCase();
    let shown = 0;
    let hiddenRules = 0;
    for (const tr of rulesBody.querySelectorAll('tr[data-rule]')) {
      const name = tr.dataset.rule.toLowerCase();
      const tps = (tr.dataset.touchpoints || '').toLowerCase();
      const okQ = !q || name.includes(q) || tps.includes(q);
      const okO = filters.outcome === 'all' || outcomeGroup(tr.dataset.outcome) === filters.outcome;
      // A rule that offers only for placements nobody asked for cannot
      // have changed this answer.
      const offers = tr.dataset.placements ? tr.dataset.placements.split(' ') : [];
      const elsewhere = requested.size > 0 && offers.length > 0 && !offers.some((p) => requested.has(p));
      if (elsewhere && filters.hideMismatch && okQ && okO) hiddenRules += 1;
      const vis = okQ && okO && !(elsewhere && filters.hideMismatch);
      tr.hidden = !vis;
      const why = tr.nextElementSibling;
      if (why && why.classList.contains('why-row')) why.hidden = !vis || why.dataset.open !== 'true';
      if (vis) shown += 1;
    }
    rulesCount.textContent = (shown === rules.length ? `${rules.length} rules` : `${shown} of ${rules.length} rules`) +
      (hiddenRules ? ` · ${hiddenRules} for other placements hidden` : '');
    let cshown = 0;
    let hiddenMismatch = 0;
    for (const tr of candBody.querySelectorAll('tr[data-touchpoint]')) {
      const okQ = !q || tr.dataset.touchpoint.toLowerCase().includes(q) || (tr.dataset.rule || '').toLowerCase().includes(q);
      const mis = tr.dataset.reason === 'placement_mismatch';
      if (mis && filters.hideMismatch && okQ) hiddenMismatch += 1;
      const vis = okQ && !(mis && filters.hideMismatch);
      tr.hidden = !vis;
      const more = tr.nextElementSibling;
      if (more && more.classList.contains('model-row')) more.hidden = !vis || more.dataset.open !== 'true';
      if (vis) cshown += 1;
    }
    candCount.textContent = `${cshown} of ${candidates.length} candidates` + (hiddenMismatch ? ` · ${hiddenMismatch} for other placements hidden` : '');
    candEmpty.hidden = cshown > 0;
  }

  search.addEventListener('input', () => { filters.q = search.value; apply(); });
  outcomeSel.addEventListener('change', () => { filters.outcome = outcomeSel.value; apply(); });
  mismatch.addEventListener('change', () => { filters.hideMismatch = mismatch.checked; apply(); });

  const candEmpty = h('p', { class: 'table-empty muted', hidden: true }, 'No candidate matches the filters.');

  const el = h('section', { class: 'explain', 'aria-label': 'Explanation' },
    h('div', { class: 'explain-head' },
      h('div', null,
        h('h2', null, 'Why this decision'),
        h('p', { class: 'muted small' },
          `${counts.matched} of ${rules.length} rules matched`,
          counts.inactive ? ` · ${counts.inactive} inactive` : '',
          counts.error ? ` · ${counts.error} with errors` : '',
          ` · ${candidates.length} candidates, ${chosen} chosen`)),
      h('div', { class: 'toolbar' },
        h('span', { class: 'search-wrap' }, icon('search'), search),
        outcomeSel,
        h('label', { class: 'switch-row switch-inline', for: 'hide-mismatch' }, mismatch, h('span', { class: 'switch', 'aria-hidden': 'true' }),
          h('span', null, 'Only the asked placements')))),
    h('div', { class: 'card table-card' },
      h('header', { class: 'card-head card-head-row' }, h('h3', null, 'Rules'), rulesCount),
      h('div', { class: 'table-scroll' },
        h('table', { class: 'table table-fixed', id: 'rules-table' },
          cols('c-rule', 'c-outcome', 'c-score', 'c-offers', 'c-tests', 'c-action'),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Rule'),
            h('th', { scope: 'col' }, 'Outcome'),
            h('th', { scope: 'col', class: 'num' }, 'Score'),
            h('th', { scope: 'col' }, 'Offers for'),
            h('th', { scope: 'col' }, 'Tests'),
            h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Details')))),
          rulesBody))),
    h('div', { class: 'card table-card' },
      h('header', { class: 'card-head card-head-row' }, h('h3', null, 'Candidates'), candCount),
      h('div', { class: 'table-scroll' },
        h('table', { class: 'table table-fixed', id: 'candidates-table' },
          cols('c-placement', 'c-tp', 'c-crule', 'c-prio', 'c-cscore', 'c-reason', 'c-by', 'c-model'),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Placement'),
            h('th', { scope: 'col' }, 'Touchpoint'),
            h('th', { scope: 'col' }, 'Rule'),
            h('th', { scope: 'col', class: 'num' }, 'Priority'),
            h('th', { scope: 'col', class: 'num' }, 'Score'),
            h('th', { scope: 'col' }, 'Reason'),
            h('th', { scope: 'col' }, 'Beaten by'),
            h('th', { scope: 'col' }, 'Model'))),
          candBody),
        candEmpty)));
  apply();
  return el;
}

// cols sets the column widths of a fixed-layout table, so long ids wrap
// inside their column instead of pushing the table past its card.
function cols(...classes) {
  return h('colgroup', null, classes.map((c) => h('col', { class: c })));
}

function tally(rules) {
  const t = { matched: 0, inactive: 0, error: 0 };
  for (const r of rules) {
    const g = outcomeGroup(r.outcome);
    if (g in t) t[g] += 1;
  }
  return t;
}

// ---- rules ----------------------------------------------------------------

function ruleRows(r) {
  const meta = state.rulesById.get(r.rule);
  const hasWhy = Boolean(r.failed_terms && Array.isArray(r.failed_terms.terms) && r.failed_terms.terms.length);
  const whyId = 'why-' + r.rule;
  const whyBtn = hasWhy
    ? h('button', { type: 'button', class: 'btn btn-small btn-ghost why-btn', 'aria-expanded': 'false', 'aria-controls': whyId },
      icon('chevron', 'chev'), r.outcome === 'matched' ? 'Terms' : 'Why not?')
    : null;
  const tr = h('tr', {
    dataset: {
      rule: r.rule, outcome: r.outcome, touchpoints: meta ? (meta.touchpoints || []).join(' ') : '',
      // Empty when the rules index has not arrived or the rule suppresses:
      // such rows are never hidden as being for other placements.
      placements: meta && meta.action !== 'suppress' ? (meta.placements || []).join(' ') : '',
    },
    class: r.outcome === 'matched' ? 'is-matched' : '',
  },
  h('td', null,
    h('div', { class: 'cell-main' },
      h('code', { class: 'rule-name' }, ident(r.rule)),
      r.action && r.action !== 'offer' ? h('span', { class: 'tag' }, r.action) : null,
      meta && meta.file ? h('button', { type: 'button', class: 'btn-link file-link', title: `Open ${meta.file} at line ${meta.line} in Drafts`, onclick: () => openInDrafts(meta.file, meta.line) },
        `${meta.file}:${meta.line}`) : null),
    meta && meta.description ? h('div', { class: 'muted small clip', title: meta.description }, meta.description) : null),
  h('td', null,
    pill(outcomeLabel(r.outcome), outcomeTone(r.outcome), { class: 'outcome', title: r.outcome, dataset: { outcome: r.outcome } }),
    r.error ? h('div', { class: 'cell-error small' }, r.error) : null),
  h('td', { class: 'num' }, r.score == null ? h('span', { class: 'muted' }, '—') : fmtNumber(r.score)),
  h('td', null, meta && meta.placements && meta.placements.length
    ? h('div', { class: 'chips' }, meta.placements.map((p) => h('span', { class: 'chip' }, p)))
    : h('span', { class: 'muted' }, '—')),
  h('td', null, fixtureCell(meta)),
  h('td', { class: 'cell-action' }, whyBtn));
  if (!hasWhy) return [tr];
  const why = h('tr', { class: 'why-row', id: whyId, hidden: true, dataset: { open: 'false', whyFor: r.rule } },
    h('td', { colspan: 6 }, h('div', { class: 'why' }, termsTree(r.failed_terms, true))));
  expandable(whyBtn, tr, why, 'why:' + r.rule);
  return [tr, why];
}

// expandable wires a button that shows and hides the detail row under
// row; key remembers the state across redraws.
function expandable(btn, row, detail, key) {
  const set = (open) => {
    detail.dataset.open = String(open);
    detail.hidden = !open;
    btn.setAttribute('aria-expanded', String(open));
    row.classList.toggle('is-open', open);
    if (open) expanded.add(key);
    else expanded.delete(key);
  };
  btn.addEventListener('click', () => set(detail.dataset.open !== 'true'));
  if (expanded.has(key)) set(true);
}

function fixtureCell(meta) {
  if (!state.rules) return h('span', { class: 'muted' }, '…');
  if (!meta) return h('span', { class: 'muted small' }, 'unknown rule');
  const fx = meta.fixtures || [];
  if (!fx.length) return pill('no tests', 'warn', { title: 'No fixture covers this rule' });
  const failed = fx.filter((f) => !f.passed).length;
  // Failing tests first: they are what needs attention.
  const ordered = [...fx.filter((f) => !f.passed), ...fx.filter((f) => f.passed)];
  const shown = ordered.slice(0, failed ? failed : 1);
  const list = (items) => h('ul', { class: 'fixtures' }, items.map((f) =>
    h('li', { class: f.passed ? 'is-pass' : 'is-fail', title: `${f.file}:${f.line}${f.outcome ? ' · ' + f.outcome : ''}` },
      icon(f.passed ? 'check' : 'x', f.passed ? 'ok' : 'bad'),
      h('span', { class: 'sr-only' }, f.passed ? 'passes: ' : 'fails: '),
      h('span', { class: 'clip' }, f.name))));
  return h('div', { class: 'fixture-cell' },
    failed ? pill(`${failed} failing`, 'bad') : null,
    list(shown),
    fx.length > shown.length
      ? h('details', { class: 'more' }, h('summary', null, `${fx.length - shown.length} more test${fx.length - shown.length > 1 ? 's' : ''}`), list(ordered.slice(shown.length)))
      : null);
}

function opLabel(op) {
  if (op === 'and') return 'All of (and)';
  if (op === 'or') return 'Any of (or)';
  return '';
}

// termsTree shows a condition's terms with the value each had; segments
// open into their own terms.
function termsTree(ft, top = false) {
  const label = opLabel(ft.op);
  return h('div', { class: 'terms' + (top ? ' terms-top' : '') },
    label || ft.touchpoint
      ? h('div', { class: 'terms-op' }, label,
        ft.touchpoint ? h('span', { class: 'muted' }, (label ? ' · ' : '') + 'for touchpoint ', h('code', null, ft.touchpoint)) : null)
      : null,
    h('ul', { class: 'term-list' }, (ft.terms || []).map(termItem)));
}

function termItem(t) {
  const isErr = t.error != null;
  const value = isErr ? 'error' : t.value;
  const tone = isErr ? 'bad' : value === true ? 'ok' : value === false ? 'bad' : 'muted';
  const nested = Array.isArray(t.terms) && t.terms.length;
  return h('li', { class: `term term-${tone}`, dataset: { term: t.term, value: String(value) } },
    h('div', { class: 'term-line' },
      h('span', { class: 'term-mark', 'aria-hidden': 'true' }, icon(isErr ? 'alert' : value === true ? 'check' : 'x')),
      h('code', { class: 'term-code' }, t.term),
      h('span', { class: `term-value tv-${tone}` }, isErr ? 'error' : fmtValue(value)),
      t.segment ? h('span', { class: 'muted small' }, 'segment ', h('code', null, t.segment)) : null),
    isErr ? h('div', { class: 'cell-error small' }, t.error) : null,
    nested ? termsTree({ op: t.op || '', terms: t.terms }) : null);
}

// ---- candidates -------------------------------------------------------------

function candidateRows(c, requested) {
  const hasModels = Array.isArray(c.models) && c.models.length;
  const rowId = `cand-${c.placement}-${c.touchpoint}-${c.rule}`.replace(/[^a-zA-Z0-9_-]/g, '_');
  const modelBtn = hasModels
    ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-expanded': 'false', 'aria-controls': rowId },
      icon('chevron', 'chev'), h('span', null, ident(c.models[0].model), ' ', h('strong', null, fmtNumber(c.models[0].output))))
    : h('span', { class: 'muted' }, '—');
  const tr = h('tr', {
    class: (c.chosen ? 'is-chosen' : '') + (requested.size && !requested.has(c.placement) ? ' is-other' : ''),
    dataset: { touchpoint: c.touchpoint, rule: c.rule || '', reason: c.reason, placement: c.placement },
  },
  h('td', null, h('code', null, ident(c.placement))),
  h('td', null, h('div', { class: 'cell-main cell-tp' }, c.chosen ? icon('check', 'ok') : null, h('code', null, ident(c.touchpoint)))),
  h('td', null, c.rule ? h('code', { class: 'muted-code' }, ident(c.rule)) : h('span', { class: 'muted' }, '—')),
  h('td', { class: 'num' }, c.priority == null ? '' : fmtNumber(c.priority)),
  h('td', { class: 'num', title: scoreTitle(c) }, c.score == null ? '' : fmtNumber(c.score)),
  h('td', null, pill(humanize(c.reason), reasonTone(c.reason), { class: 'reason', dataset: { reason: c.reason } })),
  h('td', null, c.by ? h('code', null, ident(c.by)) : h('span', { class: 'muted' }, '—')),
  h('td', null, modelBtn));
  if (!hasModels) return [tr];
  const more = h('tr', { class: 'model-row', id: rowId, hidden: true, dataset: { open: 'false' } },
    h('td', { colspan: 8 }, modelDetails(c)));
  expandable(modelBtn, tr, more, 'model:' + rowId);
  return [tr, more];
}

function scoreTitle(c) {
  const parts = [];
  if (c.rule_score != null) parts.push(`rule score ${fmtNumber(c.rule_score)}`);
  if (c.propensity != null) parts.push(`propensity ${fmtNumber(c.propensity)}`);
  if (c.value != null) parts.push(`value ${fmtNumber(c.value)}`);
  if (c.lever != null) parts.push(`lever ${fmtNumber(c.lever)}`);
  return parts.join(' × ');
}

function modelDetails(c) {
  const factors = [['rule score', c.rule_score], ['propensity', c.propensity], ['value', c.value], ['lever', c.lever]]
    .filter(([, v]) => v != null);
  return h('div', { class: 'models' },
    factors.length ? h('div', { class: 'score-formula' },
      h('span', { class: 'muted' }, 'score'), h('strong', null, fmtNumber(c.score)), h('span', { class: 'muted' }, '='),
      factors.map(([k, v], i) => [i ? h('span', { class: 'muted' }, '×') : null, h('span', { class: 'factor' }, h('span', { class: 'muted small' }, k), ' ', fmtNumber(v))])) : null,
    c.models.map((md) => {
      const top = md.top || [];
      const max = Math.max(1e-9, ...top.map((t) => Math.abs(t.contribution)));
      return h('div', { class: 'model' },
        h('div', { class: 'model-head' },
          h('code', null, md.model), h('span', { class: 'muted' }, 'output'), h('strong', null, fmtNumber(md.output)),
          md.bias != null ? h('span', { class: 'muted small' }, `bias ${fmtNumber(md.bias)}`) : null),
        top.length ? h('div', { class: 'contribs', role: 'list', 'aria-label': 'Inputs that moved the output most' }, top.map((t) => {
          const pct = (Math.abs(t.contribution) / max) * 50;
          const pos = t.contribution >= 0;
          // Sized through the CSSOM rather than a style attribute.
          const bar = h('span', { class: 'bar ' + (pos ? 'bar-pos' : 'bar-neg') });
          bar.style.width = `${pct}%`;
          bar.style[pos ? 'left' : 'right'] = '50%';
          return h('div', { class: 'contrib', role: 'listitem' },
            h('code', { class: 'contrib-name' }, t.input),
            h('span', { class: 'contrib-val muted small' }, md.inputs && t.input in md.inputs ? fmtValue(md.inputs[t.input]) : ''),
            h('span', { class: 'bar-track', 'aria-hidden': 'true' }, bar),
            h('span', { class: 'contrib-num ' + (pos ? 'ok-text' : 'bad-text') }, (pos ? '+' : '') + fmtNumber(t.contribution)));
        })) : null,
        md.inputs ? h('details', { class: 'kv-details' }, h('summary', null, `${Object.keys(md.inputs).length} inputs`),
          h('dl', { class: 'kv kv-compact' }, Object.entries(md.inputs).map(([k, v]) => [h('dt', null, k), h('dd', null, fmtValue(v))]))) : null);
    }));
}


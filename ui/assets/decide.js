// The Decide tab: who (a customer, with stored or edited features), where
// (the request context and placements) and when (what-if time, consent and
// contact history) on the left; the decision and its explanation on the
// right.

import { get, post, ApiError } from './api.js';
import { h, icon, pill, replace, fmtValue, fmtNumber, humanize, uid, toast } from './dom.js';
import { state, subscribe } from './state.js';
import { renderExplain } from './explain.js';

const DEFAULT_PLACEMENT = 'home_hero';
// Suggestions only: any path may be typed.
const PAGE_SUGGESTIONS = ['/', '/cart', '/checkout', '/account'];

export function mountDecide(root) {
  const m = {
    customer: null, // the looked-up customer (GET /v1/customers/{id})
    lookedUpId: '',
    features: {}, // the features the form or JSON shows
    edited: false, // features differ from the stored ones on purpose
    mode: 'stored', // stored | form | json
    jsonError: '',
    placementSel: new Map([[DEFAULT_PLACEMENT, 1]]),
    context: { channel: 'web' },
    consent: {}, // channel -> 'granted' | 'denied' (absent: stored)
    ignoreHistory: false,
    now: '',
    last: null, // {req, resp}
    seq: 0,
    aborter: null,
    fieldEls: new Map(), // API error field -> input element
  };

  // ---- layout -------------------------------------------------------------
  const custInput = h('input', {
    id: 'customer-id', type: 'text', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'e.g. c-000042', 'aria-describedby': 'customer-id-error',
  });
  const lookupBtn = h('button', { type: 'button', class: 'btn', id: 'customer-lookup' }, 'Look up');
  const custError = h('p', { class: 'field-error', id: 'customer-id-error', 'aria-live': 'polite' });
  const summary = h('div', { class: 'customer-summary', id: 'customer-summary', 'aria-live': 'polite' });
  const featureModeBar = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Customer features' });
  const editedBadge = h('div', { class: 'whatif-flag', id: 'features-edited', hidden: true },
    icon('info'), h('span', null, 'What-if: edited features'),
    h('button', { type: 'button', class: 'btn-link', id: 'features-reset' }, 'Reset'));
  const featurePane = h('div', { class: 'feature-pane', id: 'feature-pane' });

  const contextGrid = h('div', { class: 'form-grid', id: 'context-form' });
  const placementList = h('div', { class: 'placement-list', id: 'placement-list', role: 'group', 'aria-label': 'Placements' });
  const placementError = h('p', { class: 'field-error', 'aria-live': 'polite' });

  const nowInput = h('input', { id: 'whatif-now', type: 'datetime-local', step: '60', 'aria-describedby': 'whatif-now-help' });
  const nowHelp = h('p', { class: 'help', id: 'whatif-now-help' });
  const nowClear = h('button', { type: 'button', class: 'btn btn-small', id: 'whatif-now-clear' }, 'Now');
  const consentBox = h('div', { class: 'consent-list', id: 'consent-list' });
  const historyToggle = h('input', { type: 'checkbox', id: 'whatif-history', role: 'switch' });

  const decideBtn = h('button', { type: 'submit', class: 'btn btn-primary btn-block', id: 'decide-btn' },
    h('span', { class: 'btn-label' }, 'Decide'), h('kbd', { class: 'kbd' }, isMac() ? '⌘ ↵' : 'Ctrl ↵'));

  const form = h('form', { class: 'decide-inputs', id: 'decide-form', novalidate: true, 'aria-label': 'Decision request' },
    h('div', { class: 'decide-actions' }, decideBtn),
    card('Customer', null,
      h('div', { class: 'field' },
        h('label', { for: 'customer-id' }, 'Customer id'),
        h('div', { class: 'input-row' }, custInput, lookupBtn),
        custError),
      summary,
      h('div', { class: 'features-head' },
        h('span', { class: 'subhead' }, 'Features'), featureModeBar),
      editedBadge,
      featurePane),
    card('Context', 'Where the touchpoint will be shown.', contextGrid),
    card('Placements', 'The slots to fill.', placementList, placementError),
    card('What if', 'Decide under other conditions. Playground decisions are previews: nothing is logged or counted.',
      h('div', { class: 'field' },
        h('label', { for: 'whatif-now' }, 'Decide as if at'),
        h('div', { class: 'input-row' }, nowInput, nowClear),
        nowHelp,
        h('p', { class: 'field-error', id: 'whatif-now-error', 'aria-live': 'polite' })),
      h('div', { class: 'field' },
        h('span', { class: 'label', id: 'consent-label' }, 'Consent'),
        consentBox),
      h('label', { class: 'switch-row', for: 'whatif-history' },
        historyToggle,
        h('span', { class: 'switch', 'aria-hidden': 'true' }),
        h('span', null, h('span', { class: 'switch-title' }, 'Ignore contact history'),
          h('span', { class: 'help' }, 'As if the customer had seen and done nothing yet: no frequency caps, empty counters.')))));

  const results = h('div', { class: 'results', id: 'results', 'aria-live': 'polite', 'aria-busy': 'false' });
  const explainHost = h('div', { class: 'explain-host', id: 'explain' });
  replace(results, emptyResults());

  root.append(h('div', { class: 'decide-layout' }, form, h('div', { class: 'decide-output' }, results, explainHost)));

  // ---- customer -------------------------------------------------------------
  async function lookUp() {
    const id = custInput.value.trim();
    setFieldError(custInput, custError, '');
    if (!id) {
      setFieldError(custInput, custError, 'Enter a customer id, or any visitor id.');
      custInput.focus();
      return false;
    }
    lookupBtn.disabled = true;
    try {
      const c = await get('/v1/customers/' + encodeURIComponent(id), { quiet: true });
      const sameCustomer = m.lookedUpId === id;
      m.customer = c;
      m.lookedUpId = id;
      if (!sameCustomer) resetFeatures(false);
      renderSummary();
      renderFeatures();
      renderConsent();
      return true;
    } catch (err) {
      // A server that cannot be reached is announced once, in a toast; it
      // is not a problem of the id.
      if (err instanceof ApiError && err.status !== 401 && err.status !== 0) {
        setFieldError(custInput, custError, err.message);
      }
      return false;
    } finally {
      lookupBtn.disabled = false;
    }
  }

  function renderSummary() {
    const c = m.customer;
    if (!c) {
      replace(summary);
      return;
    }
    const f = c.features || {};
    const name = f.first_name || c.customer_id;
    const facts = [];
    for (const k of ['tier', 'stage', 'lifecycle', 'language', 'preferred_channel', 'timezone']) {
      if (f[k] != null && f[k] !== '') facts.push(h('span', { class: 'fact' }, h('span', { class: 'fact-k' }, humanize(k)), ' ', h('span', { class: 'fact-v' }, fmtValue(f[k]))));
    }
    for (const k of ['ltv', 'cart_value']) {
      if (typeof f[k] === 'number') facts.push(h('span', { class: 'fact' }, h('span', { class: 'fact-k' }, humanize(k)), ' ', h('span', { class: 'fact-v' }, fmtNumber(f[k]))));
    }
    // Consent recorded through the API wins; without a record the contact
    // policy reads the consent features the data platform supplies.
    const consentState = new Map();
    for (const [k, v] of Object.entries(f)) {
      if (k.startsWith('consent_') && typeof v === 'boolean') consentState.set(k.slice(8), { granted: v, from: 'feature ' + k });
    }
    for (const [ch, v] of Object.entries(c.consent || {})) {
      consentState.set(ch, { granted: Boolean(v && v.granted), from: v && v.at ? 'recorded ' + v.at : 'recorded' });
    }
    const consent = [...consentState].map(([ch, v]) =>
      pill(ch, v.granted ? 'ok' : 'muted', { title: `${ch}: ${v.granted ? 'granted' : 'not granted'} (${v.from})` }));
    const counters = (c.counters || []).reduce((n, x) => n + (x.count || 0), 0);
    replace(summary,
      h('div', { class: 'avatar', 'aria-hidden': 'true' }, String(name).slice(0, 1).toUpperCase()),
      h('div', { class: 'summary-main' },
        h('div', { class: 'summary-title' },
          h('strong', null, name),
          f.first_name ? h('code', { class: 'muted' }, c.customer_id) : null,
          c.known ? pill('known', 'ok') : pill('unknown', 'muted', { title: 'No stored features: decided on context and defaults' })),
        facts.length ? h('div', { class: 'facts' }, facts) : h('div', { class: 'muted small' }, c.known ? 'No profile fields.' : 'Not in the store: rules see every feature at its default.'),
        consent.length || counters ? h('div', { class: 'facts' },
          consent.length ? h('span', { class: 'fact-k' }, 'consent') : null, consent,
          counters ? h('span', { class: 'muted small' }, `${counters} events in history`) : null) : null));
  }

  // ---- features ---------------------------------------------------------------
  const modes = [['stored', 'Stored'], ['form', 'Edit'], ['json', 'JSON']];
  for (const [value, label] of modes) {
    const id = uid('fmode');
    featureModeBar.append(
      h('input', { type: 'radio', name: 'feature-mode', id, value, checked: value === m.mode, class: 'seg-input' }),
      h('label', { for: id, class: 'seg-label' }, label));
  }
  featureModeBar.addEventListener('change', (ev) => {
    const next = ev.target.value;
    if (m.mode === 'json' && next !== 'json' && !applyJSON()) {
      // Stay in JSON until it parses, so no edit is silently lost.
      featureModeBar.querySelector('input[value="json"]').checked = true;
      return;
    }
    m.mode = next;
    renderFeatures();
    updateEditedFlag();
  });

  function storedFeatures() {
    return (m.customer && m.customer.features) || {};
  }

  function resetFeatures(render = true) {
    m.features = structuredClone(storedFeatures());
    m.edited = false;
    m.jsonError = '';
    if (render) {
      m.mode = 'stored';
      featureModeBar.querySelector('input[value="stored"]').checked = true;
      renderFeatures();
    }
    updateEditedFlag();
  }
  editedBadge.querySelector('#features-reset').addEventListener('click', () => resetFeatures(true));

  function markEdited() {
    m.edited = true;
    updateEditedFlag();
  }

  // usesEdits says whether the decision uses the edited features: the
  // mode chooses, so switching to Stored sets edits aside without losing
  // them.
  function usesEdits() {
    return m.edited && m.mode !== 'stored';
  }

  function updateEditedFlag() {
    editedBadge.hidden = !usesEdits();
  }

  function schemaFeatures() {
    return (state.schema && state.schema.features) || [];
  }

  function renderFeatures() {
    if (m.mode === 'stored') {
      const f = storedFeatures();
      const keys = Object.keys(f).sort();
      if (!m.customer) {
        replace(featurePane, h('p', { class: 'muted small' }, 'Look up a customer to see their stored features, or edit features to try a profile that does not exist.'));
        return;
      }
      replace(featurePane, keys.length
        ? h('details', { class: 'kv-details' },
          h('summary', null, `${keys.length} stored features`),
          h('dl', { class: 'kv' }, keys.map((k) => [h('dt', null, k), h('dd', null, fmtValue(f[k]))])))
        : h('p', { class: 'muted small' }, 'No stored features; every feature has its default.'));
      return;
    }
    if (m.mode === 'json') {
      const ta = h('textarea', {
        class: 'json-input', id: 'features-json', rows: 14, spellcheck: 'false',
        'aria-label': 'Customer features as JSON', 'aria-describedby': 'features-json-error',
      });
      ta.value = JSON.stringify(m.features, null, 2);
      const err = h('p', { class: 'field-error', id: 'features-json-error', 'aria-live': 'polite' }, m.jsonError);
      ta.addEventListener('input', () => {
        markEdited();
        applyJSON();
      });
      m.fieldEls.set('what_if.features.json', ta);
      replace(featurePane, ta, err, h('p', { class: 'help' }, 'An object of feature name to value. It replaces the stored features entirely.'));
      return;
    }
    // The form: one input per schema feature.
    const defs = schemaFeatures();
    if (!defs.length) {
      replace(featurePane, h('p', { class: 'muted small' }, 'Loading the feature schema…'));
      return;
    }
    const grid = h('div', { class: 'form-grid feature-grid', id: 'features-form' });
    for (const def of defs) grid.append(featureField(def));
    const filter = h('input', { type: 'search', class: 'feature-filter', placeholder: `Filter ${defs.length} features`, 'aria-label': 'Filter features by name', 'aria-controls': 'features-form' });
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      for (const f of grid.children) f.hidden = Boolean(q) && !f.dataset.feature.includes(q);
    });
    replace(featurePane, h('span', { class: 'search-wrap search-block' }, icon('search'), filter), grid);
  }

  // applyJSON parses the JSON pane into m.features; it reports whether the
  // text is a valid object and shows why when not.
  function applyJSON() {
    const ta = featurePane.querySelector('#features-json');
    const err = featurePane.querySelector('#features-json-error');
    if (!ta) return true;
    let v;
    try {
      v = JSON.parse(ta.value || '{}');
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('The features must be a JSON object: {"tier": "gold", …}');
    } catch (e) {
      m.jsonError = e.message;
      ta.setAttribute('aria-invalid', 'true');
      if (err) err.textContent = m.jsonError;
      return false;
    }
    m.jsonError = '';
    ta.setAttribute('aria-invalid', 'false');
    if (err) err.textContent = '';
    m.features = v;
    return true;
  }

  function featureField(def) {
    const id = uid('feat');
    const name = def.name;
    const cur = name in m.features ? m.features[name] : def.default;
    const label = h('label', { for: id, title: def.description || '' },
      h('code', null, name),
      def.protected ? h('span', { class: 'tag tag-warn', title: 'Protected attribute: take care when rules read it' }, 'protected') : null,
      def.counter ? h('span', { class: 'tag', title: 'Computed from events at decision time' }, 'counter') : null);
    let input;
    const set = (v) => {
      m.features[name] = v;
      markEdited();
    };
    const errEl = h('p', { class: 'field-error', 'aria-live': 'polite' });
    if (def.counter) {
      input = h('input', { id, type: 'text', readonly: true, value: cur == null ? 'from events' : fmtValue(cur), class: 'is-readonly', title: 'Computed from the customer\'s events; not editable' });
    } else if (def.type === 'bool') {
      input = h('input', { id, type: 'checkbox', checked: Boolean(cur) });
      input.addEventListener('change', () => set(input.checked));
      m.fieldEls.set('what_if.features.' + name, input);
      return h('div', { class: 'field field-check', title: def.description || '', dataset: { feature: name.toLowerCase() } },
        h('div', { class: 'check-row' }, input, label), errEl);
    } else if (Array.isArray(def.values) && def.values.length) {
      const opts = [...def.values];
      if (cur != null && cur !== '' && !opts.includes(cur)) opts.unshift(cur);
      input = h('select', { id }, opts.map((v) => h('option', { value: v, selected: v === cur }, v)));
      if (cur == null || cur === '') input.prepend(h('option', { value: '', selected: true }, '—'));
      input.addEventListener('change', () => set(input.value));
    } else if (def.type === 'number') {
      input = h('input', { id, type: 'number', step: 'any', value: cur == null ? '' : String(cur), inputmode: 'decimal' });
      input.addEventListener('input', () => {
        if (input.value === '') {
          delete m.features[name];
          markEdited();
        } else if (Number.isFinite(input.valueAsNumber)) {
          set(input.valueAsNumber);
        }
      });
    } else if (def.type === 'list') {
      input = h('input', { id, type: 'text', value: Array.isArray(cur) ? cur.join(', ') : '', placeholder: 'comma, separated' });
      input.addEventListener('input', () => set(input.value.split(',').map((x) => x.trim()).filter(Boolean)));
    } else {
      input = h('input', { id, type: 'text', value: cur == null ? '' : String(cur) });
      input.addEventListener('input', () => set(input.value));
    }
    m.fieldEls.set('what_if.features.' + name, input);
    return h('div', { class: 'field', dataset: { feature: name.toLowerCase() } }, label, input, errEl);
  }

  // ---- context ----------------------------------------------------------------
  function renderContext() {
    const defs = (state.schema && state.schema.context) || [];
    m.fieldEls.forEach((el, k) => { if (k.startsWith('context.')) m.fieldEls.delete(k); });
    if (!defs.length) {
      replace(contextGrid, h('p', { class: 'muted small' }, 'Loading…'));
      return;
    }
    const fields = defs.map((def) => {
      const id = 'ctx-' + def.name;
      const errId = id + '-error';
      if (!(def.name in m.context) && def.default != null) m.context[def.name] = def.default;
      const cur = m.context[def.name] ?? '';
      let input;
      if (Array.isArray(def.values) && def.values.length) {
        input = h('select', { id, name: def.name, 'aria-describedby': errId, required: Boolean(def.required) },
          def.required ? null : h('option', { value: '' }, '—'),
          def.values.map((v) => h('option', { value: v, selected: v === cur }, v)));
        if (def.required && !cur) {
          input.prepend(h('option', { value: '', selected: true, disabled: true }, 'Choose…'));
        }
      } else {
        const listId = def.name === 'page' ? 'page-suggestions' : null;
        input = h('input', {
          id, name: def.name, type: 'text', value: cur, autocomplete: 'off', spellcheck: 'false',
          list: listId, 'aria-describedby': errId, required: Boolean(def.required),
          placeholder: def.name === 'page' ? '/cart' : '',
        });
      }
      input.addEventListener(input.tagName === 'SELECT' ? 'change' : 'input', () => {
        const v = input.value.trim();
        if (v) m.context[def.name] = v;
        else delete m.context[def.name];
        setFieldError(input, input.parentElement.querySelector('.field-error'), '');
      });
      m.fieldEls.set('context.' + def.name, input);
      return h('div', { class: 'field', title: def.description || '' },
        h('label', { for: id }, humanize(def.name), def.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null,
          def.required ? h('span', { class: 'sr-only' }, ' (required)') : null),
        input,
        h('p', { class: 'field-error', id: errId, 'aria-live': 'polite' }));
    });
    replace(contextGrid, fields,
      h('datalist', { id: 'page-suggestions' }, PAGE_SUGGESTIONS.map((p) => h('option', { value: p }))));
  }

  // ---- placements -------------------------------------------------------------
  function renderPlacements() {
    const defs = (state.schema && state.schema.placements) || [];
    if (!defs.length) {
      replace(placementList, h('p', { class: 'muted small' }, 'Loading…'));
      return;
    }
    // Forget selections of placements the ruleset no longer has.
    for (const id of [...m.placementSel.keys()]) if (!defs.some((d) => d.id === id)) m.placementSel.delete(id);
    replace(placementList, defs.map((def) => {
      const id = 'pl-' + def.id;
      const max = def.max_count || def.count || 1;
      const checked = m.placementSel.has(def.id);
      const box = h('input', { type: 'checkbox', id, value: def.id, checked, dataset: { placement: def.id } });
      const count = max > 1
        ? h('input', {
          type: 'number', class: 'count-input', min: 1, max, step: 1,
          value: String(m.placementSel.get(def.id) || def.count || 1), disabled: !checked,
          'aria-label': `How many for ${def.id} (at most ${max})`, title: `1 to ${max}`,
          dataset: { countFor: def.id },
        })
        : null;
      box.addEventListener('change', () => {
        if (box.checked) m.placementSel.set(def.id, count ? clampCount(count, max) : 1);
        else m.placementSel.delete(def.id);
        if (count) count.disabled = !box.checked;
        placementError.textContent = '';
      });
      if (count) {
        count.addEventListener('input', () => {
          if (box.checked) m.placementSel.set(def.id, clampCount(count, max));
        });
        count.addEventListener('change', () => { count.value = String(clampCount(count, max)); });
      }
      return h('div', { class: 'placement-row' + (checked ? ' is-on' : '') },
        box,
        h('label', { for: id },
          h('code', null, def.id),
          def.description ? h('span', { class: 'muted small' }, def.description) : null),
        count ? h('span', { class: 'count-wrap' }, count, h('span', { class: 'muted small' }, `/ ${max}`)) : null);
    }));
  }

  placementList.addEventListener('change', (ev) => {
    const row = ev.target.closest('.placement-row');
    if (row && ev.target.type === 'checkbox') row.classList.toggle('is-on', ev.target.checked);
  });

  // ---- what-if ----------------------------------------------------------------
  function updateNowHelp() {
    const iso = nowISO();
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
    nowHelp.textContent = iso
      ? `In your time zone (${zone}); sent as ${iso}.`
      : `Empty: decide at the server's current time. Times are in your time zone (${zone}).`;
  }
  nowInput.addEventListener('input', () => {
    m.now = nowInput.value;
    updateNowHelp();
    setFieldError(nowInput, form.querySelector('#whatif-now-error'), '');
  });
  nowClear.addEventListener('click', () => {
    nowInput.value = '';
    m.now = '';
    updateNowHelp();
  });
  m.fieldEls.set('now', nowInput);
  updateNowHelp();

  function nowISO() {
    if (!m.now) return '';
    const d = new Date(m.now); // datetime-local values are read as local time
    if (Number.isNaN(d.getTime())) return '';
    return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  function renderConsent() {
    const channels = (state.schema && state.schema.consent_channels) || [];
    if (!channels.length) {
      replace(consentBox, h('p', { class: 'muted small' }, state.schema ? 'The contact policy asks no channel for consent.' : 'Loading…'));
      return;
    }
    const stored = (m.customer && m.customer.consent) || {};
    replace(consentBox, channels.map((ch) => {
      const name = 'consent-' + ch;
      const cur = m.consent[ch] || 'stored';
      const st = stored[ch] || (m.customer && typeof (m.customer.features || {})['consent_' + ch] === 'boolean'
        ? { granted: m.customer.features['consent_' + ch] } : null);
      const storedLabel = st ? `Stored (${st.granted ? 'yes' : 'no'})` : 'Stored';
      const group = h('div', { class: 'segmented segmented-small', role: 'radiogroup', 'aria-label': `Consent for ${ch}`, dataset: { consent: ch } });
      for (const [value, label] of [['stored', storedLabel], ['granted', 'Granted'], ['denied', 'Denied']]) {
        const id = uid('cons');
        group.append(
          h('input', { type: 'radio', class: 'seg-input', name, id, value, checked: value === cur }),
          h('label', { class: 'seg-label', for: id }, label));
      }
      group.addEventListener('change', (ev) => {
        if (ev.target.value === 'stored') delete m.consent[ch];
        else m.consent[ch] = ev.target.value;
      });
      return h('div', { class: 'consent-row' }, h('code', null, ch), group);
    }));
  }
  historyToggle.addEventListener('change', () => { m.ignoreHistory = historyToggle.checked; });

  // ---- deciding ---------------------------------------------------------------
  function buildRequest() {
    const problems = [];
    const customerId = custInput.value.trim();
    if (!customerId) problems.push(['customer_id', 'Enter a customer id, or any visitor id.']);
    const context = {};
    for (const def of (state.schema && state.schema.context) || []) {
      const v = (m.context[def.name] ?? '').toString().trim();
      if (v) context[def.name] = v;
      else if (def.required) problems.push(['context.' + def.name, `${humanize(def.name)} is required.`]);
    }
    if (!state.schema) {
      // Without the schema the form has not been generated; send what the
      // user has, the server will say what is missing.
      Object.assign(context, m.context);
    }
    const placements = [...m.placementSel.entries()].map(([id, count]) => ({ id, count }));
    if (!placements.length) problems.push(['placements', 'Choose at least one placement.']);
    if (m.mode === 'json' && !applyJSON()) problems.push(['what_if.features.json', m.jsonError]);
    if (m.now && !nowISO()) problems.push(['now', 'Enter a full date and time.']);

    const body = { customer_id: customerId, placements, context, explain: true };
    const nowIso = nowISO();
    if (nowIso) body.now = nowIso;
    const whatIf = {};
    if (usesEdits()) whatIf.features = m.features;
    const consent = {};
    for (const [ch, v] of Object.entries(m.consent)) consent[ch] = v === 'granted';
    if (Object.keys(consent).length) whatIf.consent = consent;
    if (m.ignoreHistory) whatIf.history = 'none';
    // what_if is always sent, empty when nothing is overridden: it makes
    // the decision a preview, so trying things here never counts
    // impressions, experiment exposures or lands in the decision log that
    // replay and evaluation read.
    body.what_if = whatIf;
    return { body, problems };
  }

  function clearErrors() {
    for (const el of form.querySelectorAll('[aria-invalid="true"]')) el.setAttribute('aria-invalid', 'false');
    for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
    placementError.textContent = '';
  }

  // showFieldError puts an error next to the input it is about; it reports
  // whether such an input exists.
  function showFieldError(field, message, placements) {
    if (!field) return false;
    if (field === 'customer_id') {
      setFieldError(custInput, custError, message);
      return true;
    }
    const pm = /^placements(?:\[(\d+)\])?/.exec(field);
    if (pm) {
      placementError.textContent = message;
      const idx = pm[1] == null ? -1 : Number(pm[1]);
      const p = placements && placements[idx];
      const target = p && (placementList.querySelector(`[data-count-for="${cssEscape(p.id)}"]`) || placementList.querySelector(`[data-placement="${cssEscape(p.id)}"]`));
      if (target) target.setAttribute('aria-invalid', 'true');
      return true;
    }
    let key = field;
    if (field.startsWith('what_if.features') && m.mode === 'json') key = 'what_if.features.json';
    if (field.startsWith('what_if.consent') || field.startsWith('what_if.history')) {
      consentBox.setAttribute('aria-invalid', 'true');
      return false;
    }
    const el = m.fieldEls.get(key);
    if (!el || !el.isConnected) return false;
    const err = el.closest('.field')?.querySelector('.field-error') || el.parentElement.querySelector('.field-error');
    setFieldError(el, err, message);
    el.scrollIntoView({ block: 'nearest' });
    return true;
  }

  async function decide() {
    clearErrors();
    const id = custInput.value.trim();
    if (id && id !== m.lookedUpId) {
      // Keep the summary (and the stored features the form starts from)
      // about the customer being decided.
      await lookUp();
    }
    const { body, problems } = buildRequest();
    if (problems.length) {
      for (const [field, msg] of problems) showFieldError(field, msg, body.placements);
      const first = form.querySelector('[aria-invalid="true"]');
      if (first) first.focus();
      replace(results, errorCard('Fix the highlighted fields', problems.map(([, msg]) => msg).join(' ')));
      return;
    }
    const seq = ++m.seq;
    if (m.aborter) m.aborter.abort();
    m.aborter = new AbortController();
    setBusy(true);
    try {
      const resp = await post('/v1/decide', body, { quiet: true, signal: m.aborter.signal });
      if (seq !== m.seq) return;
      m.last = { req: body, resp };
      renderDecision(body, resp);
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      if (seq !== m.seq) return;
      if (err instanceof ApiError) {
        if (err.status === 401) return;
        const placed = showFieldError(err.field, err.message, body.placements);
        replace(results, errorCard(err.status === 0 ? 'The server could not be reached' : `The request was refused (${err.code})`,
          err.message, placed ? 'The field is marked on the left.' : ''));
        replace(explainHost);
        if (err.status >= 500) toast(err.message, { tone: 'error', title: `Server error ${err.status}` });
      } else {
        throw err;
      }
    } finally {
      if (seq === m.seq) setBusy(false);
    }
  }

  function setBusy(on) {
    decideBtn.disabled = on;
    decideBtn.querySelector('.btn-label').textContent = on ? 'Deciding…' : 'Decide';
    results.setAttribute('aria-busy', String(on));
    results.classList.toggle('is-busy', on);
  }

  function renderDecision(req, resp) {
    const placementDefs = new Map(((state.schema && state.schema.placements) || []).map((p) => [p.id, p]));
    const order = req.placements.map((p) => p.id);
    for (const id of Object.keys(resp.placements || {})) if (!order.includes(id)) order.push(id);
    const flags = [];
    if (req.what_if && req.what_if.features) flags.push(pill('What-if: edited features', 'accent'));
    if (req.now) flags.push(pill('at ' + req.now, 'accent', { title: 'Decided as if at this time' }));
    if (req.what_if && req.what_if.consent) {
      for (const [ch, v] of Object.entries(req.what_if.consent)) flags.push(pill(`${ch} consent ${v ? 'granted' : 'denied'}`, 'accent'));
    }
    if (req.what_if && req.what_if.history === 'none') flags.push(pill('no contact history', 'accent'));
    if (resp.degraded) flags.push(pill('degraded', 'warn', { title: (resp.degraded_reasons || []).join('; ') }));

    replace(results,
      h('div', { class: 'results-head' },
        h('div', null,
          h('h2', null, 'Decision'),
          h('p', { class: 'muted small results-sub' },
            resp.known_customer ? 'Known customer ' : 'Unknown customer ',
            h('code', null, resp.customer_id || req.customer_id),
            ' · ', Object.keys(req.context).map((k) => `${k} ${req.context[k]}`).join(' · '))),
        flags.length ? h('div', { class: 'flags' }, flags) : null),
      resp.degraded ? h('div', { class: 'callout callout-warn' }, icon('alert'),
        h('span', null, 'Degraded: ', (resp.degraded_reasons || []).join('; ') || 'part of the decision was skipped')) : null,
      order.map((pid) => placementResult(pid, placementDefs.get(pid), (resp.placements || {})[pid] || [])),
      h('div', { class: 'decision-meta' },
        h('span', null, 'decision ', h('code', { id: 'decision-id' }, resp.decision_id || '—')),
        h('span', null, 'ruleset ', h('code', { id: 'decision-ruleset' }, resp.ruleset || '—')),
        h('details', { class: 'raw' }, h('summary', null, 'Request'), h('pre', null, JSON.stringify(req, null, 2)))));
    replace(explainHost, renderExplain(resp.explain, { request: req }));
  }

  // ---- wiring -----------------------------------------------------------------
  lookupBtn.addEventListener('click', () => lookUp());
  custInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      lookUp();
    }
  });
  custInput.addEventListener('input', () => setFieldError(custInput, custError, ''));
  m.fieldEls.set('customer_id', custInput);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    decide();
  });
  root.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      decide();
    }
  });

  function renderAllFromSchema() {
    renderContext();
    renderPlacements();
    renderConsent();
    if (m.mode === 'form') renderFeatures();
  }
  subscribe((what) => {
    if (what === 'schema') renderAllFromSchema();
    if (what === 'rules' && m.last) replace(explainHost, renderExplain(m.last.resp.explain, { request: m.last.req }));
  });
  renderAllFromSchema();
  renderFeatures();

  return {
    shown() {},
  };
}

// ---- rendering helpers --------------------------------------------------------

function card(title, sub, ...children) {
  return h('section', { class: 'card' },
    h('header', { class: 'card-head' }, h('h2', null, title), sub ? h('p', { class: 'card-sub' }, sub) : null),
    h('div', { class: 'card-body' }, children));
}

function emptyResults() {
  return h('div', { class: 'empty-state' },
    h('div', { class: 'empty-art', 'aria-hidden': 'true' }, icon('play')),
    h('h2', null, 'Make a decision'),
    h('p', { class: 'muted' }, 'Pick a customer, say where they are, choose the placements to fill and press Decide. Each result comes with the reasons: every rule\'s outcome and why each candidate won or lost.'));
}

function errorCard(title, message, hint = '') {
  return h('div', { class: 'callout callout-bad', role: 'alert' },
    icon('alert'),
    h('div', null, h('strong', null, title), h('p', null, message), hint ? h('p', { class: 'muted small' }, hint) : null));
}

// Content fields with a place on the card; any other field is listed
// under it as a detail.
const CONTENT_SHOWN = new Set(['title', 'subtitle', 'subject', 'text', 'code', 'image', 'cta', 'url', 'badge', 'items']);

function placementResult(pid, def, items) {
  return h('section', { class: 'placement-result', dataset: { placement: pid } },
    h('header', { class: 'placement-head' },
      h('h3', null, h('code', null, pid)),
      def && def.description ? h('span', { class: 'muted small' }, def.description) : null,
      h('span', { class: 'muted small push' }, items.length === 1 ? '1 item' : `${items.length} items`)),
    items.length
      ? h('div', { class: 'tp-cards' }, items.map(touchpointCard))
      : h('div', { class: 'tp-empty', dataset: { empty: pid } },
        h('strong', null, 'Nothing to show'),
        h('span', { class: 'muted small' }, 'No rule offered an eligible touchpoint here and no fallback applies. The explanation below says why.')));
}

function touchpointCard(item) {
  const c = item.content && typeof item.content === 'object' ? item.content : {};
  const extra = Object.keys(c).filter((k) => !CONTENT_SHOWN.has(k));
  const cta = c.cta && typeof c.cta === 'object' ? c.cta : null;
  return h('article', { class: 'tp-card' + (item.fallback ? ' is-fallback' : ''), dataset: { touchpoint: item.touchpoint } },
    typeof c.image === 'string' && c.image
      ? h('div', { class: 'tp-media', role: 'img', 'aria-label': `Image ${c.image}` }, icon('image'), h('code', null, c.image))
      : null,
    h('div', { class: 'tp-body' },
      h('div', { class: 'tp-tags' },
        item.kind ? pill(item.kind, 'neutral', { class: 'pill-kind' }) : null,
        item.fallback ? pill('fallback', 'muted', { title: 'The placement\'s fallback: no rule offered anything eligible' }) : null,
        item.experiment ? pill(`${item.experiment} · ${item.variant || '?'}`, 'accent', { title: 'Experiment and variant' }) : null),
      c.subject ? h('div', { class: 'tp-subject' }, h('span', { class: 'muted' }, 'Subject '), String(c.subject)) : null,
      // A message without a title is its text; a card with neither is
      // named by its touchpoint id.
      h('h4', { class: 'tp-title' + (c.title || c.text ? '' : ' tp-title-id') }, c.title ? String(c.title) : c.text ? String(c.text) : item.touchpoint,
        c.badge ? h('span', { class: 'tp-badge' }, String(c.badge)) : null),
      c.subtitle ? h('p', { class: 'tp-subtitle' }, String(c.subtitle)) : null,
      c.title && c.text ? h('p', { class: 'tp-text' }, String(c.text)) : null,
      Array.isArray(c.items) && c.items.length ? h('div', { class: 'chips' }, c.items.map((x) => h('span', { class: 'chip' }, fmtValue(x)))) : null,
      c.code ? h('div', { class: 'coupon', title: 'Coupon code' }, h('span', { class: 'coupon-label' }, 'code'), h('span', { class: 'coupon-code' }, String(c.code))) : null,
      cta ? h('a', { class: 'cta', role: 'link', 'aria-disabled': 'true', title: cta.url ? `Links to ${cta.url}` : '' }, String(cta.label || 'Open')) : null,
      !cta && typeof c.url === 'string' && c.url ? h('span', { class: 'tp-url', title: 'Where the touchpoint links to' }, '→ ', h('code', null, c.url)) : null,
      extra.length ? h('dl', { class: 'kv kv-compact' }, extra.map((k) => [h('dt', null, humanize(k)), h('dd', null, fmtValue(c[k]))])) : null),
    h('footer', { class: 'tp-foot' },
      h('code', { title: 'Touchpoint' }, item.touchpoint),
      item.rule ? h('span', { title: 'Rule' }, 'rule ', h('code', null, item.rule)) : null,
      typeof item.score === 'number' ? h('span', { title: String(item.score) }, 'score ', h('strong', null, fmtNumber(item.score))) : null));
}

function setFieldError(input, errEl, message) {
  if (input) input.setAttribute('aria-invalid', message ? 'true' : 'false');
  if (errEl) errEl.textContent = message;
}

function clampCount(input, max) {
  const n = Math.round(Number(input.value));
  if (!Number.isFinite(n) || n < 1) return 1;
  return Math.min(n, max);
}

function cssEscape(s) {
  return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, '\\$&');
}

function isMac() {
  return /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || '');
}

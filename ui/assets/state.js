// Shared data the tabs read: the live ruleset's status, the feature schema
// and the rules index (rules, their placements and the fixtures covering
// them). Each is fetched once per ruleset version: when the version badge
// sees a new version, the schema and rules are refetched, so the forms
// and the explain view never describe rules that no longer serve.

import { get } from './api.js';

const listeners = new Set();

export const state = {
  status: null, // GET /admin/ruleset
  schema: null, // GET /admin/schema
  rules: null, // GET /admin/rules
  rulesById: new Map(),
};

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(what) {
  for (const fn of listeners) {
    try {
      fn(what);
    } catch (err) {
      console.error(err);
    }
  }
}

export function setStatus(status) {
  const changed = !state.status || state.status.version !== status.version;
  state.status = status;
  emit('status');
  return changed;
}

export async function loadStatus() {
  const st = await get('/admin/ruleset', { quiet: true });
  const changed = setStatus(st);
  if (changed && state.schema) {
    // A new ruleset may bring new placements, rules and tests.
    await Promise.allSettled([loadSchema(), loadRules()]);
  }
  return st;
}

export async function loadSchema() {
  state.schema = await get('/admin/schema');
  emit('schema');
  return state.schema;
}

export async function loadRules() {
  const rules = await get('/admin/rules');
  state.rules = rules;
  state.rulesById = new Map((rules.rules || []).map((r) => [r.id, r]));
  emit('rules');
  return rules;
}

export function reset() {
  state.status = null;
  state.schema = null;
  state.rules = null;
  state.rulesById = new Map();
}

// The playground's entry point: sign-in, the top bar (tabs, live ruleset
// version, log out) and start-up of the two tabs.

import { get, getKey, setKey, clearKey, onUnauthorized, ApiError } from './api.js';
import { $, $$, toast } from './dom.js';
import { state, subscribe, setStatus, loadStatus, loadSchema, loadRules, reset } from './state.js';
import { mountDecide } from './decide.js';
import { mountDrafts } from './drafts.js';

const TAB_STORAGE = 'touchpoint.tab';
// The version badge asks for the ruleset status this often, so a rule file
// saved on the server shows up as a new version without a reload.
const POLL_MS = 10000;

let pollTimer = 0;
let mounted = false;
const tabs = {};

function showLogin(message = '') {
  stopPolling();
  $('#shell').hidden = true;
  $('#login').hidden = false;
  const err = $('#login-error');
  err.textContent = message;
  const input = $('#login-key');
  input.value = '';
  input.setAttribute('aria-invalid', message ? 'true' : 'false');
  input.focus();
}

// checkKey asks the server whether key opens the admin API. It answers
// an error message for the sign-in form, or '' when the key works.
async function checkKey(key) {
  try {
    const st = await get('/admin/ruleset', { key, quiet: true, handle401: false });
    setStatus(st);
    return '';
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 401) return 'That key was not accepted.';
    if (err.status === 403 && err.code === 'admin_disabled') {
      return 'This server has no admin key, so its admin API is off. Start it with TOUCHPOINT_ADMIN_KEY set, then sign in with that key.';
    }
    if (err.status === 0) return 'The server could not be reached.';
    return `The server answered ${err.status}: ${err.message}`;
  }
}

async function signIn(key) {
  const button = $('#login-submit');
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    const problem = await checkKey(key);
    if (problem) {
      clearKey();
      showLogin(problem);
      return false;
    }
    setKey(key);
    await showApp();
    return true;
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
}

async function showApp() {
  $('#login').hidden = true;
  $('#shell').hidden = false;
  renderVersion();
  if (!mounted) {
    mounted = true;
    tabs.decide = mountDecide($('#tab-decide'));
    tabs.drafts = mountDrafts($('#tab-drafts'));
  }
  selectTab(sessionStorage.getItem(TAB_STORAGE) || 'decide', false);
  startPolling();
  const results = await Promise.allSettled([loadSchema(), loadRules()]);
  for (const r of results) {
    if (r.status === 'rejected' && r.reason instanceof ApiError && r.reason.status !== 401) {
      toast(r.reason.message, { tone: 'error', title: 'Could not load the playground data' });
    }
  }
}

function selectTab(name, focus = true) {
  if (!['decide', 'drafts'].includes(name)) name = 'decide';
  // Each tab starts at its top, not where the other one was scrolled to.
  if (name !== sessionStorage.getItem(TAB_STORAGE)) window.scrollTo(0, 0);
  sessionStorage.setItem(TAB_STORAGE, name);
  for (const btn of $$('.tab')) {
    const on = btn.dataset.tab === name;
    btn.setAttribute('aria-selected', String(on));
    btn.tabIndex = on ? 0 : -1;
    if (on && focus) btn.focus();
  }
  $('#tab-decide').hidden = name !== 'decide';
  $('#tab-drafts').hidden = name !== 'drafts';
  tabs[name]?.shown?.();
}

function renderVersion() {
  const st = state.status;
  const badge = $('#version-badge');
  if (!st) return;
  // Only a new version is written: the badge is a live region, and
  // rewriting the same text every poll would announce it again.
  const text = $('#version-text');
  if (text.textContent !== st.version) text.textContent = st.version;
  const failed = Boolean(st.last_error);
  badge.classList.toggle('is-warn', failed);
  badge.title = failed
    ? `Serving ${st.version}; the last reload failed: ${st.last_error}`
    : `Live ruleset ${st.version}, loaded ${st.loaded_at || ''}: ${st.rules} rules, ${st.touchpoints} touchpoints, ${st.placements} placements`;
}

function startPolling() {
  stopPolling();
  pollTimer = setInterval(() => {
    if (document.hidden || !getKey()) return;
    loadStatus().then(() => {
      $('#version-badge').classList.remove('is-offline');
    }, () => {
      // The failure has been announced (or sent us to sign-in); the badge
      // keeps the last version it saw, marked as not confirmed.
      const badge = $('#version-badge');
      badge.classList.add('is-offline');
      badge.title = 'The server did not answer the last status check; this is the last version seen.';
    });
  }, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = 0;
}

// logOut forgets everything this tab holds: the key, and with it the
// drafts and the customer data on screen, which only the key may read. A
// reload is the sure way to drop what is in memory too.
function logOut() {
  let drafts = 0;
  try {
    drafts = Object.keys(JSON.parse(sessionStorage.getItem('touchpoint.drafts') || '{}')).length;
  } catch {
    drafts = 0;
  }
  if (drafts && !window.confirm(`Log out and discard ${drafts === 1 ? 'your draft' : `your ${drafts} drafts`}? Download what you want to keep first.`)) {
    return;
  }
  sessionStorage.clear();
  stopPolling();
  location.replace(location.pathname + location.search);
}

function wire() {
  $('#login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = $('#login-key').value.trim();
    if (!key) {
      showLogin('Enter the admin key.');
      return;
    }
    signIn(key);
  });
  $('#logout').addEventListener('click', (ev) => {
    ev.preventDefault();
    logOut();
  });
  const tablist = $('.tabs');
  tablist.addEventListener('click', (ev) => {
    const btn = ev.target.closest('.tab');
    if (btn) selectTab(btn.dataset.tab);
  });
  // Arrow keys move between tabs, as screen reader users expect of a tablist.
  tablist.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
    const names = $$('.tab').map((b) => b.dataset.tab);
    const cur = names.indexOf(sessionStorage.getItem(TAB_STORAGE) || 'decide');
    const next = names[(cur + (ev.key === 'ArrowRight' ? 1 : names.length - 1)) % names.length];
    selectTab(next);
    ev.preventDefault();
  });
  subscribe((what) => {
    if (what === 'status') renderVersion();
  });
  // The explain view links each rule to its file; following a link opens
  // the file in the Drafts tab at the rule's line.
  document.addEventListener('touchpoint:open-file', (ev) => {
    const { path, line } = ev.detail || {};
    if (!path || !tabs.drafts) return;
    selectTab('drafts', false);
    tabs.drafts.open(path, line);
  });
  onUnauthorized(() => {
    clearKey();
    reset();
    showLogin('The server no longer accepts the key. Sign in again.');
  });
}

async function start() {
  wire();
  // A link such as /ui/#key=… signs in with one click. The fragment never
  // reaches the server or its logs; it is removed from the address bar
  // (and so from history) before anything else happens.
  const m = /^#key=(.+)$/.exec(location.hash);
  if (m) {
    let key = '';
    try {
      key = decodeURIComponent(m[1]);
    } catch {
      key = m[1];
    }
    history.replaceState(null, '', location.pathname + location.search);
    if (key) {
      await signIn(key);
      return;
    }
  }
  const stored = getKey();
  if (!stored) {
    showLogin();
    return;
  }
  const problem = await checkKey(stored);
  if (problem) {
    clearKey();
    showLogin(problem === 'That key was not accepted.' ? '' : problem);
    return;
  }
  await showApp();
}

start().catch((err) => {
  console.error(err);
  toast(String(err && err.message ? err.message : err), { tone: 'error', title: 'The playground could not start' });
});

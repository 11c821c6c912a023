// The Drafts tab: edit rule files in the browser, check them (compile,
// lint, run every fixture) and replay them on recent decisions, all
// without touching the live ruleset. Drafts stay in this tab's
// sessionStorage; publishing stays a change to the files under version
// control, which is why each modified file can be downloaded.

import { get, post, ApiError } from './api.js';
import { h, icon, pill, replace, fmtNumber, humanize, toast } from './dom.js';
import { state, subscribe } from './state.js';

const DRAFT_STORAGE = 'touchpoint.drafts';
const OPEN_STORAGE = 'touchpoint.openFile';
const MAX_FILES = 16; // what /admin/drafts/check and replay accept at once

export function mountDrafts(root) {
  const d = {
    live: new Map(), // path -> live text
    drafts: loadDrafts(), // path -> edited text
    current: '',
    editor: null,
    editorLoading: null,
    loadingText: false,
    lastVersion: '',
    check: null, // {result, texts: Map path -> text checked}
    openSeq: 0,
  };

  // ---- layout ---------------------------------------------------------------
  const fileList = h('ul', { class: 'file-list', id: 'file-list', 'aria-label': 'Rule files' });
  const fileCount = h('span', { class: 'muted small' });
  const pathLabel = h('code', { class: 'editor-path', id: 'editor-path' }, 'No file open');
  const modPill = h('span', { class: 'mod-flag', hidden: true }, icon('dot', 'mod-dot'), 'modified');
  const revertBtn = h('button', { type: 'button', class: 'btn btn-small', id: 'revert-btn', disabled: true }, icon('undo'), 'Revert');
  const downloadBtn = h('button', { type: 'button', class: 'btn btn-small', id: 'download-btn', disabled: true }, icon('download'), 'Download');
  const checkBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'check-btn' }, icon('check'), h('span', { class: 'btn-label' }, 'Check'));
  const replayBtn = h('button', { type: 'button', class: 'btn', id: 'replay-btn' }, icon('play'), h('span', { class: 'btn-label' }, 'Replay'));
  const editorHost = h('div', { class: 'editor-host', id: 'editor-host' },
    h('div', { class: 'editor-placeholder muted' }, 'Choose a file on the left to edit it.'));
  const newFileInput = h('input', {
    type: 'text', id: 'new-file-path', placeholder: 'new/file.yaml', spellcheck: 'false', autocomplete: 'off',
    'aria-label': 'Path of the new rule file', 'aria-describedby': 'new-file-error',
  });
  const newFileError = h('p', { class: 'field-error', id: 'new-file-error', 'aria-live': 'polite' });
  const newFileForm = h('form', { class: 'new-file', novalidate: true },
    h('div', { class: 'input-row' }, newFileInput, h('button', { type: 'submit', class: 'btn btn-small' }, 'Add')),
    newFileError);
  const checkPanel = h('section', { class: 'card report', id: 'check-report', 'aria-live': 'polite', 'aria-label': 'Check report' });
  const replayPanel = h('section', { class: 'card report', id: 'replay-report', 'aria-live': 'polite', 'aria-label': 'Replay report' });

  root.append(h('div', { class: 'drafts-layout' },
    h('aside', { class: 'card file-pane' },
      h('header', { class: 'card-head card-head-row' }, h('h2', null, 'Rule files'), fileCount),
      fileList,
      newFileForm,
      h('p', { class: 'file-pane-note muted small' }, icon('info'),
        h('span', null, 'Drafts live in this browser only. Publishing is a change to the rule files (git).'))),
    h('div', { class: 'drafts-main' },
      h('section', { class: 'card editor-card' },
        h('header', { class: 'editor-toolbar' },
          h('div', { class: 'editor-title' }, icon('file'), pathLabel, modPill),
          h('div', { class: 'toolbar' }, revertBtn, downloadBtn, h('span', { class: 'toolbar-sep' }), checkBtn, replayBtn)),
        editorHost),
      h('div', { class: 'reports' }, checkPanel, replayPanel))));

  replace(checkPanel, reportIntro('Check', 'Compiles your drafts with the rest of the live files, lints them and runs every fixture test. Errors point at the line.'));
  replace(replayPanel, reportIntro('Replay', 'Runs recent logged decisions through your drafts and shows what would change, per placement and per rule.'));

  // ---- drafts storage ---------------------------------------------------------
  function persist() {
    try {
      sessionStorage.setItem(DRAFT_STORAGE, JSON.stringify(Object.fromEntries(d.drafts)));
    } catch {
      toast('This browser would not keep the drafts (storage full); they stay until the tab is closed.', { tone: 'error' });
    }
  }

  function isModified(path) {
    return d.drafts.has(path) && (!d.live.has(path) || d.live.get(path) !== d.drafts.get(path));
  }

  function modifiedFiles() {
    const out = {};
    for (const [p, text] of d.drafts) if (isModified(p)) out[p] = text;
    return out;
  }

  // ---- file list ----------------------------------------------------------------
  function allPaths() {
    const paths = ((state.rules && state.rules.files) || []).map((f) => f.path);
    for (const p of d.drafts.keys()) if (!paths.includes(p)) paths.push(p);
    return paths;
  }

  // Rows are kept per path and updated in place: the list re-renders on
  // every edit and check, and rebuilding it would pull a row out from
  // under a click (or a screen reader's focus).
  const fileRows = new Map();

  function fileRow(p) {
    let r = fileRows.get(p);
    if (r) return r;
    const btn = h('button', { type: 'button', class: 'file-item', dataset: { path: p } });
    btn.addEventListener('click', () => open(p));
    const rv = h('button', { type: 'button', class: 'icon-btn', title: `Revert ${p} to the live file`, 'aria-label': `Revert ${p}`, dataset: { revert: p }, hidden: true }, icon('undo'));
    rv.addEventListener('click', () => revert(p));
    const dl = h('button', { type: 'button', class: 'icon-btn', title: `Download ${p}`, 'aria-label': `Download ${p}`, dataset: { download: p }, hidden: true }, icon('download'));
    dl.addEventListener('click', () => download(p));
    r = { li: h('li', { class: 'file-row' }, btn, rv, dl), btn, rv, dl };
    fileRows.set(p, r);
    return r;
  }

  function renderFiles() {
    const paths = allPaths();
    const known = new Set(((state.rules && state.rules.files) || []).map((f) => f.path));
    const errs = errorCounts();
    fileCount.textContent = paths.length ? `${paths.length}` : '';
    if (!paths.length) {
      fileRows.clear();
      replace(fileList, h('li', { class: 'muted small pad' }, state.rules ? 'No rule files.' : 'Loading…'));
      return;
    }
    const rows = paths.map((p) => {
      const r = fileRow(p);
      const mod = isModified(p);
      const n = errs.get(p) || 0;
      const current = p === d.current;
      r.btn.classList.toggle('is-current', current);
      if (current) r.btn.setAttribute('aria-current', 'true');
      else r.btn.removeAttribute('aria-current');
      replace(r.btn,
        h('span', { class: 'file-name' }, p),
        !known.has(p) ? h('span', { class: 'tag' }, 'new') : null,
        n ? h('span', { class: 'err-count', title: `${n} problem${n > 1 ? 's' : ''} in the last check` }, String(n)) : null,
        mod ? h('span', { class: 'mod-dot-wrap', title: 'Modified' }, icon('dot', 'mod-dot'), h('span', { class: 'sr-only' }, ' (modified)')) : null);
      r.rv.hidden = !(mod && known.has(p));
      r.dl.hidden = !mod;
      return r.li;
    });
    for (const p of [...fileRows.keys()]) if (!paths.includes(p)) fileRows.delete(p);
    const cur = [...fileList.children];
    if (cur.length !== rows.length || cur.some((el, i) => el !== rows[i])) fileList.replaceChildren(...rows);
  }

  // errorCounts counts the last check's problems per file, for the files
  // still as they were checked.
  function errorCounts() {
    const out = new Map();
    const r = d.check && d.check.result;
    if (!r) return out;
    const fresh = (f) => !d.check.texts.has(f) || d.check.texts.get(f) === currentText(f);
    for (const e of r.errors || []) if (fresh(e.file)) out.set(e.file, (out.get(e.file) || 0) + 1);
    for (const t of (r.tests && r.tests.results) || []) if (!t.passed && t.file && fresh(t.file)) out.set(t.file, (out.get(t.file) || 0) + 1);
    return out;
  }

  function currentText(path) {
    if (path === d.current && d.editor) return d.editor.getText();
    return d.drafts.has(path) ? d.drafts.get(path) : d.live.get(path);
  }

  // checkIsStale says whether the drafts changed since the last check, so
  // its report no longer describes them.
  function checkIsStale() {
    if (!d.check) return false;
    for (const [p, text] of d.check.texts) if (currentText(p) !== text) return true;
    return Object.keys(modifiedFiles()).some((p) => !d.check.texts.has(p));
  }

  function updateStale() {
    const note = checkPanel.querySelector('#check-stale');
    if (!note) return;
    const stale = checkIsStale();
    note.hidden = !stale;
    checkPanel.classList.toggle('is-stale', stale);
  }

  function renderToolbar() {
    const p = d.current;
    pathLabel.textContent = p || 'No file open';
    const mod = p && isModified(p);
    modPill.hidden = !mod;
    revertBtn.disabled = !mod;
    downloadBtn.disabled = !mod;
    const n = Object.keys(modifiedFiles()).length;
    replayBtn.title = n ? `Replay recent decisions with ${n} modified file${n > 1 ? 's' : ''}` : 'Edit a file first: replay compares your drafts with the live rules';
    checkBtn.title = n ? `Check ${n} modified file${n > 1 ? 's' : ''} (Ctrl+Enter)` : 'Check the open file as it is (Ctrl+Enter)';
  }

  // ---- editor -------------------------------------------------------------------
  async function ensureEditor() {
    if (d.editor) return d.editor;
    if (!d.editorLoading) {
      // The editor bundle is large and only this tab needs it, so it is
      // loaded the first time a file is opened.
      d.editorLoading = import('./vendor/editor.js').then(({ createEditor }) => {
        replace(editorHost);
        d.editor = createEditor(editorHost, { doc: '', onChange: onEdit });
        // Browser tests drive the editor through its API: typing into a
        // contenteditable key by key is slow and flaky, and the editor is
        // not what they test.
        window.__touchpoint_editor = d.editor;
        return d.editor;
      }).catch((err) => {
        d.editorLoading = null;
        replace(editorHost, h('div', { class: 'callout callout-bad' }, icon('alert'), h('span', null, 'The editor could not be loaded: ' + err.message)));
        throw err;
      });
    }
    return d.editorLoading;
  }

  function onEdit(text) {
    if (d.loadingText || !d.current) return;
    const live = d.live.get(d.current);
    if (live !== undefined && live === text) d.drafts.delete(d.current);
    else d.drafts.set(d.current, text);
    schedulePersist();
    renderToolbar();
    renderFilesSoon();
    updateStale();
  }

  let persistTimer = 0;
  function schedulePersist() {
    clearTimeout(persistTimer);
    persistTimer = setTimeout(persist, 250);
  }
  let filesTimer = 0;
  function renderFilesSoon() {
    // The dot only changes when a file turns modified or back; a frame's
    // delay keeps typing smooth.
    cancelAnimationFrame(filesTimer);
    filesTimer = requestAnimationFrame(renderFiles);
  }

  async function fetchLive(path) {
    if (d.live.has(path)) return d.live.get(path);
    const files = state.rules && state.rules.files;
    if (files && !files.some((f) => f.path === path)) return undefined; // a new file, only in drafts
    try {
      const r = await get('/admin/rules/file?path=' + encodeURIComponent(path), { quiet: true });
      d.live.set(path, r.content);
      return r.content;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined; // a new file, only in drafts
      throw err;
    }
  }

  // open shows path in the editor, at line and col when given.
  async function open(path, line, col) {
    // Only the last file asked for is shown, whichever answer comes first.
    const token = ++d.openSeq;
    let live;
    try {
      [live] = await Promise.all([fetchLive(path), ensureEditor()]);
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) toast(err.message, { tone: 'error', title: `Could not open ${path}` });
      return;
    }
    if (token !== d.openSeq) return;
    if (live === undefined && !d.drafts.has(path)) {
      toast(`${path} is not a rule file on the server.`, { tone: 'error' });
      return;
    }
    // A draft equal to the live file is no draft.
    if (d.drafts.has(path) && d.drafts.get(path) === live) d.drafts.delete(path);
    const text = d.drafts.has(path) ? d.drafts.get(path) : live;
    if (d.current !== path || d.editor.getText() !== text) {
      d.current = path;
      d.loadingText = true;
      try {
        d.editor.setText(text);
      } finally {
        d.loadingText = false;
      }
    }
    d.current = path;
    sessionStorage.setItem(OPEN_STORAGE, path);
    applyDiagnostics();
    renderToolbar();
    renderFiles();
    if (line) d.editor.goTo(line, col || 1);
  }

  // applyDiagnostics marks the last check's problems in the open file, as
  // long as the file is still the text that was checked.
  function applyDiagnostics() {
    if (!d.editor) return;
    const c = d.check;
    const text = d.editor.getText();
    if (!c || c.texts.get(d.current) !== text) {
      d.editor.setDiagnostics([]);
      return;
    }
    const r = c.result;
    const diags = [];
    for (const e of r.errors || []) if (e.file === d.current) diags.push({ line: e.line, col: e.col, message: e.message, severity: 'error' });
    for (const e of r.warnings || []) if (e.file === d.current) diags.push({ line: e.line, col: e.col, message: e.message, severity: 'warning' });
    for (const t of (r.tests && r.tests.results) || []) {
      if (!t.passed && t.file === d.current) diags.push({ line: t.line, col: t.col || 1, message: `test "${t.name}" fails: ${t.problem || ''}`, severity: 'error' });
    }
    d.editor.setDiagnostics(diags);
  }

  function revert(path = d.current) {
    if (!path || !d.drafts.has(path)) return;
    // Drafts exist nowhere else, so throwing one away is confirmed.
    if (!window.confirm(`Discard your changes to ${path}?`)) return;
    d.drafts.delete(path);
    persist();
    if (path === d.current) {
      d.loadingText = true;
      try {
        if (d.live.has(path)) {
          d.editor.setText(d.live.get(path));
        } else {
          // A new file without its draft is no file at all.
          d.editor.setText('');
          d.current = '';
          sessionStorage.removeItem(OPEN_STORAGE);
        }
      } finally {
        d.loadingText = false;
      }
    }
    renderToolbar();
    renderFiles();
    updateStale();
  }

  function download(path = d.current) {
    const text = d.drafts.has(path) ? d.drafts.get(path) : d.live.get(path);
    if (text == null) return;
    const url = URL.createObjectURL(new Blob([text], { type: 'application/yaml' }));
    const a = h('a', { href: url, download: path.split('/').pop(), hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    // The click has started the download; the URL can go once it has read it.
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ---- check ----------------------------------------------------------------------
  async function check() {
    if (checkBtn.disabled) return; // one check at a time, also from the keyboard
    let files = modifiedFiles();
    if (!Object.keys(files).length) {
      if (!d.current || !d.editor) {
        replace(checkPanel, reportIntro('Check', 'Open a file and change it, then check it here.'));
        return;
      }
      files = { [d.current]: d.editor.getText() };
    }
    if (Object.keys(files).length > MAX_FILES) {
      replace(checkPanel, callout('bad', `At most ${MAX_FILES} files can be checked at once; revert some drafts.`));
      return;
    }
    setBusy(checkBtn, 'Checking…');
    replace(checkPanel, reportHead('Check', 'Checking…'), skeleton());
    try {
      const result = await post('/admin/drafts/check', { files }, { quiet: true });
      d.check = { result, texts: new Map(Object.entries(files)) };
      renderCheck(result, files);
      reveal(checkPanel);
      applyDiagnostics();
      renderFiles();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) return;
      replace(checkPanel, reportHead('Check', ''), callout('bad', `The check was refused (${err.code}): ${err.message}`));
    } finally {
      setBusy(checkBtn, '');
    }
  }

  function renderCheck(r, files) {
    const names = Object.keys(files);
    const errors = r.errors || [];
    const warnings = r.warnings || [];
    const tests = r.tests;
    const failedTests = tests ? (tests.results || []).filter((t) => !t.passed) : [];
    let banner;
    if (r.ok) {
      banner = h('div', { class: 'callout callout-ok', id: 'check-ok' }, icon('check'),
        h('span', null, h('strong', null, `All ${tests ? tests.total : 0} tests pass`), ' · version ', h('code', null, r.version || '—'),
          h('span', { class: 'muted' }, ` · ${r.rules} rules, ${r.touchpoints} touchpoints`)));
    } else if (errors.length) {
      banner = h('div', { class: 'callout callout-bad' }, icon('alert'),
        h('span', null, h('strong', null, `${errors.length} error${errors.length > 1 ? 's' : ''}`), ': the drafts do not load, so no test ran.'));
    } else {
      banner = h('div', { class: 'callout callout-bad' }, icon('alert'),
        h('span', null, h('strong', null, `${failedTests.length} of ${tests ? tests.total : 0} tests fail`), ' · the drafts load as version ', h('code', null, r.version || '—')));
    }
    const again = h('button', { type: 'button', class: 'btn-link', onclick: () => check() }, 'Check again');
    replace(checkPanel,
      reportHead('Check', `${names.length} file${names.length > 1 ? 's' : ''}: ${names.join(', ')}`),
      h('div', { class: 'callout callout-info', id: 'check-stale', hidden: true }, icon('info'),
        h('span', null, 'The drafts changed since this check. ', again)),
      banner,
      errors.length ? problemList('Errors', errors, 'bad', 'check-errors') : null,
      failedTests.length ? h('div', { class: 'problem-group' },
        h('h4', null, 'Failing tests'),
        h('ul', { class: 'problems', id: 'check-failed-tests' }, failedTests.map((t) => {
          const where = `${t.file}:${t.line}${t.col ? ':' + t.col : ''}`;
          return h('li', null, h('button', { type: 'button', class: 'problem', onclick: () => open(t.file, t.line, t.col) },
            h('span', { class: 'problem-where' }, where),
            h('span', { class: 'problem-msg' },
              h('span', null, h('strong', null, t.name), t.rule ? h('span', { class: 'muted' }, ` · rule ${t.rule}`) : null, t.model ? h('span', { class: 'muted' }, ` · model ${t.model}`) : null, t.trigger ? h('span', { class: 'muted' }, ` · trigger ${t.trigger}`) : null),
              t.problem ? h('span', { class: 'problem-detail' }, t.problem) : null)));
        }))) : null,
      tests && !r.ok ? h('p', { class: 'muted small' }, `${tests.passed} of ${tests.total} tests pass.`) : null,
      warnings.length ? problemList('Warnings', warnings, 'warn', 'check-warnings') : null);
  }

  function problemList(title, items, tone, id) {
    return h('div', { class: 'problem-group' },
      h('h4', null, title, ' ', pill(String(items.length), tone)),
      h('ul', { class: 'problems', id }, items.map((e) => {
        const where = `${e.file}:${e.line}:${e.col}`;
        return h('li', null, h('button', { type: 'button', class: `problem problem-${tone}`, onclick: () => open(e.file, e.line, e.col), dataset: { file: e.file, line: e.line } },
          h('span', { class: 'problem-where' }, where),
          h('span', { class: 'problem-msg' }, e.message),
          e.source ? h('span', { class: 'problem-source' }, sourceWithCaret(e.source, e.col || 1)) : null));
      })));
  }

  // ---- replay -----------------------------------------------------------------------
  async function replay() {
    if (replayBtn.disabled) return;
    const files = modifiedFiles();
    if (!Object.keys(files).length) {
      replace(replayPanel, reportHead('Replay', ''), callout('info', 'There are no drafts yet. Change a rule file, then replay recent decisions to see what the change would do.'));
      return;
    }
    setBusy(replayBtn, 'Replaying…');
    replace(replayPanel, reportHead('Replay', 'Replaying recent decisions…'), skeleton());
    try {
      const r = await post('/admin/drafts/replay', { files }, { quiet: true });
      renderReplay(r);
      reveal(replayPanel);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) return;
      if (err.status === 422) {
        const fix = h('button', { type: 'button', class: 'btn btn-small', onclick: () => check() }, 'Check to see where');
        replace(replayPanel, reportHead('Replay', ''), callout('bad', h('span', null, h('strong', null, 'The drafts do not load. '), err.message), fix));
      } else if (err.status === 409 || err.status === 501 || err.code === 'not_supported') {
        replace(replayPanel, reportHead('Replay', ''), callout('warn', h('span', null, h('strong', null, 'This server keeps no decision log to replay. '), err.message)));
      } else {
        replace(replayPanel, reportHead('Replay', ''), callout('bad', `The replay was refused (${err.code}): ${err.message}`));
      }
    } finally {
      setBusy(replayBtn, '');
    }
  }

  function renderReplay(r) {
    const pct = Math.round((r.changed || 0) * 1000) / 10;
    const headline = r.replayed
      ? h('div', { class: 'replay-headline', id: 'replay-headline' },
        h('span', { class: 'big ' + (pct > 0 ? 'is-changed' : 'is-same') }, `${pct}%`),
        h('span', null, `of ${fmtNumber(r.replayed)} recent decision${r.replayed === 1 ? '' : 's'} would change`))
      : h('div', { class: 'replay-headline', id: 'replay-headline' }, h('span', null, 'No decisions to replay.'));
    const extra = [];
    if (r.no_customer_id) extra.push(`${r.no_customer_id} without a customer id skipped`);
    if (r.failed) extra.push(`${r.failed} failed${r.failed_example ? ` (e.g. ${r.failed_example})` : ''}`);
    const placements = r.placements || [];
    const rules = (r.rules || []).filter((x) => countOf(x.gains) || countOf(x.losses));
    replace(replayPanel,
      reportHead('Replay', h('span', null, 'live ', h('code', null, r.base || '—'), ' → draft ', h('code', null, r.draft || '—'))),
      headline,
      extra.length ? h('p', { class: 'muted small' }, extra.join(' · ')) : null,
      r.note ? callout('info', r.note) : null,
      placements.length ? h('div', { class: 'table-scroll table-scroll-flat' },
        h('table', { class: 'table', id: 'replay-placements' },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Placement'),
            h('th', { scope: 'col', class: 'num' }, 'Decisions'),
            h('th', { scope: 'col', class: 'num' }, 'Unchanged'),
            h('th', { scope: 'col', class: 'num' }, 'Gained'),
            h('th', { scope: 'col', class: 'num' }, 'Lost'),
            h('th', { scope: 'col', class: 'num' }, 'Swapped'),
            h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Examples')))),
          h('tbody', null, placements.flatMap(placementRows)))) : null,
      rules.length ? h('div', { class: 'problem-group' },
        h('h4', null, 'By rule'),
        h('div', { class: 'table-scroll-flat' }, h('table', { class: 'table', id: 'replay-rules' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Rule'), h('th', { scope: 'col', title: 'Decisions where the rule now wins something' }, 'Gains'), h('th', { scope: 'col', title: 'Decisions where the rule no longer wins' }, 'Losses'))),
          h('tbody', null, rules.map((x) => h('tr', { dataset: { rule: x.rule } },
            h('td', null, h('code', null, x.rule)),
            h('td', null, gainLoss(x.gains, 'gain')),
            h('td', null, gainLoss(x.losses, 'loss')))))))) : null);
  }

  function placementRows(p) {
    const changed = (p.gained || 0) + (p.lost || 0) + (p.swapped || 0);
    const examples = p.examples || [];
    const exId = 'replay-ex-' + p.id;
    const btn = examples.length
      ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-expanded': 'false', 'aria-controls': exId }, icon('chevron', 'chev'), `${examples.length} example${examples.length > 1 ? 's' : ''}`)
      : null;
    const num = (v, cls) => h('td', { class: 'num' + (v && cls ? ' ' + cls : '') }, fmtNumber(v || 0));
    const tr = h('tr', { class: changed ? 'is-changed' : '', dataset: { placement: p.id, changed } },
      h('td', null, h('code', null, p.id)),
      num(p.decisions), num(p.unchanged), num(p.gained, 'ok-text'), num(p.lost, 'bad-text'), num(p.swapped, 'warn-text'),
      h('td', { class: 'cell-action' }, btn));
    if (!btn) return [tr];
    const ex = h('tr', { class: 'examples-row', id: exId, hidden: true },
      h('td', { colspan: 7 }, h('ul', { class: 'examples' }, examples.map((e) =>
        h('li', null,
          h('code', { class: 'ex-customer' }, e.customer_id || '—'),
          pill(humanize(e.kind), e.kind === 'gained' ? 'ok' : e.kind === 'lost' ? 'bad' : 'warn'),
          itemsChips(e.base), h('span', { class: 'arrow', 'aria-label': 'becomes' }, '→'), itemsChips(e.draft))))));
    btn.addEventListener('click', () => {
      const open = ex.hidden;
      ex.hidden = !open;
      btn.setAttribute('aria-expanded', String(open));
      tr.classList.toggle('is-open', open);
    });
    return [tr, ex];
  }

  // ---- new files ----------------------------------------------------------------------
  // A new file is a draft like any other: checked and replayed with the
  // rest, downloaded to be committed.
  newFileForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = newFileInput.value.trim().replace(/^\/+/, '');
    let problem = '';
    if (!/\.ya?ml$/.test(p)) problem = 'A rule file ends in .yaml or .yml.';
    else if (p.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) problem = 'Use a path inside the rules directory, such as campaigns/spring.yaml.';
    else if (allPaths().includes(p)) problem = `${p} exists already.`;
    newFileError.textContent = problem;
    newFileInput.setAttribute('aria-invalid', problem ? 'true' : 'false');
    if (problem) return;
    d.drafts.set(p, `# ${p}\n`);
    persist();
    newFileInput.value = '';
    open(p);
  });

  // ---- wiring -------------------------------------------------------------------------
  revertBtn.addEventListener('click', () => revert());
  downloadBtn.addEventListener('click', () => download());
  checkBtn.addEventListener('click', () => check());
  replayBtn.addEventListener('click', () => replay());
  // Capture, so the editor's own Mod-Enter binding does not also run.
  root.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      ev.stopPropagation();
      check();
    }
  }, true);

  subscribe((what) => {
    if (what !== 'rules') return;
    const v = state.rules && state.rules.ruleset;
    if (d.lastVersion && v !== d.lastVersion) {
      // The live files changed: what a draft is compared with changes too.
      d.live.clear();
      if (d.current) open(d.current);
    }
    d.lastVersion = v || '';
    renderFiles();
    renderToolbar();
  });
  renderFiles();
  renderToolbar();

  let shownOnce = false;
  return {
    shown() {
      if (shownOnce) return;
      shownOnce = true;
      const last = sessionStorage.getItem(OPEN_STORAGE);
      const first = last || allPaths()[0];
      if (first) open(first);
      else ensureEditor().catch(() => {});
    },
    open(path, line, col) {
      shownOnce = true;
      return open(path, line, col);
    },
  };
}

// ---- helpers ------------------------------------------------------------------------

function loadDrafts() {
  try {
    const raw = JSON.parse(sessionStorage.getItem(DRAFT_STORAGE) || '{}');
    return new Map(Object.entries(raw).filter(([, v]) => typeof v === 'string'));
  } catch {
    return new Map();
  }
}

function reportIntro(title, text) {
  return [reportHead(title, ''), h('p', { class: 'muted' }, text)];
}

function reportHead(title, sub) {
  return h('header', { class: 'card-head card-head-row' }, h('h3', null, title), sub ? h('span', { class: 'muted small report-sub' }, sub) : null);
}

function callout(tone, ...children) {
  const ic = tone === 'ok' ? 'check' : tone === 'info' ? 'info' : 'alert';
  return h('div', { class: `callout callout-${tone}` }, icon(ic), h('div', { class: 'callout-body' }, children));
}

function skeleton() {
  return h('div', { class: 'skeleton', 'aria-hidden': 'true' }, h('span'), h('span'), h('span'));
}

// reveal brings a report that just arrived into view, in case it landed
// below the fold.
function reveal(el) {
  const r = el.getBoundingClientRect();
  // An instant jump: a smooth scroll would move buttons away from under a
  // pointer that is already on its way to them.
  if (r.top > window.innerHeight - 120) el.scrollIntoView({ block: 'start' });
}

function setBusy(btn, label) {
  btn.disabled = Boolean(label);
  const l = btn.querySelector('.btn-label');
  if (!btn.dataset.label) btn.dataset.label = l.textContent;
  l.textContent = label || btn.dataset.label;
}

// sourceWithCaret shows the offending line with a caret under col, cut so
// that the caret stays in view in a narrow panel.
function sourceWithCaret(source, col) {
  let line = String(source);
  let c = Math.max(1, col);
  const indent = line.length - line.trimStart().length;
  if (indent > 0 && c > indent) {
    line = line.slice(indent);
    c -= indent;
  }
  const room = 48;
  if (c > room) {
    const cut = c - Math.floor(room / 2);
    line = '…' + line.slice(cut);
    c = c - cut + 1;
  }
  return line + '\n' + ' '.repeat(c - 1) + '^';
}

// A rule's gains and losses are counts of decisions; lists of touchpoints
// are shown as chips too, should the server name them.
function countOf(v) {
  if (Array.isArray(v)) return v.length;
  return typeof v === 'number' ? v : 0;
}

function gainLoss(v, cls) {
  if (Array.isArray(v)) return chipList(v, cls);
  if (!v) return h('span', { class: 'muted' }, '—');
  return h('span', { class: cls === 'gain' ? 'ok-text' : 'bad-text' }, (cls === 'gain' ? '+' : '−') + fmtNumber(v));
}

function chipList(items, cls) {
  if (!items || !items.length) return h('span', { class: 'muted' }, '—');
  return h('div', { class: 'chips' }, items.map((x) => h('span', { class: `chip chip-${cls}` }, x)));
}

function itemsChips(items) {
  if (!items || !items.length) return h('span', { class: 'chip chip-empty' }, 'nothing');
  return h('span', { class: 'chips' }, items.map((it) => h('span', { class: 'chip' + (it.fallback ? ' chip-fallback' : ''), title: it.rule ? `rule ${it.rule}` : (it.fallback ? 'fallback' : '') },
    it.touchpoint, it.fallback ? h('span', { class: 'muted' }, ' (fallback)') : null)));
}

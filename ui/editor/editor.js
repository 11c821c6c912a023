// The playground's rule editor: CodeMirror 6 with YAML highlighting and
// diagnostics. build.mjs bundles this file into ui/assets/vendor/editor.js,
// which the page imports as a plain ES module:
//
//   import {createEditor} from './vendor/editor.js';
//   const ed = createEditor(document.getElementById('rules'), {doc, onChange});
//   ed.setDiagnostics([{line: 3, col: 5, message: 'unknown field', severity: 'error'}]);
//
// Finding diagnostics from a browser test: the editor root (.cm-editor) has
// data-testid="rule-editor". Every line with an error diagnostic gets the
// class cm-error-line (a line with only warnings gets cm-warning-line), and
// both carry data-line="N", the 1-based line number in the current document:
//
//   document.querySelector('[data-testid="rule-editor"] .cm-line.cm-error-line')
//           .getAttribute('data-line')   // -> "3"
//
// CodeMirror only renders the lines in and near the viewport, so scroll with
// goTo(line, 1) first when the document is long.
//
// Styles are injected at run time as a <style> element, so a page with a
// Content-Security-Policy needs style-src 'unsafe-inline', or must pass the
// page's CSP nonce as the nonce option (style-src 'nonce-...'). The theme below
// draws the lint underlines and gutter markers with plain CSS instead of
// CodeMirror's data: SVG images, so img-src needs no data:.

import {EditorState, StateEffect, StateField, RangeSetBuilder} from '@codemirror/state';
import {
  EditorView, Decoration, keymap, lineNumbers, highlightActiveLine,
  highlightActiveLineGutter, highlightSpecialChars, drawSelection,
} from '@codemirror/view';
import {defaultKeymap, history, historyKeymap, indentWithTab} from '@codemirror/commands';
import {
  HighlightStyle, syntaxHighlighting, bracketMatching, indentOnInput, indentUnit,
} from '@codemirror/language';
import {lintGutter, setDiagnostics as lintSetDiagnostics} from '@codemirror/lint';
import {searchKeymap, highlightSelectionMatches} from '@codemirror/search';
import {yaml} from '@codemirror/lang-yaml';
import {tags as t} from '@lezer/highlight';

const SEVERITIES = new Set(['error', 'warning', 'info', 'hint']);

// --- line decorations for diagnostics (cm-error-line / cm-warning-line) ---

// The effect carries [{pos, severity}]; positions are document offsets.
const setMarkedLines = StateEffect.define();

function buildLineDecorations(doc, marks) {
  // One decoration per line, the most severe diagnostic on it wins.
  const byLine = new Map();
  for (const m of marks) {
    const n = doc.lineAt(Math.min(m.pos, doc.length)).number;
    if (byLine.get(n) !== 'error') byLine.set(n, m.severity === 'error' ? 'error' : 'warning');
  }
  const builder = new RangeSetBuilder();
  for (const n of [...byLine.keys()].sort((a, b) => a - b)) {
    const sev = byLine.get(n);
    builder.add(doc.line(n).from, doc.line(n).from, Decoration.line({
      class: sev === 'error' ? 'cm-error-line' : 'cm-warning-line',
      attributes: {'data-line': String(n), 'data-severity': sev},
    }));
  }
  return builder.finish();
}

const markedLines = StateField.define({
  create: () => ({marks: [], deco: Decoration.none}),
  update(value, tr) {
    for (const e of tr.effects) {
      if (e.is(setMarkedLines)) return {marks: e.value, deco: buildLineDecorations(tr.state.doc, e.value)};
    }
    if (!tr.docChanged || value.marks.length === 0) return value;
    // Follow the text through edits and renumber data-line.
    const marks = value.marks.map((m) => ({pos: tr.changes.mapPos(m.pos), severity: m.severity}));
    return {marks, deco: buildLineDecorations(tr.state.doc, marks)};
  },
  provide: (f) => EditorView.decorations.from(f, (v) => v.deco),
});

// --- diagnostics: {line, col, message, severity} -> CodeMirror ranges ---

function clampInt(v, lo, hi) {
  let n = Math.trunc(Number(v));
  if (!Number.isFinite(n)) n = lo;
  return Math.max(lo, Math.min(hi, n));
}

// posAt turns a 1-based line and column into a document offset, clamping
// both into the document.
function posAt(doc, line, col) {
  const l = doc.line(clampInt(line, 1, doc.lines));
  return l.from + clampInt(col, 1, l.length + 1) - 1;
}

function toDiagnostic(doc, d) {
  d = d || {};
  const from = posAt(doc, d.line, d.col);
  let to = from;
  if (d.endLine != null || d.endCol != null) {
    // Optional explicit end (exclusive column), same clamping.
    to = Math.max(from, posAt(doc, d.endLine ?? d.line, d.endCol ?? d.col));
  } else {
    // Underline the word that starts at the column, up to the end of the line.
    const lineEnd = doc.lineAt(from).to;
    const rest = doc.sliceString(from, lineEnd);
    const m = /^\S+/.exec(rest);
    to = m ? from + m[0].length : from;
  }
  const severity = SEVERITIES.has(d.severity) ? d.severity : 'error';
  return {from, to, severity, message: d.message == null ? '' : String(d.message)};
}

// --- look ---

const mono = 'ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace';
const sans = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

const theme = EditorView.theme({
  '&': {height: '100%', fontSize: '13px', color: '#1f2328', backgroundColor: '#ffffff'},
  '&.cm-focused': {outline: 'none'},
  '.cm-scroller': {overflow: 'auto', fontFamily: mono, lineHeight: '1.55'},
  '.cm-content': {padding: '6px 0', caretColor: '#1f2328'},
  '.cm-line': {padding: '0 12px 0 8px'},
  '.cm-cursor, .cm-dropCursor': {borderLeftColor: '#1f2328', borderLeftWidth: '2px'},
  '&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, ::selection':
    {backgroundColor: '#cfe3ff'},
  '.cm-activeLine': {backgroundColor: '#f6f8fa'},
  '.cm-gutters': {backgroundColor: '#fafbfc', color: '#8c959f', borderRight: '1px solid #eaeef2'},
  '.cm-activeLineGutter': {backgroundColor: '#eef1f4', color: '#57606a'},
  '.cm-lineNumbers .cm-gutterElement': {padding: '0 8px 0 12px', minWidth: '28px'},
  '.cm-matchingBracket, &.cm-focused .cm-matchingBracket': {backgroundColor: '#dbeafe', outline: '1px solid #93c5fd'},
  '.cm-nonmatchingBracket, &.cm-focused .cm-nonmatchingBracket': {backgroundColor: '#fde2e1'},
  '.cm-selectionMatch': {backgroundColor: '#fff3bf'},
  '.cm-searchMatch': {backgroundColor: '#fff3bf', outline: '1px solid #f5d565'},
  '.cm-searchMatch.cm-searchMatch-selected': {backgroundColor: '#ffe08a'},

  // Lines with diagnostics.
  '.cm-error-line': {backgroundColor: '#fff1f0'},
  '.cm-error-line.cm-activeLine': {backgroundColor: '#ffe8e6'},
  '.cm-warning-line': {backgroundColor: '#fffbeb'},

  // Underlines in CSS rather than data: SVG backgrounds (see the top comment).
  '.cm-lintRange': {backgroundImage: 'none', paddingBottom: '0',
    textDecorationLine: 'underline', textDecorationStyle: 'wavy', textDecorationSkipInk: 'none',
    textDecorationThickness: '1px', textUnderlineOffset: '3px'},
  '.cm-lintRange-error': {textDecorationColor: '#d1242f'},
  '.cm-lintRange-warning': {textDecorationColor: '#bf8700'},
  '.cm-lintRange-info': {textDecorationColor: '#8c959f'},
  '.cm-lintRange-hint': {textDecorationColor: '#6e77d8'},
  '.cm-lintRange-active': {backgroundColor: '#fff3bf'},
  '.cm-lintPoint:after': {borderBottomColor: '#d1242f'},
  '.cm-lintPoint-warning:after': {borderBottomColor: '#bf8700'},

  // Gutter markers: a dot for errors, an amber dot for warnings.
  '.cm-gutter-lint': {width: '14px'},
  '.cm-gutter-lint .cm-gutterElement': {padding: '0 0 0 4px'},
  '.cm-lint-marker': {content: 'normal', width: '8px', height: '8px', borderRadius: '50%',
    display: 'inline-block', verticalAlign: 'middle', marginTop: '-2px', boxSizing: 'border-box'},
  '.cm-lint-marker-error': {content: 'normal', backgroundColor: '#d1242f'},
  '.cm-lint-marker-warning': {content: 'normal', backgroundColor: '#d4a72c'},
  '.cm-lint-marker-info': {content: 'normal', backgroundColor: '#8c959f'},
  '.cm-lint-marker-hint': {content: 'normal', backgroundColor: '#6e77d8'},

  // Tooltips and panels use the UI font.
  '.cm-tooltip': {fontFamily: sans, fontSize: '13px', backgroundColor: '#ffffff', color: '#1f2328',
    border: '1px solid #d0d7de', borderRadius: '6px', boxShadow: '0 4px 12px rgba(31,35,40,.12)', overflow: 'hidden'},
  '.cm-diagnostic': {padding: '6px 10px 6px 10px', maxWidth: '520px'},
  '.cm-diagnostic-error': {borderLeft: '4px solid #d1242f'},
  '.cm-diagnostic-warning': {borderLeft: '4px solid #d4a72c'},
  '.cm-panels': {fontFamily: sans, fontSize: '13px', backgroundColor: '#f6f8fa', color: '#1f2328'},
  '.cm-panels.cm-panels-bottom': {borderTop: '1px solid #d0d7de'},
  '.cm-panels.cm-panels-top': {borderBottom: '1px solid #d0d7de'},
  '.cm-textfield': {fontFamily: sans, fontSize: '13px'},
  '.cm-button': {fontFamily: sans, fontSize: '13px', backgroundImage: 'none'},
}, {dark: false});

const highlight = HighlightStyle.define([
  {tag: t.definition(t.propertyName), color: '#0550ae'},
  {tag: t.propertyName, color: '#0550ae'},
  {tag: [t.string, t.special(t.string)], color: '#0a3069'},
  {tag: t.content, color: '#1f2328'},
  {tag: [t.lineComment, t.comment], color: '#6e7781', fontStyle: 'italic'},
  {tag: [t.keyword, t.meta], color: '#cf222e'},
  {tag: t.attributeValue, color: '#0a3069'},
  {tag: [t.labelName, t.typeName], color: '#8250df'},
  {tag: [t.separator, t.punctuation, t.squareBracket, t.brace], color: '#57606a'},
  {tag: [t.number, t.bool, t.null, t.atom], color: '#0550ae'},
]);

// --- the API ---

/**
 * createEditor mounts a YAML editor in parent (which should have a height:
 * the editor fills it and scrolls inside).
 *
 * onChange(text) is called after every change to the document, including
 * those made by setText. nonce, if given, is set on the injected <style>
 * element for a Content-Security-Policy without style-src 'unsafe-inline'.
 */
export function createEditor(parent, {doc = '', onChange = null, readOnly = false, nonce = ''} = {}) {
  const extensions = [
    lineNumbers(),
    highlightActiveLineGutter(),
    lintGutter(),
    highlightSpecialChars(),
    history(),
    drawSelection(),
    indentOnInput(),
    indentUnit.of('  '),
    EditorState.tabSize.of(2),
    bracketMatching(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    yaml(),
    syntaxHighlighting(highlight),
    theme,
    markedLines,
    keymap.of([...defaultKeymap, ...historyKeymap, ...searchKeymap, indentWithTab]),
    EditorView.editorAttributes.of({'data-testid': 'rule-editor'}),
    EditorView.contentAttributes.of({'aria-label': 'Rules (YAML)'}),
  ];
  if (readOnly) extensions.push(EditorState.readOnly.of(true));
  if (nonce) extensions.push(EditorView.cspNonce.of(String(nonce)));
  if (typeof onChange === 'function') {
    extensions.push(EditorView.updateListener.of((u) => {
      if (u.docChanged) onChange(u.state.doc.toString());
    }));
  }

  const view = new EditorView({
    parent,
    state: EditorState.create({doc: String(doc ?? ''), extensions}),
  });

  function setDiagnostics(list) {
    const state = view.state;
    const diags = (Array.isArray(list) ? list : []).map((d) => toDiagnostic(state.doc, d));
    const marks = diags.filter((d) => d.severity === 'error' || d.severity === 'warning')
      .map((d) => ({pos: d.from, severity: d.severity}));
    const spec = lintSetDiagnostics(state, diags);
    view.dispatch({effects: [...[].concat(spec.effects || []), setMarkedLines.of(marks)]});
  }

  return {
    view,
    getText: () => view.state.doc.toString(),
    setText(text) {
      view.dispatch({
        changes: {from: 0, to: view.state.doc.length, insert: String(text ?? '')},
        selection: {anchor: 0},
        scrollIntoView: true,
      });
      setDiagnostics([]);
    },
    setDiagnostics,
    goTo(line, col = 1) {
      const pos = posAt(view.state.doc, line, col);
      view.dispatch({
        selection: {anchor: pos},
        effects: EditorView.scrollIntoView(pos, {y: 'center'}),
      });
      view.focus();
    },
    focus: () => view.focus(),
    destroy: () => view.destroy(),
  };
}

(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var PAGE = 50, MEMBER_PAGE = 200, TREE_DRAW_LIMIT = 300;
  var NW = 200, NH = 54, GX = 136, GY = 12, LW = 108;  // horizontal layout: node size, gaps, edge label width
  var VGX = 16, VGY = 52;                               // vertical layout: gaps between columns and between rows
  var KINDS = ['copy', 'truncation', 'excerpt', 'spin', 'paraphrase', 'insertion', 'mixed'];
  var KIND_HELP = {  // provenance/trace/changes.py's rules, without their thresholds (options of the run)
    copy: 'none of the changes below', truncation: 'follows the parent from its start and stops early',
    excerpt: 'a shorter part of the parent', spin: 'words swapped for others (synonym spin)',
    paraphrase: 'rewritten: little kept verbatim, few word swaps', insertion: 'text or lines added',
    mixed: 'several of these at once'
  };

  function $(id) { return document.getElementById(id); }
  function readJSON(id) { var n = $(id); return n ? JSON.parse(n.textContent) : null; }
  function h(tag, props, kids) {
    var n = document.createElement(tag);
    if (props) Object.keys(props).forEach(function (k) {
      if (k === 'text') n.textContent = props[k];
      else if (k === 'cls') n.className = props[k];
      else n.setAttribute(k, props[k]);
    });
    (kids || []).forEach(function (c) { if (c != null) n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return n;
  }
  function s(tag, attrs, text) {
    var n = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text != null) n.textContent = text;
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
  function num(x) { return x == null ? '' : String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function f2(x) { return x == null ? '' : Number(x).toFixed(2); }
  function pct(x) { return x == null ? '' : Math.round(100 * x) + '%'; }
  function cut(t, n) { t = t == null ? '' : String(t); return t.length > n ? t.slice(0, n - 1) + '\u2026' : t; }
  function kindColor(k) { return KINDS.indexOf(k) >= 0 ? 'var(--' + k + ')' : '#57606a'; }
  function chip(label, value, cls) { return h('span', {cls: 'chip' + (cls ? ' ' + cls : '')}, [label ? h('b', {text: label + ' '}) : null, String(value)]); }
  function kindChip(k) { var c = chip('', k || 'origin', 'kind'); c.style.background = k ? kindColor(k) : '#1f2328'; return c; }
  function plural(n, word) { return num(n) + ' ' + word + (n === 1 ? '' : 's'); }
  // Only http(s) addresses become links; anything else (javascript:, data:, a relative path) stays text.
  function safeUrl(u) {
    if (!u || typeof u !== 'string') return null;
    try { var url = new URL(u.trim()); return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null; }
    catch (err) { return null; }
  }
  function urlNode(u, label) {
    if (!u) return null;
    var link = safeUrl(u);
    if (!link) return h('span', {cls: 'mono url-text', title: 'not an http(s) address: not a link', text: cut(u, 80)});
    return h('a', {href: link, rel: 'noopener noreferrer', target: '_blank', cls: 'url', title: link, text: label || cut(link, 60)});
  }
  // Text as the search compares it: NFKC, ASCII quotes and dashes, lower case, white space folded.
  function fold(t) {
    t = String(t == null ? '' : t);
    if (t.normalize) t = t.normalize('NFKC');
    return t.replace(/[\u2018\u2019\u201a\u201b\u2032\u00b4`]/g, "'").replace(/[\u201c\u201d\u201e\u201f\u2033]/g, '"')
      .replace(/[\u2010-\u2015\u2212]/g, '-').replace(/\s+/g, ' ').toLowerCase();
  }

  var META = readJSON('meta'), IX = readJSON('index'), SG = readJSON('singles') || {id: [], t: [], s: [], d: [], u: [], n: []};
  var N = IX.id.length, NS = SG.id.length, byId = {}, byDoc = {}, i;
  for (i = 0; i < N; i++) byId[IX.id[i]] = i;
  for (i = 0; i < NS; i++) byDoc[SG.id[i]] = i;
  var trees = {}, diffs = {}, texts = {}, hay = {};
  function tree(ci) { if (!trees.hasOwnProperty(ci)) trees[ci] = readJSON('t' + ci); return trees[ci]; }
  function diffsOf(ci) { if (!diffs.hasOwnProperty(ci)) diffs[ci] = readJSON('d' + ci) || {}; return diffs[ci]; }
  function label(T, k) { return META.labels[T.s[k]] || ''; }
  function sideText(D, side) {  // a side of an aligned edge, rebuilt from its segments
    return D.s.map(function (g) {
      var op = g[0];
      if (side === 'child') return op === '=' || op === '+' ? g[1] : op === '~' ? g[2] : '';
      return op === '=' ? (g.length > 2 ? g[2] : g[1]) : op === '-' || op === '~' ? g[1] : '';
    }).join('');
  }
  // The normalised text of each member: embedded once, in x{ci} or inside an embedded diff (null: not in the page).
  function textsOf(ci) {
    if (texts.hasOwnProperty(ci)) return texts[ci];
    var T = tree(ci), X = (readJSON('x' + ci) || {}).x || [], D = diffsOf(ci), out = [], k;
    for (k = 0; k < T.id.length; k++) out.push(X[k] != null ? X[k] : null);
    Object.keys(D).forEach(function (key) {
      var e = D[key], kk = +key;
      if (e.cap) return;
      if (out[kk] == null) out[kk] = sideText(e, 'child');
      if (T.p[kk] >= 0 && out[T.p[kk]] == null) out[T.p[kk]] = sideText(e, 'parent');
    });
    texts[ci] = out;
    return out;
  }
  function haystack(ci) {  // per member: title, publisher, id and text, folded
    if (hay.hasOwnProperty(ci)) return hay[ci];
    var T = tree(ci), X = textsOf(ci), out = [];
    for (var k = 0; k < T.id.length; k++) out.push(fold([T.t[k], label(T, k), T.id[k], X[k]].join('\n')));
    hay[ci] = out;
    return out;
  }
  var singleHay = null, singleTexts = null;
  function singleText(j) { if (!singleTexts) singleTexts = (readJSON('xs') || {}).x || []; return singleTexts[j] != null ? singleTexts[j] : null; }
  function singleHaystack(j) {
    if (!singleHay) singleHay = [];
    if (singleHay[j] == null) singleHay[j] = fold([SG.t[j], META.labels[SG.s[j]], SG.id[j], singleText(j)].join('\n'));
    return singleHay[j];
  }

  // ------------------------------------------------------------------ header
  (function () {
    var c = META.counts, parts = [plural(c.documents, 'document'), plural(c.multi, 'cluster') + ' with copies',
      num(c.singletons) + ' without copies', plural(c.edges, 'copy edge')];
    if (c.rejected != null) parts.push(num(c.rejected) + ' rejected');
    $('summary').textContent = parts.join(' \u00b7 ');
    var run = $('run');
    run.appendChild(h('div', {}, ['Outputs: ', h('span', {cls: 'mono', text: META.out_dir})]));
    if (META.inputs.length) run.appendChild(h('div', {}, ['Inputs: ', h('span', {cls: 'mono', text: META.inputs.join(', ')})]));
    run.appendChild(h('div', {text: 'Aligned texts embedded for ' + num(META.embedded_diffs) + ' of ' + num(c.edges) +
      ' edges (the first ' + META.caps.per_cluster + ' edges of each cluster, largest clusters first, ' +
      num(META.caps.edges) + ' at most). Others: provenance diff PARENT CHILD --out DIR.'}));
    if (META.with_text != null) run.appendChild(h('div', {text: 'Search reads titles, publishers and ids of all ' +
      num(META.in_page) + ' documents in the page and the text of ' + num(META.with_text) + '.'}));
    if (META.singles_total > META.singles_listed) run.appendChild(h('div', {text: 'Documents without copies: the first ' +
      num(META.singles_listed) + ' of ' + num(META.singles_total) + ' (by id) are in the page.'}));
    if (META.version) run.appendChild(h('div', {text: 'provenance ' + META.version}));
  })();

  // ------------------------------------------------------------------ filters
  // An entry of the index is a cluster (0..N-1) or a document without copies (N + its position).
  var F = {q: '', pub: '', kind: '', ccmin: '', ccmax: '', pcmin: '', pcmax: '', from: '', to: '', single: ''};
  var FKEYS = Object.keys(F);
  var st = {sort: 'size', dir: -1, page: 0, ci: -1, k: -1, doc: -1, mpage: 0, layout: 'auto', zoom: 0};
  var view = [], hits = {}, singlesHidden = 0;  // hits[entry]: member positions that match (when a member filter is on)
  function numOr(v, dflt) { var x = parseFloat(v); return isNaN(x) ? dflt : x; }
  function memberFiltering() { return !!(F.q.trim() || F.pub.trim() || F.from || F.to || edgeFiltering()); }
  function edgeFiltering() { return !!(F.kind || F.ccmin !== '' || F.ccmax !== '' || F.pcmin !== '' || F.pcmax !== ''); }
  function matcher() {
    var q = fold(F.q).trim(), pub = fold(F.pub).trim(), from = F.from, to = F.to, edge = edgeFiltering();
    var cc = [numOr(F.ccmin, -1), numOr(F.ccmax, 2)], pc = [numOr(F.pcmin, -1), numOr(F.pcmax, 2)];
    function dateOk(d) {
      if (!from && !to) return true;
      if (!d) return false;
      var day = String(d).slice(0, 10);
      return (!from || day >= from) && (!to || day <= to);
    }
    return {
      member: function (ci, T, k) {
        if (edge) {
          if (T.p[k] < 0) return false;
          if (F.kind && T.k[k] !== F.kind) return false;
          if (T.cc[k] == null || T.cc[k] < cc[0] || T.cc[k] > cc[1]) return false;
          if (T.pc[k] == null || T.pc[k] < pc[0] || T.pc[k] > pc[1]) return false;
        }
        if (pub && fold(label(T, k)).indexOf(pub) < 0) return false;
        if (!dateOk(T.d[k])) return false;
        return !q || haystack(ci)[k].indexOf(q) >= 0;
      },
      single: function (j) {
        if (edge) return false;
        if (pub && fold(META.labels[SG.s[j]]).indexOf(pub) < 0) return false;
        if (!dateOk(SG.d[j])) return false;
        return !q || singleHaystack(j).indexOf(q) >= 0;
      }
    };
  }
  function value(e, key) {
    if (e < N) return key === 'title' ? IX.title[e] : IX[key][e];
    var j = e - N;
    return {size: 1, copies: 0, depth: 0, spun: null, trunc: null, conf: null, title: SG.t[j]}[key];
  }
  function recompute() {
    var out = [], filtering = memberFiltering(), m = filtering ? matcher() : null, j, k;
    hits = {};
    for (j = 0; j < N; j++) {
      if (filtering) {
        var T = tree(j), found = [];
        for (k = 0; k < T.id.length; k++) if (m.member(j, T, k)) found.push(k);
        if (!found.length) continue;
        hits[j] = found;
      }
      out.push(j);
    }
    singlesHidden = 0;
    if (F.single) { for (j = 0; j < NS; j++) if (!filtering || m.single(j)) { out.push(N + j); if (filtering) hits[N + j] = [0]; } }
    else if (filtering) { for (j = 0; j < NS; j++) if (m.single(j)) singlesHidden++; }
    var key = st.sort, dir = st.dir;
    out.sort(function (a, b) {
      var x = value(a, key), y = value(b, key);
      if (x == null) x = key === 'title' ? '' : -1;
      if (y == null) y = key === 'title' ? '' : -1;
      if (key === 'title') { x = String(x).toLowerCase(); y = String(y).toLowerCase(); }
      return x < y ? -dir : x > y ? dir : a - b;
    });
    view = out;
  }
  function filterHash() {
    return FKEYS.filter(function (key) { return F[key] !== ''; }).map(function (key) { return key + '=' + encodeURIComponent(F[key]); });
  }
  function applyFilters() {
    st.page = 0; recompute(); renderIndex();
    var h2 = currentHash();
    if (location.hash !== h2 && history.replaceState) history.replaceState(null, '', h2);
    markHits();
  }
  (function buildFilters() {
    var box = $('filters');
    var pubs = META.labels.slice().sort(function (a, b) { return a.toLowerCase() < b.toLowerCase() ? -1 : 1; }).slice(0, 2000);
    var list = h('datalist', {id: 'publishers'}, pubs.map(function (p) { return h('option', {value: p}); }));
    function field(lbl, input, title) { return h('label', {cls: 'field', title: title || ''}, [h('span', {text: lbl}), input]); }
    function input(key, attrs) {
      var el = h('input', attrs);
      el.id = 'f-' + key;
      el.addEventListener(attrs.type === 'checkbox' ? 'change' : 'input', function () {
        F[key] = attrs.type === 'checkbox' ? (el.checked ? '1' : '') : el.value;
        applyFilters();
      });
      return el;
    }
    var kind = h('select', {id: 'f-kind', 'aria-label': 'change kind'}, [h('option', {value: '', text: 'any change'})]
      .concat(KINDS.map(function (k) { return h('option', {value: k, text: k}); })));
    kind.addEventListener('change', function () { F.kind = kind.value; applyFilters(); });
    var range = function (key, lbl) { return input(key, {type: 'number', min: 0, max: 1, step: 0.05, placeholder: lbl, 'aria-label': key, cls: 'conf'}); };
    box.appendChild(list);
    box.appendChild(h('div', {cls: 'frow'}, [
      field('publisher', input('pub', {type: 'search', list: 'publishers', placeholder: 'any', 'aria-label': 'publisher'}),
        'members whose publisher (or source file) contains this'),
      field('change', kind, 'members whose incoming edge is of this kind'),
      field('from', input('from', {type: 'date', 'aria-label': 'published from'}), 'members published on or after'),
      field('to', input('to', {type: 'date', 'aria-label': 'published until'}), 'members published on or before')]));
    box.appendChild(h('div', {cls: 'frow'}, [
      field('copy conf.', h('span', {}, [range('ccmin', 'min'), '\u2013', range('ccmax', 'max')]),
        'copy_confidence of the member\'s incoming edge, between'),
      field('parent conf.', h('span', {}, [range('pcmin', 'min'), '\u2013', range('pcmax', 'max')]),
        'parent_confidence of the member\'s incoming edge, between'),
      h('label', {cls: 'field check', title: 'list the documents no other document copies, nor copy one'},
        [input('single', {type: 'checkbox', 'aria-label': 'include documents without copies'}),
          h('span', {text: 'documents without copies (' + num(META.singles_listed) + ')'})])]));
    var csvDocs = h('button', {type: 'button', id: 'csv-docs', title: 'the documents the filters show, one row each'}, ['CSV: documents']);
    var csvClusters = h('button', {type: 'button', id: 'csv-clusters', title: 'the rows of the index as filtered'}, ['CSV: clusters']);
    var reset = h('button', {type: 'button', id: 'f-reset'}, ['clear filters']);
    csvDocs.addEventListener('click', function () { download('provenance-documents.csv', documentsCsv()); });
    csvClusters.addEventListener('click', function () { download('provenance-clusters.csv', clustersCsv()); });
    reset.addEventListener('click', function () {
      FKEYS.forEach(function (key) { F[key] = ''; });
      syncInputs(); applyFilters();
    });
    box.appendChild(h('div', {cls: 'frow'}, [csvDocs, csvClusters, reset]));
  })();
  function syncInputs() {
    $('filter').value = F.q;
    FKEYS.forEach(function (key) {
      var el = $('f-' + key);
      if (!el) return;
      if (el.type === 'checkbox') el.checked = !!F[key]; else el.value = F[key];
    });
  }

  // ------------------------------------------------------------------ CSV export
  function csvCell(v) {
    if (v == null) return '';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    v = String(v);
    if (/^[=+\-@\t\r]/.test(v)) v = "'" + v;  // a spreadsheet would run it as a formula
    return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }
  function csv(rows) { return rows.map(function (r) { return r.map(csvCell).join(','); }).join('\r\n') + '\r\n'; }
  function documentsCsv() {
    var rows = [['cluster_id', 'cluster_size', 'doc_id', 'parent_id', 'is_origin', 'title', 'publisher', 'published_at', 'url',
      'change_kind', 'confidence', 'copy_confidence', 'parent_confidence', 'similarity']];
    var filtering = memberFiltering();
    view.forEach(function (e) {
      if (e >= N) {
        var j = e - N;
        rows.push(['', 1, SG.id[j], '', true, SG.t[j], META.labels[SG.s[j]], SG.d[j], SG.u[j], '', '', '', '', '']);
        return;
      }
      var T = tree(e), ks = filtering ? hits[e] : T.id.map(function (_, k) { return k; });
      ks.forEach(function (k) {
        var p = T.p[k], edge = p >= 0;
        rows.push([IX.id[e], IX.size[e], T.id[k], edge ? T.id[p] : '', !edge, T.t[k], label(T, k), T.d[k], T.u[k],
          edge ? T.k[k] : '', edge ? T.c[k] : '', edge ? T.cc[k] : '', edge ? T.pc[k] : '', edge ? T.sim[k] : '']);
      });
    });
    return csv(rows);
  }
  function clustersCsv() {
    var rows = [['cluster_id', 'size', 'copies', 'depth', 'share_spun', 'share_truncated', 'mean_confidence', 'origin_id',
      'origin_title', 'origin_published_at', 'matching_documents']];
    var filtering = memberFiltering();
    view.forEach(function (e) {
      if (e >= N) { var j = e - N; rows.push(['', 1, 0, 0, '', '', '', SG.id[j], SG.t[j], SG.d[j], 1]); return; }
      rows.push([IX.id[e], IX.size[e], IX.copies[e], IX.depth[e], IX.spun[e], IX.trunc[e], IX.conf[e], IX.origin[e], IX.title[e],
        IX.date[e], filtering ? hits[e].length : IX.size[e]]);
    });
    return csv(rows);
  }
  function download(name, text) {
    var blob = new Blob(['\ufeff' + text], {type: 'text/csv;charset=utf-8'});
    var url = URL.createObjectURL(blob), a = h('a', {href: url, download: name});
    document.body.appendChild(a); a.click(); document.body.removeChild(a);
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }
  window.__report = {documentsCsv: documentsCsv, clustersCsv: clustersCsv, safeUrl: safeUrl};

  // ------------------------------------------------------------------ index
  var COLS = [
    {key: 'size', label: 'size', num: true, title: 'documents in the cluster'},
    {key: 'copies', label: 'copies', num: true, title: 'copies taken directly from the origin'},
    {key: 'depth', label: 'depth', num: true, title: 'longest chain of copies of copies'},
    {key: 'spun', label: 'spun', num: true, title: 'share of copies with synonym spin'},
    {key: 'trunc', label: 'trunc.', num: true, title: 'share of truncated copies'},
    {key: 'conf', label: 'conf.', num: true, title: 'mean edge confidence'},
    {key: 'title', label: 'origin title', num: false, title: 'title of the probable origin (and its date)'}
  ];
  function renderHead() {
    var tr = clear($('index-head'));
    COLS.forEach(function (c) {
      var th = h('th', {cls: c.num ? 'num' : '', title: c.title}, [h('button', {type: 'button', text: c.label})]);
      if (st.sort === c.key) th.setAttribute('aria-sort', st.dir < 0 ? 'descending' : 'ascending');
      th.firstChild.addEventListener('click', function () {
        if (st.sort === c.key) st.dir = -st.dir; else { st.sort = c.key; st.dir = c.num ? -1 : 1; }
        st.page = 0; recompute(); renderHead(); renderIndex();
      });
      tr.appendChild(th);
    });
  }
  function renderIndex() {
    var body = clear($('index-body')), pages = Math.max(1, Math.ceil(view.length / PAGE)), filtering = memberFiltering();
    st.page = Math.min(st.page, pages - 1);
    var rows = view.slice(st.page * PAGE, st.page * PAGE + PAGE);
    rows.forEach(function (e) {
      var tr;
      if (e >= N) {
        var j = e - N;
        tr = h('tr', {'data-doc': SG.id[j], cls: 'single' + (st.doc === j && st.ci < 0 ? ' sel' : '')}, [
          h('td', {cls: 'num', text: '1'}), h('td', {cls: 'num muted', text: '\u2013'}), h('td', {cls: 'num muted', text: '\u2013'}),
          h('td', {cls: 'num muted', text: ''}), h('td', {cls: 'num muted', text: ''}), h('td', {cls: 'num muted', text: ''}),
          h('td', {cls: 'fill'}, [h('div', {cls: 'ttl', title: SG.t[j] || '', text: SG.t[j] || '(untitled)'}),
            h('div', {cls: 'sub-line', text: ['no copies', SG.d[j], META.labels[SG.s[j]], SG.id[j]].filter(Boolean).join(' \u00b7 ')})])
        ]);
        tr.addEventListener('click', function () { goDoc(j); });
        tr.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') goDoc(j); });
      } else {
        var sub = [IX.date[e], IX.id[e]];
        if (filtering) sub.unshift(hits[e].length + ' of ' + IX.size[e] + ' match');
        tr = h('tr', {'data-ci': e, cls: e === st.ci ? 'sel' : ''}, [
          h('td', {cls: 'num', text: num(IX.size[e])}),
          h('td', {cls: 'num', text: num(IX.copies[e])}),
          h('td', {cls: 'num', text: String(IX.depth[e])}),
          h('td', {cls: 'num', text: pct(IX.spun[e])}),
          h('td', {cls: 'num', text: pct(IX.trunc[e])}),
          h('td', {cls: 'num', text: f2(IX.conf[e])}),
          h('td', {cls: 'fill'}, [h('div', {cls: 'ttl', title: IX.title[e] || '', text: IX.title[e] || '(untitled)'}),
            h('div', {cls: 'sub-line', text: sub.filter(Boolean).join(' \u00b7 ')})])
        ]);
        tr.addEventListener('click', function () { go(e, -1); });
        tr.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') go(e, -1); });
      }
      tr.tabIndex = 0;
      body.appendChild(tr);
    });
    var any = N + (F.single ? NS : 0);
    if (!rows.length) body.appendChild(h('tr', {}, [h('td', {colspan: COLS.length, cls: 'muted',
      text: any ? 'Nothing matches the filters.' : 'No document has a copy in this run.'})]));
    var clusters = view.filter(function (e) { return e < N; }).length, singles = view.length - clusters;
    $('count').textContent = (clusters === N && !filtering ? plural(N, 'cluster') : num(clusters) + ' of ' + plural(N, 'cluster')) +
      (F.single ? ' + ' + plural(singles, 'single') : singlesHidden ? ' (' + num(singlesHidden) + ' without copies too: tick below)' : '');
    $('page').textContent = 'page ' + (st.page + 1) + ' of ' + pages;
    $('prev').disabled = st.page === 0;
    $('next').disabled = st.page >= pages - 1;
    var sel = body.querySelector('tr.sel');  // the open row stays in sight (a document without copies lists last)
    if (sel && sel.scrollIntoView) sel.scrollIntoView({block: 'nearest'});
  }
  $('prev').addEventListener('click', function () { st.page--; renderIndex(); });
  $('next').addEventListener('click', function () { st.page++; renderIndex(); });
  var typing = null;  // search as one types, once a pause comes (the first search reads every text of the page)
  $('filter').addEventListener('input', function (e) {
    F.q = e.target.value;
    clearTimeout(typing);
    typing = setTimeout(applyFilters, 120);
  });
  $('filter').addEventListener('keydown', function (e) { if (e.key === 'Enter') { clearTimeout(typing); applyFilters(); } });

  // ------------------------------------------------------------------ routing
  function hashOf(ci, k, doc) {
    var parts = [];
    if (ci >= 0) { parts.push('c=' + encodeURIComponent(IX.id[ci])); if (k >= 0) parts.push('e=' + encodeURIComponent(tree(ci).id[k])); }
    else if (doc >= 0) parts.push('d=' + encodeURIComponent(SG.id[doc]));
    return '#' + parts.concat(filterHash()).join('&');
  }
  function currentHash() { return hashOf(st.ci, st.k, st.doc); }
  function go(ci, k) { var hash = hashOf(ci, k, -1); if (location.hash === hash) route(); else location.hash = hash; }
  function goDoc(j) { var hash = hashOf(-1, -1, j); if (location.hash === hash) route(); else location.hash = hash; }
  var lastFilters = null;
  function route() {
    var params = {}, ci = -1, k = -1;
    location.hash.replace(/^#/, '').split('&').forEach(function (p) {
      var at = p.indexOf('=');
      if (at > 0) { try { params[p.slice(0, at)] = decodeURIComponent(p.slice(at + 1)); } catch (err) { /* a mangled link */ } }
    });
    FKEYS.forEach(function (key) { F[key] = params.hasOwnProperty(key) ? params[key] : ''; });
    var sig = JSON.stringify(F);
    if (sig !== lastFilters) { lastFilters = sig; syncInputs(); recompute(); }
    if (params.d && byDoc.hasOwnProperty(params.d)) {
      var j = byDoc[params.d];
      if (!F.single) { F.single = '1'; syncInputs(); recompute(); lastFilters = JSON.stringify(F); }
      st.ci = -1; st.k = -1; st.doc = j;
      pageTo(N + j); renderIndex(); renderSingle(j);
      return;
    }
    if (params.c && byId.hasOwnProperty(params.c)) ci = byId[params.c];
    else {
      var firstCluster = view.filter(function (e) { return e < N; })[0];
      ci = firstCluster != null ? firstCluster : N ? 0 : -1;
      if (ci < 0 && view.length) { st.doc = view[0] - N; st.ci = -1; renderIndex(); renderSingle(st.doc); return; }
    }
    if (ci < 0) { st.ci = -1; renderIndex(); showEmpty(); return; }
    var T = tree(ci);
    if (params.e) k = T.id.indexOf(params.e);
    if (k < 0) k = hits[ci] ? firstHitEdge(T, hits[ci]) : T.id.length > 1 ? firstChild(T) : 0;
    if (ci !== st.ci) st.mpage = 0;
    st.ci = ci; st.k = k; st.doc = -1;
    pageTo(ci);
    renderIndex();
    renderCluster(ci, T, k);
  }
  function pageTo(e) { var pos = view.indexOf(e); if (pos >= 0) st.page = Math.floor(pos / PAGE); }
  function firstChild(T) { for (var j = 0; j < T.p.length; j++) if (T.p[j] >= 0) return j; return 0; }
  function firstHitEdge(T, ks) { for (var j = 0; j < ks.length; j++) if (T.p[ks[j]] >= 0) return ks[j]; return ks[0]; }
  function showEmpty() {
    clear($('detail')).appendChild(h('p', {cls: 'muted', text: 'No document has a copy in this run: there is no tree to draw.' +
      (NS ? ' Tick \u201cdocuments without copies\u201d to browse them.' : '')}));
  }
  function markHits() {  // the members the filters match, marked in the open tree and member table
    if (st.ci < 0) return;
    var set = {}, filtering = memberFiltering(), chipEl = $('hitchip');
    if (chipEl) {
      chipEl.style.display = filtering ? '' : 'none';
      chipEl.lastChild.textContent = filtering ? String(hits[st.ci] ? hits[st.ci].length : 0) : '';
    }
    (filtering && hits[st.ci] ? hits[st.ci] : []).forEach(function (k) { set[k] = 1; });
    Array.prototype.forEach.call(document.querySelectorAll('#detail [data-k]'), function (n) {
      var on = filtering && set[+n.getAttribute('data-k')];
      n.classList.toggle('hit', !!on);
    });
  }

  // ------------------------------------------------------------------ tree
  function children(T, n) {
    var kids = [], roots = [], j;
    for (j = 0; j < n; j++) kids.push([]);
    for (j = 0; j < n; j++) { var p = T.p[j]; if (p >= 0 && p < n && p !== j) kids[p].push(j); else roots.push(j); }
    var byDocId = function (a, b) { return T.id[a] < T.id[b] ? -1 : T.id[a] > T.id[b] ? 1 : 0; };
    kids.forEach(function (c) { c.sort(byDocId); });
    roots.sort(byDocId);
    return {kids: kids, roots: roots};
  }
  function preorder(T) {
    var n = T.id.length, ch = children(T, n), order = [], seen = {}, starts = ch.roots.slice(), j;
    for (j = 0; j < n; j++) starts.push(j);  // members caught in a parent cycle (corrupt data) still get listed
    starts.forEach(function (start) {
      var stack = [[start, 0, '', '']];
      while (stack.length) {
        var top = stack.pop(), v = top[0];
        if (seen[v]) continue;
        seen[v] = 1; order.push([v, top[1], top[2]]);
        var kids = ch.kids[v];
        for (var i = kids.length - 1; i >= 0; i--) {
          var last = i === kids.length - 1;
          stack.push([kids[i], top[1] + 1, top[3] + (last ? '\u2514\u2500 ' : '\u251c\u2500 '), top[3] + (last ? '   ' : '\u2502  ')]);
        }
      }
    });
    return order;
  }
  // depth[v] and a leaf-order position lane[v] (a parent centred over its children), for either orientation.
  function layout(T, n) {
    var ch = children(T, n), depth = [], lane = [], next = 0, maxD = 0, seen = {}, stack = [];
    for (var r = ch.roots.length - 1; r >= 0; r--) stack.push([ch.roots[r], 0, false]);
    while (stack.length) {
      var top = stack.pop(), v = top[0], kids = ch.kids[v];
      if (!top[2]) {
        if (seen[v]) continue;
        seen[v] = 1; depth[v] = top[1]; if (top[1] > maxD) maxD = top[1];
        if (!kids.length) { lane[v] = next++; continue; }
        stack.push([v, top[1], true]);
        for (var j = kids.length - 1; j >= 0; j--) stack.push([kids[j], top[1] + 1, false]);
      } else {
        var placed = kids.filter(function (c) { return lane[c] != null; });
        lane[v] = placed.length ? (lane[placed[0]] + lane[placed[placed.length - 1]]) / 2 : next++;
      }
    }
    return {depth: depth, lane: lane, lanes: Math.max(next, 1), levels: maxD + 1};
  }
  function treeSize(L, vertical) {
    return vertical ? {w: 24 + L.lanes * (NW + VGX) - VGX, h: 24 + L.levels * (NH + VGY) - VGY}
      : {w: 24 + L.levels * (NW + GX) - GX, h: 24 + L.lanes * (NH + GY) - GY};
  }
  function drawTree(ci, T, sel, L, vertical) {
    var n = Math.min(T.id.length, TREE_DRAW_LIMIT), size = treeSize(L, vertical), W = size.w, H = size.h;
    var root = s('svg', {'class': 'tree' + (vertical ? ' vertical' : ''), width: W, height: H, viewBox: '0 0 ' + W + ' ' + H,
      role: 'img', 'aria-label': 'derivation tree', 'data-w': W, 'data-h': H});
    var defs = s('defs');
    var marker = s('marker', {id: 'arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto'});
    marker.appendChild(s('path', {d: 'M0,0 L8,4 L0,8 z', fill: '#8c959f'}));
    defs.appendChild(marker); root.appendChild(defs);
    function X(k) { return 12 + (vertical ? L.lane[k] * (NW + VGX) : L.depth[k] * (NW + GX)); }
    function Y(k) { return 12 + (vertical ? L.depth[k] * (NH + VGY) : L.lane[k] * (NH + GY)); }
    var edges = s('g'), nodes = s('g'), k;
    for (k = 0; k < n; k++) {
      var p = T.p[k];
      if (p < 0 || p >= n || L.depth[k] == null || L.depth[p] == null) continue;
      var d, lx, ly;
      if (vertical) {
        var vx1 = X(p) + NW / 2, vy1 = Y(p) + NH, vx2 = X(k) + NW / 2, vy2 = Y(k), ym = vy2 - 16;
        d = 'M' + vx1 + ',' + vy1 + ' C' + vx1 + ',' + (vy1 + 20) + ' ' + vx2 + ',' + (ym - 20) + ' ' + vx2 + ',' + ym + ' L' + vx2 + ',' + (vy2 - 1);
        lx = vx2 - LW / 2; ly = vy2 - 34;
      } else {
        var x1 = X(p) + NW, y1 = Y(p) + NH / 2, x2 = X(k), y2 = Y(k) + NH / 2, xm = x2 - LW - 14;
        d = 'M' + x1 + ',' + y1 + ' C' + (x1 + 30) + ',' + y1 + ' ' + (xm - 30) + ',' + y2 + ' ' + xm + ',' + y2 + ' L' + (x2 - 1) + ',' + y2;
        lx = xm; ly = y2 - 9;
      }
      edges.appendChild(s('path', {'class': 'edge', d: d, 'marker-end': 'url(#arrow)'}));
      var g = s('g', {'class': 'elabel', 'data-k': k});
      g.appendChild(s('rect', {x: lx, y: ly, width: LW, height: 18, rx: 9, fill: kindColor(T.k[k])}));
      g.appendChild(s('text', {x: lx + LW / 2, y: ly + 13, 'text-anchor': 'middle'}, (T.k[k] || '?') + ' \u00b7 ' + f2(T.c[k])));
      g.appendChild(s('title', {}, (T.k[k] || '') + ': confidence ' + f2(T.c[k]) + ' = copy_confidence ' + f2(T.cc[k]) +
        ' \u00d7 parent_confidence ' + f2(T.pc[k])));
      edges.appendChild(g);
    }
    for (k = 0; k < n; k++) {
      if (L.depth[k] == null) continue;
      var node = s('g', {'class': 'node' + (T.p[k] < 0 ? ' origin' : '') + (k === sel ? ' sel' : ''),
        transform: 'translate(' + X(k) + ',' + Y(k) + ')', tabindex: 0, role: 'button', 'data-k': k});
      node.appendChild(s('rect', {width: NW, height: NH, rx: 6}));
      node.appendChild(s('text', {'class': 't', x: 8, y: 16}, cut(T.t[k] || '(untitled)', 29)));
      node.appendChild(s('text', {'class': 'm', x: 8, y: 31}, cut(label(T, k), 32)));
      node.appendChild(s('text', {'class': 'm', x: 8, y: 46}, cut([T.d[k], T.id[k]].filter(Boolean).join(' \u00b7 '), 34)));
      node.appendChild(s('title', {}, [T.t[k], T.id[k], label(T, k), T.d[k], T.u[k]].filter(Boolean).join('\n')));
      (function (kk) {
        node.addEventListener('click', function () { go(ci, kk); });
        node.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(ci, kk); } });
      })(k);
      nodes.appendChild(node);
    }
    root.appendChild(edges); root.appendChild(nodes);
    return root;
  }
  function setZoom(svgTree, z) {
    svgTree.setAttribute('width', Math.round(+svgTree.getAttribute('data-w') * z));
    svgTree.setAttribute('height', Math.round(+svgTree.getAttribute('data-h') * z));
    svgTree.setAttribute('data-zoom', z.toFixed(2));
  }
  function fitZoom(svgTree, box) {
    var room = box.clientWidth - 2, w = +svgTree.getAttribute('data-w');
    return room > 0 && w > room ? room / w : 1;
  }
  // The tree, its toolbar (layout, fit, zoom) and the legend beside it.
  function treePanel(ci, T, k) {
    var n = Math.min(T.id.length, TREE_DRAW_LIMIT), L = layout(T, n), wrap = h('div', {cls: 'treepanel'});
    var box = h('div', {cls: 'treebox', id: 'tree'});
    var bar = h('div', {cls: 'treebar'});
    var buttons = {};
    [['auto', 'auto layout', 'left to right when it fits, else top to bottom when that fits better'],
      ['horizontal', 'left \u2192 right', 'origin on the left'], ['vertical', 'top \u2193 bottom', 'origin on top'],
      ['fit', 'fit width', 'scale the tree to the width of the panel'], ['out', '\u2212', 'zoom out'], ['in', '+', 'zoom in'],
      ['one', '100%', 'actual size']].forEach(function (b) {
      var el = h('button', {type: 'button', 'data-act': b[0], title: b[2], text: b[1]});
      buttons[b[0]] = el; bar.appendChild(el);
    });
    var zoomText = h('span', {cls: 'muted zoom'});
    bar.appendChild(zoomText);
    wrap.appendChild(bar);
    wrap.appendChild(h('div', {cls: 'treerow'}, [box, legend()]));
    var svgTree = null;
    function room() { return Math.max(box.clientWidth - 2, 1); }
    function vertical() {
      if (st.layout === 'vertical') return true;
      if (st.layout === 'horizontal') return false;
      var hw = treeSize(L, false).w, vw = treeSize(L, true).w, r = room();
      return hw > r && vw < hw;  // left to right unless it does not fit and top to bottom is narrower
    }
    function draw() {
      var v = vertical();
      svgTree = drawTree(ci, T, k, L, v);
      clear(box).appendChild(svgTree);
      var fit = fitZoom(svgTree, box), z = st.zoom > 0 ? st.zoom : fit >= 0.6 ? fit : Math.max(fit, 0.6);
      setZoom(svgTree, Math.min(z, 2));
      zoomText.textContent = Math.round(100 * +svgTree.getAttribute('data-zoom')) + '%' + (v ? ' \u00b7 top to bottom' : ' \u00b7 left to right');
      Object.keys(buttons).forEach(function (key) { buttons[key].classList.toggle('on', key === st.layout); });
    }
    bar.addEventListener('click', function (e) {
      var act = e.target && e.target.getAttribute && e.target.getAttribute('data-act');
      if (!act) return;
      var z = +svgTree.getAttribute('data-zoom') || 1;
      if (act === 'auto' || act === 'horizontal' || act === 'vertical') { st.layout = act; st.zoom = 0; }
      else if (act === 'fit') st.zoom = fitZoom(svgTree, box);
      else if (act === 'in') st.zoom = Math.min(z * 1.25, 2);
      else if (act === 'out') st.zoom = Math.max(z / 1.25, 0.2);
      else if (act === 'one') st.zoom = 1;
      draw(); markHits();
    });
    wrap.draw = draw;
    return wrap;
  }
  function legend() {
    var items = KINDS.map(function (kk) {
      var sw = h('span', {cls: 'swatch'}); sw.style.background = kindColor(kk);
      return h('li', {title: KIND_HELP[kk]}, [sw, h('b', {text: kk}), ' ' + KIND_HELP[kk]]);
    });
    return h('aside', {cls: 'tree-legend', 'aria-label': 'legend'}, [
      h('div', {cls: 'lg-h', text: 'Edge colour: kind of change'}), h('ul', {}, items),
      h('div', {cls: 'lg-h', text: 'Number on an arrow: confidence'}),
      h('p', {}, [h('b', {text: 'confidence'}), ' = copy_confidence \u00d7 parent_confidence: the probability that the edge is right.']),
      h('p', {}, [h('b', {text: 'copy_confidence'}), ': probability that the child is a version of the parent\u2019s text ' +
        '(evidence of copying; calibrated, 1.0 for exact duplicates).']),
      h('p', {}, [h('b', {text: 'parent_confidence'}), ': probability that this member, rather than another, is the child\u2019s ' +
        'parent: the derivation model\u2019s softmax over the candidate parents (not yet calibrated).']),
      h('p', {cls: 'muted'}, ['Bold outline: the probable origin; blue: selected; gold ring: matches the search and filters.'])
    ]);
  }

  // ------------------------------------------------------------------ timeline
  function timeline(ci, T, k) {
    var pts = [], j;
    for (j = 0; j < T.id.length; j++) {
      var t = T.d[j] ? Date.parse(String(T.d[j]).replace(' ', 'T')) : NaN;
      if (!isNaN(t)) pts.push([t, j]);
    }
    if (pts.length < 2) return null;
    pts.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    var t0 = pts[0][0], t1 = pts[pts.length - 1][0], span = Math.max(t1 - t0, 1);
    var W = 860, AX = 16, AW = 260, RH = 20, H = 30 + pts.length * RH;
    var root = s('svg', {'class': 'timeline', width: '100%', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'timeline of the cluster'});
    root.appendChild(s('line', {x1: AX, y1: 18, x2: AX + AW, y2: 18, 'class': 'axis'}));
    root.appendChild(s('text', {x: AX, y: 12, 'class': 'm'}, String(T.d[pts[0][1]])));
    root.appendChild(s('text', {x: AX + AW, y: 12, 'class': 'm', 'text-anchor': 'end'}, String(T.d[pts[pts.length - 1][1]])));
    pts.forEach(function (pt, row) {
      var m = pt[1], x = AX + AW * (pt[0] - t0) / span, y = 30 + row * RH;
      var g = s('g', {'class': 'tl' + (m === k ? ' sel' : ''), 'data-k': m, tabindex: 0, role: 'button'});
      g.appendChild(s('line', {x1: AX, y1: y, x2: AX + AW, y2: y, 'class': 'lane'}));
      g.appendChild(s('circle', {cx: x, cy: y, r: T.p[m] < 0 ? 6 : 5, fill: T.p[m] < 0 ? '#1f2328' : kindColor(T.k[m])}));
      g.appendChild(s('text', {x: AX + AW + 14, y: y + 4}, cut([T.d[m], label(T, m), T.t[m]].filter(Boolean).join(' \u00b7 '), 88)));
      g.appendChild(s('title', {}, [T.id[m], T.p[m] < 0 ? 'origin' : T.k[m]].join(' \u00b7 ')));
      g.addEventListener('click', function () { go(ci, m); });
      root.appendChild(g);
    });
    var dt = span / 3600000;
    return h('div', {cls: 'tlbox'}, [h('h3', {text: 'Timeline (' + (dt < 48 ? plural(Math.round(dt), 'hour') : plural(Math.round(dt / 24), 'day')) +
      ' from first to last)'}), root]);
  }

  // ------------------------------------------------------------------ cluster
  function renderCluster(ci, T, k) {
    var d = clear($('detail'));
    d.appendChild(h('h2', {text: IX.title[ci] || '(untitled)'}));
    d.appendChild(h('div', {cls: 'facts'}, [
      chip('cluster', IX.id[ci]), chip('documents', num(IX.size[ci])), chip('direct copies', num(IX.copies[ci])),
      chip('depth', IX.depth[ci]), chip('spun', pct(IX.spun[ci])), chip('truncated', pct(IX.trunc[ci])),
      chip('mean confidence', f2(IX.conf[ci])), hitChip()]));
    d.appendChild(h('h3', {text: 'Derivation tree'}));
    var panel = treePanel(ci, T, k);
    d.appendChild(panel);
    panel.draw();
    var note = 'Each arrow is a copy, labelled with its kind of change and confidence. Click a document to see what changed.';
    if (T.id.length > TREE_DRAW_LIMIT) note += ' Drawn: the ' + TREE_DRAW_LIMIT + ' members nearest the origin of ' + num(T.id.length) + '; all are listed below.';
    d.appendChild(h('p', {cls: 'note', text: note}));
    var tl = timeline(ci, T, k);
    if (tl) d.appendChild(tl);
    var edge = h('div', {id: 'edge'});
    d.appendChild(edge);
    renderEdge(ci, T, k, edge);
    d.appendChild(h('h3', {text: 'Members'}));
    d.appendChild(memberTable(ci, T, k));
    markHits();
    var selNode = $('tree').querySelector('.node.sel');
    if (selNode && selNode.scrollIntoView && T.id.length > 12) selNode.scrollIntoView({block: 'nearest', inline: 'nearest'});
  }
  function memberTable(ci, T, k) {
    var order = preorder(T), wrap = h('div'), pages = Math.max(1, Math.ceil(order.length / MEMBER_PAGE));
    var pos = -1;
    for (var j = 0; j < order.length; j++) if (order[j][0] === k) pos = j;
    if (pos >= 0) st.mpage = Math.floor(pos / MEMBER_PAGE);
    var table = h('table', {cls: 'grid members'});
    table.appendChild(h('thead', {}, [h('tr', {}, ['document', 'title', 'change', 'conf.', 'copy', 'parent', 'kept', 'subst.', 'ins.', 'del.',
      'spin', 'date', 'publisher / source', 'link']
      .map(function (t, c) { return h('th', {cls: c >= 3 && c <= 10 ? 'num' : '', text: t,
        title: {4: 'copy_confidence', 5: 'parent_confidence'}[c] || ''}); }))]));
    var body = h('tbody');
    order.slice(st.mpage * MEMBER_PAGE, (st.mpage + 1) * MEMBER_PAGE).forEach(function (o) {
      var m = o[0], hasEdge = T.p[m] >= 0;
      var tr = h('tr', {cls: m === k ? 'sel' : '', 'data-k': m}, [
        h('td', {cls: 'mono', text: o[2] + T.id[m]}),
        h('td', {}, [h('div', {cls: 'ttl', title: T.t[m] || '', text: T.t[m] || ''})]),
        h('td', {}, [hasEdge ? kindChip(T.k[m]) : h('span', {cls: 'muted', text: 'origin'})]),
        h('td', {cls: 'num', text: hasEdge ? f2(T.c[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? f2(T.cc[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? f2(T.pc[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T.ke[m]) + '/' + num(T.pt[m]) : num(T.n[m])}),
        h('td', {cls: 'num', text: hasEdge ? num(T.su[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T['in'][m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T.de[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? f2(T.sp[m]) : ''}),
        h('td', {cls: 'sub-line', text: T.d[m] || ''}),
        h('td', {cls: 'sub-line', text: cut(label(T, m), 40)}),
        h('td', {cls: 'sub-line'}, [urlNode(T.u[m], 'open \u2197')])
      ]);
      tr.addEventListener('click', function (e) { if (!(e.target && e.target.tagName === 'A')) go(ci, m); });
      body.appendChild(tr);
    });
    table.appendChild(body);
    wrap.appendChild(h('div', {cls: 'scroll'}, [table]));
    if (pages > 1) {
      var prev = h('button', {type: 'button', text: '\u2190 prev'}), next = h('button', {type: 'button', text: 'next \u2192'});
      prev.disabled = st.mpage === 0; next.disabled = st.mpage >= pages - 1;
      prev.addEventListener('click', function () { st.mpage--; wrap.parentNode.replaceChild(memberTable(ci, T, -1), wrap); markHits(); });
      next.addEventListener('click', function () { st.mpage++; wrap.parentNode.replaceChild(memberTable(ci, T, -1), wrap); markHits(); });
      wrap.appendChild(h('div', {cls: 'pager'}, [prev, h('span', {cls: 'muted', text: 'members page ' + (st.mpage + 1) + ' of ' + pages}), next]));
    }
    return wrap;
  }
  function docText(text, title) {
    if (text == null) return h('p', {cls: 'note', text: 'The text of this document is not embedded in the page (the report keeps its size capped).'});
    return h('details', {cls: 'doctext'}, [h('summary', {text: title || 'Text (normalised)'}), h('div', {cls: 'text', text: text})]);
  }

  function hitChip() { var c = chip('match the filters', '', 'hitchip'); c.id = 'hitchip'; return c; }
  // Where the search matched one document: its title, publisher, id, or its text (with the words around).
  function matchNote(fields, text) {
    var q = fold(F.q).trim();
    if (!q) return null;
    var where = [];
    ['title', 'publisher', 'id'].forEach(function (name, i) { if (fold(fields[i]).indexOf(q) >= 0) where.push(name); });
    var body = fold(text), at = body.indexOf(q), kids = ['Search \u201c' + F.q.trim() + '\u201d: '];
    if (at >= 0) {
      where.push('text');
      var from = Math.max(0, at - 70), to = Math.min(body.length, at + q.length + 70);
      kids.push(where.join(', ') + ' \u2014 ', (from > 0 ? '\u2026' : '') + body.slice(from, at),
        h('mark', {cls: 'q', text: body.slice(at, at + q.length)}), body.slice(at + q.length, to) + (to < body.length ? '\u2026' : ''));
    } else kids.push(where.length ? where.join(', ') : 'not in this document');
    return h('p', {cls: 'note match'}, kids);
  }

  // ------------------------------------------------------------------ edge
  function renderEdge(ci, T, k, box) {
    var p = T.p[k];
    var mn = matchNote([T.t[k], label(T, k), T.id[k]], textsOf(ci)[k]);
    if (p < 0) {
      box.appendChild(h('h3', {text: 'Origin: ' + (T.t[k] || T.id[k])}));
      box.appendChild(h('div', {cls: 'facts'}, [chip('document', T.id[k]), chip('tokens', num(T.n[k])),
        T.d[k] ? chip('published', T.d[k]) : null, label(T, k) ? chip('from', label(T, k)) : null,
        T.u[k] ? h('span', {cls: 'chip'}, [h('b', {text: 'url '}), urlNode(T.u[k])]) : null]));
      box.appendChild(h('p', {cls: 'note', text: 'The probable origin has no parent. Select a copy in the tree to see what it changed.'}));
      if (mn) box.appendChild(mn);
      box.appendChild(docText(textsOf(ci)[k]));
      return;
    }
    box.appendChild(h('h3', {text: 'What changed: ' + T.id[p] + ' \u2192 ' + T.id[k]}));
    var facts = [kindChip(T.k[k]), chip('confidence', f2(T.c[k])), chip('copy_confidence', f2(T.cc[k])),
      chip('parent_confidence', f2(T.pc[k])), chip('similarity', f2(T.sim[k])),
      chip('kept', num(T.ke[k]) + ' of ' + num(T.pt[k])), chip('substituted', num(T.su[k])), chip('inserted', num(T['in'][k])),
      chip('deleted', num(T.de[k])), chip('spin rate', f2(T.sp[k]))];
    if (T.tr[k]) facts.push(chip('', 'truncated'));
    if (T.bl[k]) facts.push(chip('boilerplate lines', T.bl[k]));
    if (T.mv[k]) facts.push(chip('moved sentences', T.mv[k]));
    box.appendChild(h('div', {cls: 'facts'}, facts));
    if (mn) box.appendChild(mn);
    var links = [[p, 'parent'], [k, 'copy']].filter(function (x) { return T.u[x[0]]; });
    if (links.length) box.appendChild(h('div', {cls: 'facts'}, links.map(function (x) {
      return h('span', {cls: 'chip'}, [h('b', {text: x[1] + ' '}), urlNode(T.u[x[0]])]);
    })));
    if (T.x[k] && T.x[k].length) box.appendChild(h('div', {cls: 'note', text: 'Substitutions: ' + T.x[k].join(', ')}));
    var D = diffsOf(ci)[String(k)];
    if (!D) {
      box.appendChild(h('p', {cls: 'note', text: 'The aligned text of this edge is not embedded (this report embeds ' +
        META.caps.per_cluster + ' edges per cluster and ' + num(META.caps.edges) + ' in all, largest clusters first). Print it with:'}));
      box.appendChild(h('pre', {cls: 'cmd', text: 'provenance diff ' + T.id[p] + ' ' + T.id[k] + ' --out ' + META.out_dir}));
      return;
    }
    var passages = D.p || [];
    if (passages.length) {
      box.appendChild(h('h4', {text: 'Evidence of copying: ' + passages.length + ' aligned passage' + (passages.length > 1 ? 's' : '') +
        ', marked in the texts below'}));
      box.appendChild(h('ol', {cls: 'passages'}, passages.map(function (q, qi) {
        var li = h('li', {cls: 'ev-' + q[0], 'data-p': qi, tabindex: 0, title: 'show it in the texts'},
          [h('b', {text: q[0]}), ' \u00b7 ' + num(q[1]) + ' words \u00b7 similarity ' + f2(q[2]) + ': ', h('q', {text: q[3]})]);
        var show = function () {
          var at = box.querySelector('span.ev[data-p="' + qi + '"]');
          if (at && at.scrollIntoView) at.scrollIntoView({block: 'center'});
          Array.prototype.forEach.call(box.querySelectorAll('span.ev'), function (n) { n.classList.toggle('flash', n.getAttribute('data-p') === String(qi)); });
        };
        li.addEventListener('click', show);
        li.addEventListener('keydown', function (e) { if (e.key === 'Enter') show(); });
        return li;
      })));
    }
    box.appendChild(h('div', {cls: 'legend'}, [h('ins', {text: 'inserted'}), h('del', {text: 'deleted'}),
      h('mark', {cls: 'sub old', text: 'substituted (parent)'}), h('mark', {cls: 'sub', text: 'substituted (copy)'}),
      h('span', {cls: 'ev ev-verbatim', text: 'verbatim passage'}), h('span', {cls: 'ev ev-spun', text: 'spun passage'}),
      h('span', {cls: 'ev ev-rewritten', text: 'rewritten passage'}),
      h('span', {cls: 'muted', text: 'Texts after normalisation (Unicode NFKC, ASCII quotes and dashes, one line per paragraph).'})]));
    box.appendChild(diffTable(T, p, k, D));
  }
  // Evidence passages as [start, end, index, kind] ranges of one side's normalised text, in order.
  function ranges(passages, side) {
    var a = side === 'parent' ? 4 : 6;
    return passages.map(function (q, qi) { return [q[a], q[a + 1], qi, q[0]]; })
      .filter(function (r) { return r[0] != null && r[1] > r[0]; })
      .sort(function (x, y) { return x[0] - y[0] || x[1] - y[1]; });
  }
  function diffTable(T, p, k, D) {
    var table = h('table', {cls: 'diff'});
    table.appendChild(h('thead', {}, [h('tr', {}, [
      h('th', {title: T.t[p] || '', text: 'parent: ' + T.id[p] + ' \u00b7 ' + (T.t[p] || '')}),
      h('th', {title: T.t[k] || '', text: 'copy: ' + T.id[k] + ' \u00b7 ' + (T.t[k] || '')})])]));
    var body = h('tbody'), left = h('td'), right = h('td');
    var sides = {parent: {pos: 0, r: ranges(D.p || [], 'parent')}, child: {pos: 0, r: ranges(D.p || [], 'child')}};
    // Put `text` (tag: null for plain text) into `cell`, cut where an evidence passage of that side starts or ends.
    function put(cell, side, tag, cls, text) {
      var S = sides[side], start = S.pos, end = start + text.length, at = start;
      S.pos = end;
      while (at < end) {
        var inside = null, stop = end;
        for (var j = 0; j < S.r.length; j++) {
          var r = S.r[j];
          if (r[1] <= at) continue;
          if (r[0] <= at) { inside = r; stop = Math.min(end, r[1]); break; }
          stop = Math.min(stop, r[0]); break;
        }
        var piece = text.slice(at - start, stop - start), node = tag ? h(tag, cls ? {cls: cls, text: piece} : {text: piece}) : document.createTextNode(piece);
        if (inside) node = h('span', {cls: 'ev ev-' + inside[3], 'data-p': inside[2], title: inside[3] + ' passage ' + (inside[2] + 1)}, [node]);
        cell.appendChild(node);
        at = stop;
      }
    }
    function lastText(n) { while (n && n.nodeType === 1) n = n.lastChild; return n; }
    function flush() {
      [left, right].forEach(function (cell) {
        var t = lastText(cell.lastChild);
        if (t && t.textContent.slice(-1) === '\n') t.textContent = t.textContent.replace(/\n$/, '');
      });
      if (left.firstChild || right.firstChild) body.appendChild(h('tr', {}, [left, right]));
      left = h('td'); right = h('td');
    }
    D.s.forEach(function (seg) {
      var op = seg[0], main;
      if (op === '=') { put(right, 'child', null, null, seg[1]); put(left, 'parent', null, null, seg.length > 2 ? seg[2] : seg[1]); main = seg[1]; }
      else if (op === '~') { put(left, 'parent', 'mark', 'sub old', seg[1]); put(right, 'child', 'mark', 'sub', seg[2]); main = seg[2]; }
      else if (op === '-') { put(left, 'parent', 'del', null, seg[1]); main = seg[1]; }
      else { put(right, 'child', 'ins', null, seg[1]); main = seg[1]; }
      if (main.slice(-1) === '\n') flush();
    });
    flush();
    table.appendChild(body);
    var wrap = h('div', {}, [table]);
    if (D.cap) wrap.appendChild(h('p', {cls: 'note', text: 'One of the texts is longer than the alignment cap; its tail is not aligned.'}));
    return wrap;
  }

  // ------------------------------------------------------------------ a document without copies
  function renderSingle(j) {
    var d = clear($('detail'));
    d.appendChild(h('h2', {text: SG.t[j] || '(untitled)'}));
    d.appendChild(h('div', {cls: 'facts'}, [chip('document', SG.id[j]), chip('tokens', num(SG.n[j])),
      SG.d[j] ? chip('published', SG.d[j]) : null, META.labels[SG.s[j]] ? chip('from', META.labels[SG.s[j]]) : null,
      SG.u[j] ? h('span', {cls: 'chip'}, [h('b', {text: 'url '}), urlNode(SG.u[j])]) : null]));
    d.appendChild(h('p', {cls: 'note', text: 'No other document in this run is a version of this one.'}));
    var mn = matchNote([SG.t[j], META.labels[SG.s[j]], SG.id[j]], singleText(j));
    if (mn) d.appendChild(mn);
    var text = docText(singleText(j), 'Text (normalised)');
    if (text.tagName === 'DETAILS') text.open = true;
    d.appendChild(text);
  }

  window.addEventListener('hashchange', route);
  recompute(); renderHead(); route();
  document.documentElement.setAttribute('data-ready', String(Math.round(performance.now())));
})();

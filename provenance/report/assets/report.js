(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var PAGE = 50, MEMBER_PAGE = 200, TREE_DRAW_LIMIT = 300;
  var NW = 200, NH = 54, GX = 136, GY = 12, LW = 108;
  var KINDS = ['copy', 'truncation', 'excerpt', 'spin', 'paraphrase', 'insertion', 'mixed'];

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
  function bar(x, cls) { var b = h('span', {cls: 'bar ' + cls}, [h('i')]); b.firstChild.style.width = Math.round(100 * (x || 0)) + '%'; return b; }

  var META = readJSON('meta'), IX = readJSON('index');
  var N = IX.id.length, byId = {}, i;
  for (i = 0; i < N; i++) byId[IX.id[i]] = i;
  var trees = {}, diffs = {};
  function tree(ci) { if (!trees.hasOwnProperty(ci)) trees[ci] = readJSON('t' + ci); return trees[ci]; }
  function diffsOf(ci) { if (!diffs.hasOwnProperty(ci)) diffs[ci] = readJSON('d' + ci) || {}; return diffs[ci]; }
  function label(T, k) { return META.labels[T.s[k]] || ''; }

  // ------------------------------------------------------------------ header
  (function () {
    var plural = function (n, word) { return num(n) + ' ' + word + (n === 1 ? '' : 's'); };
    var c = META.counts, parts = [plural(c.documents, 'document'), plural(c.multi, 'cluster') + ' with copies',
      num(c.singletons) + ' without copies (not listed)', plural(c.edges, 'copy edge')];
    if (c.rejected != null) parts.push(num(c.rejected) + ' rejected');
    $('summary').textContent = parts.join(' \u00b7 ');
    var run = $('run');
    run.appendChild(h('div', {}, ['Outputs: ', h('span', {cls: 'mono', text: META.out_dir})]));
    if (META.inputs.length) run.appendChild(h('div', {}, ['Inputs: ', h('span', {cls: 'mono', text: META.inputs.join(', ')})]));
    run.appendChild(h('div', {text: 'Aligned texts embedded for ' + num(META.embedded_diffs) + ' of ' + num(c.edges) +
      ' edges (the first ' + META.caps.per_cluster + ' edges of each cluster, largest clusters first, ' +
      num(META.caps.edges) + ' at most). Others: provenance diff PARENT CHILD --out DIR.'}));
    if (META.version) run.appendChild(h('div', {text: 'provenance ' + META.version}));
  })();

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
  var st = {sort: 'size', dir: -1, filter: '', page: 0, ci: -1, k: -1, mpage: 0};
  var view = [];
  function recompute() {
    var q = st.filter.trim().toLowerCase(), key = st.sort, dir = st.dir, out = [];
    for (var j = 0; j < N; j++) {
      if (q && (IX.title[j] || '').toLowerCase().indexOf(q) < 0 && IX.id[j].toLowerCase().indexOf(q) < 0 &&
          (IX.origin[j] || '').toLowerCase().indexOf(q) < 0) continue;
      out.push(j);
    }
    var col = IX[key];
    out.sort(function (a, b) {
      var x = col[a], y = col[b];
      if (x == null) x = key === 'title' ? '' : -1;
      if (y == null) y = key === 'title' ? '' : -1;
      if (key === 'title') { x = String(x).toLowerCase(); y = String(y).toLowerCase(); }
      return x < y ? -dir : x > y ? dir : a - b;
    });
    view = out;
  }
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
    var body = clear($('index-body')), pages = Math.max(1, Math.ceil(view.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    var rows = view.slice(st.page * PAGE, st.page * PAGE + PAGE);
    rows.forEach(function (j) {
      var tr = h('tr', {'data-ci': j}, [
        h('td', {cls: 'num', text: num(IX.size[j])}),
        h('td', {cls: 'num', text: num(IX.copies[j])}),
        h('td', {cls: 'num', text: String(IX.depth[j])}),
        h('td', {cls: 'num'}, [bar(IX.spun[j], 'spun'), pct(IX.spun[j])]),
        h('td', {cls: 'num'}, [bar(IX.trunc[j], 'trunc'), pct(IX.trunc[j])]),
        h('td', {cls: 'num', text: f2(IX.conf[j])}),
        h('td', {cls: 'fill'}, [h('div', {cls: 'ttl', title: IX.title[j] || '', text: IX.title[j] || '(untitled)'}),
          h('div', {cls: 'sub-line', text: [IX.date[j], IX.id[j]].filter(Boolean).join(' \u00b7 ')})])
      ]);
      if (j === st.ci) tr.className = 'sel';
      tr.tabIndex = 0;
      tr.addEventListener('click', function () { go(j, -1); });
      tr.addEventListener('keydown', function (e) { if (e.key === 'Enter') go(j, -1); });
      body.appendChild(tr);
    });
    if (!rows.length) body.appendChild(h('tr', {}, [h('td', {colspan: COLS.length, cls: 'muted',
      text: N ? 'No cluster matches the filter.' : 'No document has a copy in this run.'})]));
    $('count').textContent = num(view.length) + (view.length === N ? (N === 1 ? ' cluster' : ' clusters') : ' of ' + num(N));
    $('page').textContent = 'page ' + (st.page + 1) + ' of ' + pages;
    $('prev').disabled = st.page === 0;
    $('next').disabled = st.page >= pages - 1;
  }
  $('prev').addEventListener('click', function () { st.page--; renderIndex(); });
  $('next').addEventListener('click', function () { st.page++; renderIndex(); });
  $('filter').addEventListener('input', function (e) { st.filter = e.target.value; st.page = 0; recompute(); renderIndex(); });

  // ------------------------------------------------------------------ routing
  function go(ci, k) {
    var hash = '#c=' + encodeURIComponent(IX.id[ci]) + (k >= 0 ? '&e=' + encodeURIComponent(tree(ci).id[k]) : '');
    if (location.hash === hash) route(); else location.hash = hash;
  }
  function route() {
    var params = {}, ci = -1, k = -1;
    location.hash.replace(/^#/, '').split('&').forEach(function (p) {
      var at = p.indexOf('=');
      if (at > 0) { try { params[p.slice(0, at)] = decodeURIComponent(p.slice(at + 1)); } catch (err) { /* a mangled link */ } }
    });
    if (params.c && byId.hasOwnProperty(params.c)) ci = byId[params.c];
    else if (view.length || N) ci = view.length ? view[0] : 0;
    if (ci < 0) { showEmpty(); return; }
    var T = tree(ci);
    if (params.e) k = T.id.indexOf(params.e);
    if (k < 0) k = T.id.length > 1 ? firstChild(T) : 0;
    var pos = view.indexOf(ci);
    if (pos >= 0 && Math.floor(pos / PAGE) !== st.page) st.page = Math.floor(pos / PAGE);
    if (ci !== st.ci) st.mpage = 0;
    st.ci = ci; st.k = k;
    renderIndex();
    renderCluster(ci, T, k);
  }
  function firstChild(T) { for (var j = 0; j < T.p.length; j++) if (T.p[j] >= 0) return j; return 0; }
  function showEmpty() {
    clear($('detail')).appendChild(h('p', {cls: 'muted', text: 'No document has a copy in this run: there is no tree to draw.'}));
  }

  // ------------------------------------------------------------------ tree
  function children(T, n) {
    var kids = [], roots = [], j;
    for (j = 0; j < n; j++) kids.push([]);
    for (j = 0; j < n; j++) { var p = T.p[j]; if (p >= 0 && p < n && p !== j) kids[p].push(j); else roots.push(j); }
    var byDoc = function (a, b) { return T.id[a] < T.id[b] ? -1 : T.id[a] > T.id[b] ? 1 : 0; };
    kids.forEach(function (c) { c.sort(byDoc); });
    roots.sort(byDoc);
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
  function layout(T, n) {
    var ch = children(T, n), x = [], y = [], next = 0, maxX = 0, seen = {}, stack = [];
    for (var r = ch.roots.length - 1; r >= 0; r--) stack.push([ch.roots[r], 0, false]);
    while (stack.length) {
      var top = stack.pop(), v = top[0], kids = ch.kids[v];
      if (!top[2]) {
        if (seen[v]) continue;
        seen[v] = 1; x[v] = top[1]; if (top[1] > maxX) maxX = top[1];
        if (!kids.length) { y[v] = next++; continue; }
        stack.push([v, top[1], true]);
        for (var j = kids.length - 1; j >= 0; j--) stack.push([kids[j], top[1] + 1, false]);
      } else {
        var placed = kids.filter(function (c) { return y[c] != null; });
        y[v] = placed.length ? (y[placed[0]] + y[placed[placed.length - 1]]) / 2 : next++;
      }
    }
    return {x: x, y: y, rows: Math.max(next, 1), cols: maxX + 1};
  }
  function drawTree(ci, T, sel) {
    var n = Math.min(T.id.length, TREE_DRAW_LIMIT), L = layout(T, n);
    var W = 24 + L.cols * (NW + GX) - GX, H = 24 + L.rows * (NH + GY) - GY;
    var root = s('svg', {'class': 'tree', width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': 'derivation tree'});
    var defs = s('defs');
    var marker = s('marker', {id: 'arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto'});
    marker.appendChild(s('path', {d: 'M0,0 L8,4 L0,8 z', fill: '#8c959f'}));
    defs.appendChild(marker); root.appendChild(defs);
    function X(k) { return 12 + L.x[k] * (NW + GX); }
    function Y(k) { return 12 + L.y[k] * (NH + GY); }
    var edges = s('g'), nodes = s('g'), k;
    for (k = 0; k < n; k++) {
      var p = T.p[k];
      if (p < 0 || p >= n || L.x[k] == null || L.x[p] == null) continue;
      var x1 = X(p) + NW, y1 = Y(p) + NH / 2, x2 = X(k), y2 = Y(k) + NH / 2, xm = x2 - LW - 14;
      edges.appendChild(s('path', {'class': 'edge', d: 'M' + x1 + ',' + y1 + ' C' + (x1 + 30) + ',' + y1 + ' ' + (xm - 30) + ',' + y2 +
        ' ' + xm + ',' + y2 + ' L' + (x2 - 1) + ',' + y2, 'marker-end': 'url(#arrow)'}));
      var g = s('g', {'class': 'elabel'});
      g.appendChild(s('rect', {x: xm, y: y2 - 9, width: LW, height: 18, rx: 9, fill: kindColor(T.k[k])}));
      g.appendChild(s('text', {x: xm + LW / 2, y: y2 + 4, 'text-anchor': 'middle'}, (T.k[k] || '?') + ' \u00b7 ' + f2(T.c[k])));
      g.appendChild(s('title', {}, (T.k[k] || '') + ', confidence ' + f2(T.c[k])));
      edges.appendChild(g);
    }
    for (k = 0; k < n; k++) {
      if (L.x[k] == null) continue;
      var node = s('g', {'class': 'node' + (T.p[k] < 0 ? ' origin' : '') + (k === sel ? ' sel' : ''),
        transform: 'translate(' + X(k) + ',' + Y(k) + ')', tabindex: 0, role: 'button', 'data-k': k});
      node.appendChild(s('rect', {width: NW, height: NH, rx: 6}));
      node.appendChild(s('text', {'class': 't', x: 8, y: 16}, cut(T.t[k] || '(untitled)', 29)));
      node.appendChild(s('text', {'class': 'm', x: 8, y: 31}, cut(label(T, k), 32)));
      node.appendChild(s('text', {'class': 'm', x: 8, y: 46}, cut([T.d[k], T.id[k]].filter(Boolean).join(' \u00b7 '), 34)));
      node.appendChild(s('title', {}, [T.t[k], T.id[k], label(T, k), T.d[k]].filter(Boolean).join('\n')));
      (function (kk) {
        node.addEventListener('click', function () { go(ci, kk); });
        node.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(ci, kk); } });
      })(k);
      nodes.appendChild(node);
    }
    root.appendChild(edges); root.appendChild(nodes);
    return root;
  }

  function fitTree(svgTree, box) {
    // A tree a little wider than its box is scaled down to fit (text stays legible); a wide one scrolls.
    var w = +svgTree.getAttribute('width'), h = +svgTree.getAttribute('height'), room = box.clientWidth - 2;
    if (room > 0 && w > room && room / w >= 0.72) {
      svgTree.setAttribute('width', room);
      svgTree.setAttribute('height', Math.round(h * room / w));
    }
  }

  // ------------------------------------------------------------------ cluster
  function renderCluster(ci, T, k) {
    var d = clear($('detail'));
    d.appendChild(h('h2', {text: IX.title[ci] || '(untitled)'}));
    d.appendChild(h('div', {cls: 'facts'}, [
      chip('cluster', IX.id[ci]), chip('documents', num(IX.size[ci])), chip('direct copies', num(IX.copies[ci])),
      chip('depth', IX.depth[ci]), chip('spun', pct(IX.spun[ci])), chip('truncated', pct(IX.trunc[ci])),
      chip('mean confidence', f2(IX.conf[ci]))]));
    d.appendChild(h('h3', {text: 'Derivation tree'}));
    var box = h('div', {cls: 'treebox', id: 'tree'});
    var svgTree = drawTree(ci, T, k);
    box.appendChild(svgTree);
    d.appendChild(box);
    fitTree(svgTree, box);
    var note = 'Origin on the left; each arrow is a copy, labelled with its kind of change and confidence. Click a document to see what changed.';
    if (T.id.length > TREE_DRAW_LIMIT) note += ' Drawn: the ' + TREE_DRAW_LIMIT + ' members nearest the origin of ' + num(T.id.length) + '; all are listed below.';
    d.appendChild(h('p', {cls: 'note', text: note}));
    var edge = h('div', {id: 'edge'});
    d.appendChild(edge);
    renderEdge(ci, T, k, edge);
    d.appendChild(h('h3', {text: 'Members'}));
    d.appendChild(memberTable(ci, T, k));
    var selNode = box.querySelector('.node.sel');
    if (selNode && selNode.scrollIntoView && T.id.length > 12) selNode.scrollIntoView({block: 'nearest', inline: 'nearest'});
  }
  function memberTable(ci, T, k) {
    var order = preorder(T), wrap = h('div'), pages = Math.max(1, Math.ceil(order.length / MEMBER_PAGE));
    var pos = -1;
    for (var j = 0; j < order.length; j++) if (order[j][0] === k) pos = j;
    if (pos >= 0) st.mpage = Math.floor(pos / MEMBER_PAGE);
    var table = h('table', {cls: 'grid members'});
    table.appendChild(h('thead', {}, [h('tr', {}, ['document', 'title', 'change', 'conf.', 'kept', 'subst.', 'ins.', 'del.', 'spin', 'date', 'publisher / source']
      .map(function (t, c) { return h('th', {cls: c >= 3 && c <= 8 ? 'num' : '', text: t}); }))]));
    var body = h('tbody');
    order.slice(st.mpage * MEMBER_PAGE, (st.mpage + 1) * MEMBER_PAGE).forEach(function (o) {
      var m = o[0], hasEdge = T.p[m] >= 0;
      var tr = h('tr', {cls: m === k ? 'sel' : ''}, [
        h('td', {cls: 'mono', text: o[2] + T.id[m]}),
        h('td', {}, [h('div', {cls: 'ttl', title: T.t[m] || '', text: T.t[m] || ''})]),
        h('td', {}, [hasEdge ? kindChip(T.k[m]) : h('span', {cls: 'muted', text: 'origin'})]),
        h('td', {cls: 'num', text: hasEdge ? f2(T.c[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T.ke[m]) + '/' + num(T.pt[m]) : num(T.n[m])}),
        h('td', {cls: 'num', text: hasEdge ? num(T.su[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T['in'][m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? num(T.de[m]) : ''}),
        h('td', {cls: 'num', text: hasEdge ? f2(T.sp[m]) : ''}),
        h('td', {cls: 'sub-line', text: T.d[m] || ''}),
        h('td', {cls: 'sub-line', text: cut(label(T, m), 40)})
      ]);
      tr.addEventListener('click', function () { go(ci, m); });
      body.appendChild(tr);
    });
    table.appendChild(body);
    wrap.appendChild(h('div', {cls: 'scroll'}, [table]));
    if (pages > 1) {
      var prev = h('button', {type: 'button', text: '\u2190 prev'}), next = h('button', {type: 'button', text: 'next \u2192'});
      prev.disabled = st.mpage === 0; next.disabled = st.mpage >= pages - 1;
      prev.addEventListener('click', function () { st.mpage--; wrap.parentNode.replaceChild(memberTable(ci, T, -1), wrap); });
      next.addEventListener('click', function () { st.mpage++; wrap.parentNode.replaceChild(memberTable(ci, T, -1), wrap); });
      wrap.appendChild(h('div', {cls: 'pager'}, [prev, h('span', {cls: 'muted', text: 'members page ' + (st.mpage + 1) + ' of ' + pages}), next]));
    }
    return wrap;
  }

  // ------------------------------------------------------------------ edge
  function renderEdge(ci, T, k, box) {
    var p = T.p[k];
    if (p < 0) {
      box.appendChild(h('h3', {text: 'Origin: ' + (T.t[k] || T.id[k])}));
      box.appendChild(h('div', {cls: 'facts'}, [chip('document', T.id[k]), chip('tokens', num(T.n[k])),
        T.d[k] ? chip('published', T.d[k]) : null, label(T, k) ? chip('from', label(T, k)) : null]));
      box.appendChild(h('p', {cls: 'note', text: 'The probable origin has no parent. Select a copy in the tree to see what it changed.'}));
      return;
    }
    box.appendChild(h('h3', {text: 'What changed: ' + T.id[p] + ' \u2192 ' + T.id[k]}));
    var facts = [kindChip(T.k[k]), chip('confidence', f2(T.c[k])), chip('similarity', f2(T.sim[k])),
      chip('kept', num(T.ke[k]) + ' of ' + num(T.pt[k])), chip('substituted', num(T.su[k])), chip('inserted', num(T.in[k])),
      chip('deleted', num(T.de[k])), chip('spin rate', f2(T.sp[k]))];
    if (T.tr[k]) facts.push(chip('', 'truncated'));
    if (T.bl[k]) facts.push(chip('boilerplate lines', T.bl[k]));
    if (T.mv[k]) facts.push(chip('moved sentences', T.mv[k]));
    box.appendChild(h('div', {cls: 'facts'}, facts));
    if (T.x[k] && T.x[k].length) box.appendChild(h('div', {cls: 'note', text: 'Substitutions: ' + T.x[k].join(', ')}));
    var D = diffsOf(ci)[String(k)];
    if (!D) {
      box.appendChild(h('p', {cls: 'note', text: 'The aligned text of this edge is not embedded (this report embeds ' +
        META.caps.per_cluster + ' edges per cluster and ' + num(META.caps.edges) + ' in all, largest clusters first). Print it with:'}));
      box.appendChild(h('pre', {cls: 'cmd', text: 'provenance diff ' + T.id[p] + ' ' + T.id[k] + ' --out ' + META.out_dir}));
      return;
    }
    if (D.p && D.p.length) {
      box.appendChild(h('h4', {text: 'Evidence of copying: ' + D.p.length + ' aligned passage' + (D.p.length > 1 ? 's' : '')}));
      box.appendChild(h('ul', {cls: 'passages'}, D.p.map(function (q) {
        return h('li', {}, [h('b', {text: q[0]}), ' \u00b7 ' + num(q[1]) + ' words \u00b7 similarity ' + f2(q[2]) + ': ',
          h('q', {text: q[3]})]);
      })));
    }
    box.appendChild(h('div', {cls: 'legend'}, [h('ins', {text: 'inserted'}), h('del', {text: 'deleted'}),
      h('mark', {cls: 'sub old', text: 'substituted (parent)'}), h('mark', {cls: 'sub', text: 'substituted (copy)'}),
      h('span', {cls: 'muted', text: 'Texts after normalisation (Unicode NFKC, ASCII quotes and dashes, one line per paragraph).'})]));
    box.appendChild(diffTable(T, p, k, D));
  }
  function diffTable(T, p, k, D) {
    var table = h('table', {cls: 'diff'});
    table.appendChild(h('thead', {}, [h('tr', {}, [
      h('th', {title: T.t[p] || '', text: 'parent: ' + T.id[p] + ' \u00b7 ' + (T.t[p] || '')}),
      h('th', {title: T.t[k] || '', text: 'copy: ' + T.id[k] + ' \u00b7 ' + (T.t[k] || '')})])]));
    var body = h('tbody'), left = h('td'), right = h('td');
    function flush() {
      [left, right].forEach(function (cell) {
        var last = cell.lastChild;
        if (last && last.textContent.slice(-1) === '\n') {
          var t = last.firstChild && last.nodeType === 1 ? last.firstChild : last;
          t.textContent = t.textContent.replace(/\n$/, '');
        }
      });
      if (left.firstChild || right.firstChild) body.appendChild(h('tr', {}, [left, right]));
      left = h('td'); right = h('td');
    }
    D.s.forEach(function (seg) {
      var op = seg[0], main;
      if (op === '=') { right.appendChild(document.createTextNode(seg[1])); left.appendChild(document.createTextNode(seg.length > 2 ? seg[2] : seg[1])); main = seg[1]; }
      else if (op === '~') { left.appendChild(h('mark', {cls: 'sub old', text: seg[1]})); right.appendChild(h('mark', {cls: 'sub', text: seg[2]})); main = seg[2]; }
      else if (op === '-') { left.appendChild(h('del', {text: seg[1]})); main = seg[1]; }
      else { right.appendChild(h('ins', {text: seg[1]})); main = seg[1]; }
      if (main.slice(-1) === '\n') flush();
    });
    flush();
    table.appendChild(body);
    var wrap = h('div', {}, [table]);
    if (D.cap) wrap.appendChild(h('p', {cls: 'note', text: 'One of the texts is longer than the alignment cap; its tail is not aligned.'}));
    return wrap;
  }

  window.addEventListener('hashchange', route);
  recompute(); renderHead(); route();
  document.documentElement.setAttribute('data-ready', String(Math.round(performance.now())));
})();

// seald console: plain JavaScript, no framework, served by seald itself (same origin as /v1).
// Every element is built with createElement and textContent: nothing from the API is ever
// parsed as HTML. The only thing kept in sessionStorage is the console session (a short-lived
// credential the daemon can end), never the API token and never a PIN.
'use strict';

(function () {
  // ------------------------------------------------------------------ language
  // Chinese by default; English when the browser's first language is not Chinese.
  const browserLang = ((navigator.languages && navigator.languages[0]) || navigator.language || 'zh').toLowerCase();
  const ZH = browserLang.startsWith('zh');
  document.documentElement.lang = ZH ? 'zh-CN' : 'en';

  const TEXT = {
    skip: ['跳到正文', 'Skip to content'],
    views: ['视图', 'Views'],
    signOut: ['退出', 'Sign out'],
    signInTitle: ['登录 seald 控制台', 'Sign in to the seald console'],
    token: ['API 令牌', 'API token'],
    tokenHint: ['令牌只用于换取一个控制台会话，浏览器不会保存它。', 'The token is exchanged for a console session; the browser does not keep it.'],
    linkHint: ['也可以在本机运行 sealctl console --daemon URL，打开它打印的一次性链接。', 'Or run sealctl console --daemon URL on this machine and open the one-time link it prints.'],
    signIn: ['登录', 'Sign in'],
    signingIn: ['正在登录…', 'Signing in…'],
    signedInAs: ['已登录：', 'Signed in as '],
    sessionEnded: ['会话已结束，请重新登录。', 'The session has ended; sign in again.'],
    idleOut: ['长时间未操作，已自动退出。', 'Signed out after a period without activity.'],
    linkUsed: ['登录链接无效或已使用。', 'The sign-in link is not valid or was used already.'],
    navRequests: ['待审批', 'Approvals'],
    navDevices: ['设备与 PIN', 'Devices & PIN'],
    navSeals: ['印章', 'Seals'],
    navAudit: ['使用日志', 'Usage log'],
    navNew: ['申请用印', 'Request a stamp'],
    live: ['实时', 'live'],
    offline: ['未连接', 'not connected'],
    pendingTitle: ['等待您审批的申请', 'Requests waiting for your decision'],
    noPending: ['目前没有等待您审批的申请。', 'No request is waiting for your decision.'],
    id: ['编号', 'No.'],
    requester: ['申请人', 'Requester'],
    purpose: ['用途', 'Purpose'],
    documents: ['文件', 'Documents'],
    seal: ['印章', 'Seal'],
    created: ['提交时间', 'Created'],
    expires: ['过期时间', 'Expires'],
    open: ['查看', 'Open'],
    request: ['用印申请', 'Stamp request'],
    state: ['状态', 'State'],
    origin: ['来源', 'Origin'],
    failure: ['失败原因', 'Failure'],
    name: ['名称', 'Name'],
    organisation: ['单位', 'Organisation'],
    kind: ['类型', 'Kind'],
    validity: ['有效期', 'Validity'],
    expiry: ['到期提醒', 'Expiry'],
    image: ['印模', 'Impression'],
    digest: ['SM3 摘要', 'SM3 digest'],
    size: ['大小', 'Size'],
    format: ['格式', 'Format'],
    pages: ['页数', 'Pages'],
    placements: ['盖章位置', 'Placements'],
    mode: ['模式', 'Mode'],
    page: ['第 %s 页', 'page %s'],
    previewNote: ['预览：页面按 A4 (210×297 mm) 绘制，红框为印章位置。', 'Preview: pages drawn as A4 (210×297 mm); red boxes are where the seal goes.'],
    votes: ['审批记录', 'Votes'],
    noVotes: ['尚无投票。', 'No votes yet.'],
    approved: ['批准', 'approved'],
    rejected: ['驳回', 'rejected'],
    needs: ['需要 %s 票批准，已批准 %s 票。', '%s approvals needed, %s given.'],
    decide: ['您的决定', 'Your decision'],
    comment: ['意见（可选）', 'Comment (optional)'],
    approve: ['批准', 'Approve'],
    reject: ['驳回', 'Reject'],
    keys: ['键盘：Tab 到按钮后按 Enter；或 Alt+A 批准，Alt+R 驳回。', 'Keyboard: Tab to a button and press Enter, or Alt+A to approve, Alt+R to reject.'],
    done: ['已提交。', 'Done.'],
    youVoted: ['您已投票。', 'You have voted.'],
    notYours: ['您的角色不能审批此申请。', 'Your role cannot decide this request.'],
    download: ['下载', 'Download'],
    downloadSig: ['下载签名 (SES_Signature)', 'Download SES_Signature'],
    downloadDoc: ['下载已盖章文件', 'Download the sealed document'],
    back: ['返回列表', 'Back to the list'],
    devicesTitle: ['设备、登录与 PIN', 'Devices, login and PIN'],
    module: ['模块', 'Module'],
    noTokens: ['此模块当前没有令牌。', 'No token is present in this module.'],
    present: ['在位', 'Present'],
    yes: ['是', 'yes'],
    no: ['否', 'no'],
    loggedIn: ['登录状态', 'Logged in'],
    pinFlags: ['PIN 标志', 'PIN flags'],
    triesLeft: ['剩余尝试', 'Tries left'],
    pinAge: ['PIN 使用时间', 'PIN age'],
    days: ['%s 天', '%s days'],
    unknown: ['未知', 'unknown'],
    due: ['到期', 'due'],
    policy: ['PIN 规则', 'PIN policy'],
    policyText: ['至少 %s 个字符，须包含：%s；最长使用 %s 天。', 'At least %s characters, containing: %s; change every %s days.'],
    noLimit: ['不限', 'no limit'],
    login: ['登录令牌', 'Log the token in'],
    pin: ['PIN', 'PIN'],
    pinHint: ['PIN 只在本页输入，随登录请求发送一次，不会保存。', 'The PIN is typed here, sent once with the request and never kept.'],
    confirmFinal: ['我明白：再输错一次令牌将被锁定', 'I understand: one more wrong PIN locks the token'],
    finalTry: ['令牌只剩最后一次尝试。确认后再提交。', 'The token has one try left. Confirm before you submit again.'],
    logout: ['登出令牌', 'Log the token out'],
    changePin: ['修改 PIN', 'Change the PIN'],
    oldPin: ['当前 PIN', 'Current PIN'],
    newPin: ['新 PIN', 'New PIN'],
    newPin2: ['再次输入新 PIN', 'New PIN again'],
    pinMismatch: ['两次输入的新 PIN 不一致。', 'The two new PINs differ.'],
    pinChanged: ['PIN 已修改。', 'The PIN was changed.'],
    loggedInOk: ['令牌已登录。', 'The token is logged in.'],
    loggedOutOk: ['令牌已登出。', 'The token is logged out.'],
    sealsTitle: ['印章', 'Seals'],
    device: ['设备', 'Device'],
    action: ['操作', 'Action'],
    manage: ['管理', 'Manage'],
    suspend: ['暂停', 'Suspend'],
    resume: ['恢复', 'Resume'],
    revoke: ['吊销', 'Revoke'],
    reportLost: ['挂失', 'Report lost'],
    reason: ['原因', 'Reason'],
    apply: ['提交', 'Apply'],
    reasonNeeded: ['请填写原因。', 'Give a reason.'],
    auditTitle: ['使用日志', 'Usage log'],
    head: ['日志链头', 'Chain head'],
    headHint: ['请把下面的值保存在本机之外，日后用 sealctl audit verify --expect-head 核对。', 'Keep this value outside this machine; check it later with sealctl audit verify --expect-head.'],
    noHead: ['日志为空。', 'The log is empty.'],
    kindAll: ['全部', 'all'],
    sealId: ['印章编号', 'Seal id'],
    actor: ['操作者', 'Actor'],
    limit: ['每页条数', 'Per page'],
    search: ['查询', 'Search'],
    seq: ['序号', 'Seq'],
    time: ['时间', 'Time'],
    detail: ['详情', 'Detail'],
    next: ['下一页', 'Next page'],
    first: ['第一页', 'First page'],
    exportPage: ['导出本页 (JSONL)', 'Export this page (JSONL)'],
    exportAll: ['导出全部符合条件的记录 (JSONL)', 'Export every matching record (JSONL)'],
    exported: ['已读取 %s 条…', '%s records read…'],
    noRecords: ['没有符合条件的记录。', 'No record matches.'],
    newTitle: ['申请用印', 'Request a stamp'],
    file: ['文件（在本页计算 SM3，文件不会上传）', 'File (SM3 computed in this page; the file is not uploaded)'],
    docName: ['文件名称', 'Document name'],
    digestHint: ['64 位十六进制 SM3 摘要；选择文件后自动填写。', '64 hex digits of SM3; filled in when you pick a file.'],
    submit: ['提交申请', 'Submit the request'],
    created202: ['申请 #%s 已提交，等待审批。', 'Request #%s submitted; waiting for approval.'],
    mine: ['我的申请', 'My requests'],
    noMine: ['本次会话还没有提交申请。', 'No request made in this session yet.'],
    openById: ['按编号打开申请', 'Open a request by number'],
    ofdSeam: ['OFD 文件上传将在 OFD 盖章功能上线后提供（issue 15）。', 'OFD upload comes with OFD sealing (issue 15).'],
    badDigest: ['摘要必须是 64 位十六进制数。', 'The digest must be 64 hex digits.'],
    loading: ['正在加载…', 'Loading…'],
    failed: ['失败：', 'Failed: '],
    st_pending: ['待审批', 'pending'], st_approved: ['已批准', 'approved'], st_signing: ['签章中', 'signing'],
    st_signed: ['已签章', 'signed'], st_rejected: ['已驳回', 'rejected'], st_failed: ['失败', 'failed'],
    st_expired: ['已过期', 'expired'], st_active: ['有效', 'active'], st_suspended: ['已暂停', 'suspended'],
    st_revoked: ['已吊销', 'revoked'], st_lost: ['已挂失', 'lost'],
    'st_expires-soon': ['即将到期', 'expires soon'], st_valid: ['有效期内', 'valid'], 'st_not-yet-valid': ['尚未生效', 'not yet valid'],
    'tries_not-reported': ['设备未提示', 'not reported'], tries_few: ['较少', 'few'], tries_one: ['仅剩 1 次', 'one'],
    st_ok: ['正常', 'ok'], st_warn: ['需更换', 'change soon'], st_bad: ['已超期', 'overdue'],
    daysLeft: ['剩 %s 天', '%s days left'],
    validUntil: ['有效期至', 'Valid until'],
    pixels: ['%s×%s 像素，印制尺寸 %s×%s mm', '%s×%s pixels, printed %s×%s mm'],
    manageSeal: ['管理印章 %s', 'Manage seal %s'],
    notPresent: ['未插入：插入该 UKey 后登录令牌。', 'not plugged in: insert the UKey, then log the token in.'],
    loggedInNow: ['令牌已登录；不需要再次输入 PIN。', 'The token is logged in; no PIN is needed now.'],
    kind_legal_name: ['法定名称章', 'legal-name seal'], kind_business: ['业务专用章', 'business seal'],
    kind_finance: ['财务专用章', 'finance seal'], kind_contract: ['合同专用章', 'contract seal'],
    kind_invoice: ['发票专用章', 'invoice seal'], kind_personal_name: ['个人名章', 'personal-name seal'], kind_other: ['其他印章', 'other seal'],
  };

  function t(key, ...args) {
    const pair = TEXT[key];
    let s = pair ? pair[ZH ? 0 : 1] : key;
    for (const a of args) s = s.replace('%s', String(a));
    return s;
  }

  function stateText(s) {
    return TEXT['st_' + s] ? t('st_' + s) : String(s);
  }

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function badge(state) {
    return el('span', { class: 'state ' + state, 'data-state': state, text: stateText(state) });
  }

  // `expiry` is {status: valid | expires-soon (with days_left) | expired | not-yet-valid}.
  function expiryBadge(expiry) {
    const b = badge(expiry.status);
    if (expiry.status === 'expires-soon') b.textContent += ' (' + t('daysLeft', expiry.days_left) + ')';
    return b;
  }

  function kindText(kind) {
    const key = 'kind_' + String(kind).replace(/-/g, '_');
    return TEXT[key] ? t(key) : String(kind);
  }

  function msg(kind, text) {
    return el('div', { class: 'msg ' + kind, role: kind === 'error' ? 'alert' : 'status', text });
  }

  function when(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    const d = new Date(seconds * 1000);
    return d.toLocaleString(ZH ? 'zh-CN' : 'en-GB', { hour12: false });
  }

  function whenMs(ms) {
    return ms === null || ms === undefined ? '—' : when(ms / 1000);
  }

  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1024 / 1024).toFixed(1) + ' MiB';
  }

  function status(text) {
    const box = document.getElementById('status');
    box.textContent = text;
    clearTimeout(status.timer);
    status.timer = setTimeout(() => { box.textContent = ''; }, 4000);
  }

  function field(id, labelText, input, hint) {
    input.id = id;
    const parts = [el('label', { for: id, text: labelText }), input];
    if (hint) {
      const hintId = id + '-hint';
      input.setAttribute('aria-describedby', hintId);
      parts.push(el('p', { class: 'hint', id: hintId, text: hint }));
    }
    return el('div', { class: 'field' }, parts);
  }

  function download(name, blob) {
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function base64Bytes(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // ------------------------------------------------------------------ session
  // sessionStorage (this tab only, gone when the tab closes) holds the console session: a
  // credential seald made for this sign-in, which it ends on sign-out, after an idle time or
  // when the token behind it is replaced. No cookie: a cookie would ride along on requests
  // other sites make to this address; a header set by this page's script cannot.
  const KEY = 'seald.session';
  const MINE = 'seald.mine';

  function session() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch (_) { return null; }
  }

  function has(role) {
    const s = session();
    return !!(s && s.roles && s.roles.includes(role));
  }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  async function api(method, path, body, bearer) {
    const s = session();
    const headers = { Accept: 'application/json' };
    const auth = bearer || (s && s.session);
    if (auth) headers.Authorization = 'Bearer ' + auth;
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, { method, headers, body: payload, cache: 'no-store', credentials: 'omit', redirect: 'error' });
    } catch (e) {
      throw new ApiError(0, 'network', (ZH ? '无法连接 seald：' : 'Cannot reach seald: ') + e.message);
    } finally {
      payload = undefined;
    }
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (!r.ok) {
      const code = (json && json.code) || 'http_' + r.status;
      const message = (json && json.message) || r.statusText;
      if (r.status === 401 && !bearer && s) {
        endLocally(t('sessionEnded'));
      }
      throw new ApiError(r.status, code, message);
    }
    return json;
  }

  function saveSession(answer) {
    sessionStorage.setItem(KEY, JSON.stringify({
      session: answer.session,
      name: answer.name,
      roles: answer.roles,
      idle: answer.idle_timeout_secs,
    }));
  }

  async function signOut(reason) {
    const s = session();
    if (s) {
      try { await api('POST', '/v1/console/session/end'); } catch (_) { /* ended already */ }
    }
    endLocally(reason);
  }

  function endLocally(reason) {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(MINE);
    stopEvents();
    pendingCount = null;
    if (location.hash !== '' && location.hash !== '#/') history.replaceState(null, '', '/');
    render(reason ? msg('warn', reason) : null);
  }

  // Idle timeout: no key, pointer or input for the session's idle time ends it.
  let lastActivity = Date.now();
  for (const ev of ['keydown', 'pointerdown', 'input', 'wheel']) {
    window.addEventListener(ev, () => { lastActivity = Date.now(); }, { passive: true, capture: true });
  }
  setInterval(() => {
    const s = session();
    if (s && s.idle && Date.now() - lastActivity > s.idle * 1000) signOut(t('idleOut'));
  }, 5000);

  // ------------------------------------------------------------------ events (SSE over fetch)
  // EventSource cannot send an Authorization header, so the stream is read with fetch.
  let events = null;
  let lastEventId = null;
  let pendingCount = null;
  let liveOn = false;

  function setLive(on) {
    liveOn = on;
    const dot = document.getElementById('live');
    if (dot) {
      dot.textContent = on ? '● ' + t('live') : '○ ' + t('offline');
      dot.className = on ? 'live' : 'live off';
    }
  }

  function stopEvents() {
    if (events) events.abort();
    events = null;
    setLive(false);
  }

  function startEvents() {
    if (events || !session()) return;
    const controller = new AbortController();
    events = controller;
    (async () => {
      let delay = 1000;
      while (!controller.signal.aborted && session()) {
        try {
          const headers = { Authorization: 'Bearer ' + session().session, Accept: 'text/event-stream' };
          if (lastEventId) headers['Last-Event-ID'] = lastEventId;
          const r = await fetch('/v1/events', { headers, signal: controller.signal, cache: 'no-store', credentials: 'omit' });
          if (r.status === 401) { endLocally(t('sessionEnded')); return; }
          if (!r.ok || !r.body) throw new Error('HTTP ' + r.status);
          setLive(true);
          delay = 1000;
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            let cut;
            while ((cut = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              dispatch(block);
            }
          }
        } catch (e) {
          if (controller.signal.aborted) return;
        }
        setLive(false);
        await new Promise((ok) => setTimeout(ok, delay));
        delay = Math.min(delay * 2, 15000);
      }
    })();
  }

  function dispatch(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const key = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (key === 'event') name = value;
      else if (key === 'data') data.push(value);
      else if (key === 'id') lastEventId = value;
    }
    let payload = data.join('\n');
    try { payload = JSON.parse(payload); } catch (_) { /* plain text */ }
    if (name === 'revoked') { endLocally(t('sessionEnded')); return; }
    if (name === 'message') return;
    refreshCount();
    if (current && current.onEvent) current.onEvent(name, payload);
  }

  async function refreshCount() {
    if (!has('approver')) return;
    try {
      const list = await api('GET', '/v1/stamp-requests?state=pending');
      pendingCount = list.requests.length;
    } catch (_) { return; }
    const b = document.getElementById('pending-count');
    if (b) {
      b.textContent = String(pendingCount);
      b.className = pendingCount ? 'badge' : 'badge zero';
    }
  }

  // ------------------------------------------------------------------ seals cache
  let sealCache = null;
  async function seals(fresh) {
    if (!sealCache || fresh) sealCache = (await api('GET', '/v1/seals')).seals;
    return sealCache;
  }
  function sealName(id) {
    const s = (sealCache || []).find((x) => x.id === id);
    return s ? s.name : '#' + id;
  }

  // ------------------------------------------------------------------ routing
  let current = null;

  function routes() {
    const r = [];
    if (has('approver')) r.push(['#/requests', 'navRequests', true]);
    if (has('client')) r.push(['#/new', 'navNew']);
    if (has('custodian') || has('admin') || has('auditor')) r.push(['#/devices', 'navDevices']);
    r.push(['#/seals', 'navSeals']);
    if (has('auditor') || has('admin')) r.push(['#/audit', 'navAudit']);
    return r;
  }

  function drawChrome() {
    const s = session();
    const nav = document.getElementById('nav');
    nav.replaceChildren();
    nav.setAttribute('aria-label', t('views'));
    document.getElementById('skip').textContent = t('skip');
    const out = document.getElementById('signout');
    out.textContent = t('signOut');
    out.hidden = !s;
    document.getElementById('who').textContent = s ? t('signedInAs') + s.name + ' (' + s.roles.join(', ') + ')' : '';
    if (!s) return;
    const here = location.hash.split('/').slice(0, 2).join('/');
    for (const [hash, label, counted] of routes()) {
      const a = el('a', { href: hash, text: t(label) });
      if (here === hash) a.setAttribute('aria-current', 'page');
      if (counted) {
        const n = pendingCount === null ? '…' : String(pendingCount);
        a.append(el('span', { id: 'pending-count', class: pendingCount ? 'badge' : 'badge zero', 'aria-label': n, text: n }));
      }
      nav.append(a);
    }
    nav.append(el('span', { id: 'live', class: liveOn ? 'live' : 'live off', text: liveOn ? '● ' + t('live') : '○ ' + t('offline') }));
  }

  async function render(notice) {
    const main = document.getElementById('main');
    current = null;
    const s = session();
    drawChrome();
    if (!s) {
      main.replaceChildren(signInView(notice));
      document.getElementById('token').focus();
      return;
    }
    startEvents();
    if (pendingCount === null) refreshCount().then(drawChrome);
    const hash = location.hash;
    const m = /^#\/requests\/(\d+)$/.exec(hash);
    let view;
    if (m) view = requestView(Number(m[1]));
    else if (hash === '#/requests' && has('approver')) view = pendingView();
    else if (hash === '#/devices') view = devicesView();
    else if (hash === '#/seals') view = sealsView();
    else if (hash === '#/audit') view = auditView();
    else if (hash === '#/new' && has('client')) view = newView();
    else {
      const first = routes()[0];
      history.replaceState(null, '', first[0]);
      return render(notice);
    }
    current = view;
    const box = el('div', { class: 'view' });
    if (notice) box.append(notice);
    box.append(view.node);
    main.replaceChildren(box);
    try {
      await view.load();
    } catch (e) {
      view.node.append(msg('error', t('failed') + e.message));
    }
    const h1 = main.querySelector('h1');
    if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
  }

  // A sign-in link opened in a tab that already shows the console only changes the fragment.
  window.addEventListener('hashchange', () => { takeLinkCode().then((taken) => { if (!taken) render(); }); });
  document.getElementById('signout').addEventListener('click', () => signOut());
  // The skip link moves the focus; it must not change the fragment, which names the view.
  document.getElementById('skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('main').focus();
  });

  // ------------------------------------------------------------------ sign in
  function signInView(notice) {
    const input = el('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
    const result = el('div', { 'aria-live': 'polite' });
    const form = el('form', { id: 'signin-form', class: 'card narrow', novalidate: true },
      field('token', t('token'), input, t('tokenHint')),
      el('button', { type: 'submit', class: 'primary', id: 'signin', text: t('signIn') }),
      result,
      el('p', { class: 'hint', text: t('linkHint') }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let token = input.value.trim();
      input.value = '';
      if (!token) return;
      result.replaceChildren(el('p', { class: 'hint', text: t('signingIn') }));
      try {
        const answer = await api('POST', '/v1/console/session', undefined, token);
        token = null;
        saveSession(answer);
        lastActivity = Date.now();
        render();
      } catch (e) {
        token = null;
        result.replaceChildren(msg('error', e.message));
        input.focus();
      }
    });
    return el('section', { 'aria-labelledby': 'signin-title' },
      el('h1', { id: 'signin-title', text: t('signInTitle') }),
      notice || '',
      form);
  }

  // A one-time link from `sealctl console`: /#code=… (a fragment: never sent to a server).
  async function takeLinkCode() {
    const m = /^#code=([0-9a-f]{16,128})$/.exec(location.hash);
    if (!m) return false;
    history.replaceState(null, '', '/');
    // A link opened while signed in replaces that session: end the old one first.
    if (session()) {
      try { await api('POST', '/v1/console/session/end'); } catch (_) { /* ended already */ }
      sessionStorage.removeItem(KEY);
      sessionStorage.removeItem(MINE);
      stopEvents();
      pendingCount = null;
    }
    try {
      const answer = await api('POST', '/v1/console/session', { code: m[1] }, null);
      saveSession(answer);
      lastActivity = Date.now();
      render();
    } catch (e) {
      sessionStorage.removeItem(KEY);
      render(msg('error', t('linkUsed') + ' ' + e.message));
    }
    return true;
  }

  // ------------------------------------------------------------------ approver: pending
  function pendingView() {
    const body = el('div');
    const title = el('h1', { id: 'pending-title' }, t('pendingTitle'), ' ', el('span', { id: 'pending-total', text: '' }));
    async function load() {
      await seals();
      const list = await api('GET', '/v1/stamp-requests?state=pending');
      pendingCount = list.requests.length;
      drawChrome();
      document.getElementById('pending-total').textContent = '(' + list.requests.length + ')';
      if (!list.requests.length) {
        body.replaceChildren(el('p', { class: 'empty', text: t('noPending') }));
        return;
      }
      const rows = list.requests.map((r) => el('tr', { 'data-request': r.id },
        el('td', { text: '#' + r.id }),
        el('td', { text: list.names[r.requester] || '#' + r.requester }),
        el('td', { text: r.purpose }),
        el('td', { text: r.documents.map((d) => d.name).join(', ') }),
        el('td', { text: sealName(r.seal_id) }),
        el('td', { text: when(r.created_at) }),
        el('td', { text: when(r.expires_at) }),
        el('td', {}, el('a', { href: '#/requests/' + r.id, class: 'open-request', text: t('open') + ' #' + r.id }))));
      body.replaceChildren(el('table', { id: 'pending-table' },
        el('caption', { class: 'hint', text: t('pendingTitle') }),
        el('thead', {}, el('tr', {}, ['id', 'requester', 'purpose', 'documents', 'seal', 'created', 'expires', 'open']
          .map((k) => el('th', { scope: 'col', text: t(k) })))),
        el('tbody', {}, rows)));
    }
    return {
      node: el('section', { 'aria-labelledby': 'pending-title' }, title, body),
      load,
      onEvent(name) { if (name.startsWith('request-') || name === 'reset') load().catch(() => {}); },
    };
  }

  // ------------------------------------------------------------------ request page
  function requestView(id) {
    const node = el('section', { 'aria-labelledby': 'request-title' });
    async function load() {
      const r = await api('GET', '/v1/stamp-requests/' + id);
      let seal = null;
      try { seal = await api('GET', '/v1/seals/' + r.seal_id); } catch (_) { seal = null; }
      const me = session().name;
      const myVote = r.votes.find((v) => r.names[v.approver] === me);
      const title = el('h1', { id: 'request-title' }, t('request') + ' #' + r.id + ' ', badge(r.state));
      const facts = el('dl', { class: 'facts' },
        el('dt', { text: t('requester') }), el('dd', { id: 'request-requester', text: r.names[r.requester] || '#' + r.requester }),
        el('dt', { text: t('purpose') }), el('dd', { id: 'request-purpose', text: r.purpose }),
        el('dt', { text: t('state') }), el('dd', { id: 'request-state', 'data-state': r.state, text: stateText(r.state) }),
        el('dt', { text: t('created') }), el('dd', { text: when(r.created_at) }),
        el('dt', { text: t('expires') }), el('dd', { text: when(r.expires_at) }),
        el('dt', { text: t('origin') }), el('dd', { text: r.origin || '—' }),
        r.failure ? [el('dt', { text: t('failure') }), el('dd', { text: r.failure })] : []);
      const cards = el('div', { class: 'grid2' },
        el('div', { class: 'card' }, el('h2', { text: t('request') }), facts),
        sealCard(seal));
      node.replaceChildren(title, cards, documentsCard(r, seal), votesCard(r));
      const canDecide = has('approver') && r.state === 'pending' && !myVote && r.names[r.requester] !== me;
      if (canDecide) node.append(decideCard(r));
      else if (r.state === 'pending' && myVote) node.append(msg('ok', t('youVoted')));
      else if (r.state === 'pending' && !has('approver')) node.append(msg('warn', t('notYours')));
      if (has('approver')) node.append(el('p', {}, el('a', { href: '#/requests', text: t('back') })));
    }
    return {
      node,
      load,
      onEvent(name, data) {
        if ((name.startsWith('request-') && data && data.request_id === id) || name === 'reset') {
          // Keep a comment being typed: reload only when not in the middle of a decision.
          const typing = document.activeElement && document.activeElement.id === 'comment';
          if (!typing) load().catch(() => {});
        }
      },
    };
  }

  function sealCard(seal) {
    const card = el('div', { class: 'card', id: 'seal-card' }, el('h2', { text: t('seal') }));
    if (!seal) return card;
    const s = seal.seal;
    const img = el('img', {
      class: 'seal-image',
      alt: t('image') + ': ' + s.name,
      src: 'data:' + seal.image.media_type + ';base64,' + seal.image.base64,
    });
    card.append(el('div', { class: 'row' }, img, el('dl', { class: 'facts' },
      el('dt', { text: t('name') }), el('dd', { id: 'seal-name', text: s.name }),
      el('dt', { text: t('organisation') }), el('dd', { text: s.organisation }),
      el('dt', { text: t('kind') }), el('dd', { text: kindText(s.kind) }),
      el('dt', { text: t('state') }), el('dd', {}, badge(s.state)),
      el('dt', { text: t('validity') }), el('dd', { text: when(s.valid_from) + ' – ' + when(s.valid_to) }),
      el('dt', { text: t('expiry') }), el('dd', {}, expiryBadge(s.expiry)))));
    const size = el('p', { class: 'hint', id: 'seal-image-size' });
    const describe = () => { size.textContent = t('pixels', img.naturalWidth, img.naturalHeight, seal.image.width_mm, seal.image.height_mm); };
    if (img.complete) describe(); else img.addEventListener('load', describe);
    card.append(size);
    return card;
  }

  function documentsCard(r, seal) {
    const card = el('div', { class: 'card', id: 'documents' }, el('h2', { text: t('documents') }));
    const signatures = r.signatures || [];
    r.documents.forEach((d, i) => {
      const file = (r.files || []).find((f) => f.n === i + 1);
      const facts = el('dl', { class: 'facts' },
        el('dt', { text: t('name') }), el('dd', { class: 'doc-name', text: d.name }),
        el('dt', { text: t('digest') }), el('dd', { class: 'mono doc-digest', text: d.digest }));
      const box = el('div', { class: 'document' }, facts);
      if (file) {
        facts.append(
          el('dt', { text: t('format') }), el('dd', { class: 'doc-format', text: (file.format || 'ofd').toUpperCase() }),
          el('dt', { text: t('size') }), el('dd', { text: bytes(file.size) }),
          el('dt', { text: t('pages') }), el('dd', { text: String(file.plan.pages) }),
          el('dt', { text: t('mode') }), el('dd', { text: file.mode }),
          el('dt', { text: t('placements') }), el('dd', {}, el('ul', {}, file.plan.stamps.map((st) =>
            el('li', { text: t('page', st.page) + ': x ' + st.boundary[0] + ', y ' + st.boundary[1] + ', ' + st.boundary[2] + ' × ' + st.boundary[3] + ' mm' + (st.clip ? ' (clip)' : '') })))));
        box.append(placementPreview(file, seal));
        if (r.state === 'signed' && file.sealed) {
          box.append(el('button', {
            type: 'button', class: 'download-doc', text: t('downloadDoc'),
            onclick: async () => {
              const s = session();
              const res = await fetch('/v1/stamp-requests/' + r.id + '/documents/' + file.n, { headers: { Authorization: 'Bearer ' + s.session }, credentials: 'omit' });
              if (res.ok) download(file.name.replace(/\.(ofd|pdf)$/i, '') + '.sealed.' + (file.format || 'ofd'), await res.blob());
              else status(t('failed') + res.status);
            },
          }));
        }
      }
      const sig = signatures.find((x) => x.digest === d.digest && x.name === d.name) || signatures[i];
      if (sig) {
        box.append(el('button', {
          type: 'button', class: 'download-sig', 'data-doc': i,
          text: t('downloadSig'),
          onclick: () => download('request-' + r.id + '-' + (i + 1) + '.ses.dat', new Blob([base64Bytes(sig.ses_signature)], { type: 'application/octet-stream' })),
        }));
      }
      card.append(box);
    });
    return card;
  }

  // An SVG preview of each page that carries a stamp: the page box (A4 assumed: the request
  // does not say the page size), the seal image at each stamp's box, clipped for riding slices.
  function placementPreview(file, seal) {
    const wrap = el('div', { class: 'previews' });
    const pages = [...new Set(file.plan.stamps.map((s) => s.page))];
    pages.forEach((p, pi) => {
      const g = svg('svg', { class: 'page', viewBox: '0 0 210 297', role: 'img', 'aria-label': t('page', p) });
      g.append(svg('rect', { x: 0, y: 0, width: 210, height: 297, fill: '#fff', stroke: '#888', 'stroke-width': 0.5 }));
      const label = svg('text', { x: 4, y: 8, 'font-size': 6, fill: '#666' });
      label.textContent = t('page', p);
      g.append(label);
      file.plan.stamps.filter((s) => s.page === p).forEach((s, si) => {
        const [x, y, w, h] = s.boundary;
        if (seal && seal.image) {
          const clipId = 'clip-' + file.n + '-' + pi + '-' + si;
          if (s.clip) {
            const cp = svg('clipPath', { id: clipId });
            cp.append(svg('rect', { x: x + s.clip[0], y: y + s.clip[1], width: s.clip[2], height: s.clip[3] }));
            g.append(cp);
          }
          const img = svg('image', { x, y, width: w, height: h, href: 'data:' + seal.image.media_type + ';base64,' + seal.image.base64, preserveAspectRatio: 'none', opacity: 0.85 });
          if (s.clip) img.setAttribute('clip-path', 'url(#' + clipId + ')');
          g.append(img);
        }
        // The whole seal box; for a riding slice, dashed, with the slice on this page solid.
        const box = svg('rect', { class: 'stamp-box', x, y, width: w, height: h, fill: 'none', stroke: '#b3261e', 'stroke-width': 0.8 });
        if (s.clip) {
          box.setAttribute('stroke-dasharray', '2 1.5');
          box.setAttribute('stroke-opacity', '0.5');
          g.append(svg('rect', { class: 'stamp-slice', x: x + s.clip[0], y: y + s.clip[1], width: s.clip[2], height: s.clip[3], fill: 'rgba(179,38,30,0.12)', stroke: '#b3261e', 'stroke-width': 0.8 }));
        }
        g.append(box);
      });
      wrap.append(g);
    });
    if (pages.length) wrap.append(el('p', { class: 'hint', text: t('previewNote') }));
    return wrap;
  }

  function votesCard(r) {
    const approvedN = r.votes.filter((v) => v.approve).length;
    const list = r.votes.length
      ? el('ul', { class: 'votes', id: 'votes' }, r.votes.map((v) => el('li', {},
        el('strong', { text: r.names[v.approver] || '#' + v.approver }), ' — ',
        badge(v.approve ? 'approved' : 'rejected'), ' ', when(v.at),
        v.comment ? [' ', el('q', { class: 'vote-comment', text: v.comment })] : '')))
      : el('p', { class: 'empty', id: 'votes', text: t('noVotes') });
    return el('div', { class: 'card' }, el('h2', { text: t('votes') }), list,
      r.required_approvals ? el('p', { class: 'hint', text: t('needs', r.required_approvals, approvedN) }) : '');
  }

  function decideCard(r) {
    const comment = el('textarea', { maxlength: 1000 });
    const result = el('div', { 'aria-live': 'polite' });
    async function decide(verdict) {
      for (const b of card.querySelectorAll('button')) b.disabled = true;
      try {
        await api('POST', '/v1/stamp-requests/' + r.id + '/' + verdict, { comment: comment.value });
        status(t('done'));
        refreshCount();
        await current.load();
      } catch (e) {
        result.replaceChildren(msg('error', e.message));
        for (const b of card.querySelectorAll('button')) b.disabled = false;
      }
    }
    const card = el('div', { class: 'card decide', id: 'decide', role: 'group', 'aria-labelledby': 'decide-title' },
      el('h2', { id: 'decide-title', text: t('decide') }),
      field('comment', t('comment'), comment),
      el('div', {},
        el('button', { type: 'button', class: 'approve', id: 'approve', accesskey: 'a', text: t('approve'), onclick: () => decide('approve') }),
        ' ',
        el('button', { type: 'button', class: 'reject', id: 'reject', accesskey: 'r', text: t('reject'), onclick: () => decide('reject') })),
      el('p', { class: 'hint', text: t('keys') }),
      result);
    return card;
  }

  // ------------------------------------------------------------------ custodian: devices
  function devicesView() {
    const body = el('div');
    async function load() {
      const list = await api('GET', '/v1/devices');
      const all = await seals(true);
      const parts = [];
      const present = new Set();
      for (const m of list.modules) {
        parts.push(el('h2', { text: t('module') + ': ' + m.name + ' (' + m.model + (m.profile ? ', ' + m.profile : '') + ')' }));
        if (m.error) parts.push(msg('error', m.error));
        if (!m.tokens.length) parts.push(el('p', { class: 'empty', text: t('noTokens') }));
        for (const tok of m.tokens) {
          present.add(tok.serial);
          parts.push(await tokenCard(tok));
        }
      }
      // Tokens that hold seals but are not plugged in (a UKey removed): shown as absent.
      const absent = [...new Set(all.map((x) => x.device_serial))].filter((serial) => !present.has(serial));
      for (const serial of absent) {
        const names = all.filter((x) => x.device_serial === serial).map((x) => x.name).join(', ');
        parts.push(el('article', { class: 'card token absent', 'data-serial': serial },
          el('h2', { text: serial }),
          el('dl', { class: 'facts' },
            el('dt', { text: t('present') }), el('dd', { class: 'presence' }, el('span', { class: 'state bad', text: t('no') }), ' ', t('notPresent')),
            el('dt', { text: t('seal') }), el('dd', { text: names }))));
      }
      body.replaceChildren(...parts);
    }
    return {
      node: el('section', { 'aria-labelledby': 'devices-title' }, el('h1', { id: 'devices-title', text: t('devicesTitle') }), body),
      load,
      onEvent(name) {
        const busy = document.activeElement && document.activeElement.type === 'password';
        // This page reloads after its own logins and PIN changes; events from elsewhere
        // (a UKey plugged or pulled, an unblock) reload it too, unless a PIN is being typed.
        const outside = ['device-inserted', 'device-removed', 'pcsc', 'pin-unblocked', 'reset'];
        if (!busy && outside.includes(name)) load().catch(() => {});
      },
    };
  }

  async function tokenCard(tok) {
    const serial = tok.serial;
    let pinStatus = null;
    try { pinStatus = await api('GET', '/v1/devices/' + encodeURIComponent(serial) + '/pin-status'); } catch (_) { pinStatus = null; }
    const flags = Object.entries(tok.pin).filter(([, v]) => v === true).map(([k]) => k).join(', ');
    const age = pinStatus ? pinStatus.age : null;
    const facts = el('dl', { class: 'facts' },
      el('dt', { text: t('present') }), el('dd', { text: t('yes') }),
      el('dt', { text: t('loggedIn') }), el('dd', { class: 'logged-in', 'data-logged-in': tok.logged_in, text: tok.logged_in ? t('yes') : t('no') }),
      el('dt', { text: t('pinFlags') }), el('dd', { text: tok.pin_summary + (flags ? ' (' + flags + ')' : '') }),
      el('dt', { text: t('triesLeft') }), el('dd', { class: 'tries-left', text: pinStatus ? t('tries_' + pinStatus.tries_left) : '—' }),
      el('dt', { text: t('pinAge') }), el('dd', {},
        age && age.age_days !== null ? t('days', age.age_days) : t('unknown'),
        age && age.due_ms ? ' (' + t('due') + ' ' + whenMs(age.due_ms) + ')' : '', ' ',
        age ? badge(age.status === 'ok' || age.status === 'no-limit' ? 'ok' : age.status === 'overdue' ? 'bad' : 'warn') : ''));
    const card = el('article', { class: 'card token', 'data-serial': serial, 'aria-labelledby': 'tok-' + serial },
      el('h2', { id: 'tok-' + serial, text: tok.label + ' — ' + serial }), facts);
    const warning = tok.pin_warning || (pinStatus && pinStatus.warning);
    if (warning) card.append(msg('warn', warning));
    if (tok.pin.final_try) card.append(msg('warn', t('finalTry')));
    if (has('custodian') || has('admin')) {
      card.append(el('div', { class: 'grid2' }, loginForm(tok), pinChangeForm(tok, pinStatus)));
    }
    return card;
  }

  // PIN inputs: typed here, read once into the request body, cleared at once; never stored.
  function finalTryBox(id, visible) {
    const box = el('input', { type: 'checkbox', id });
    const wrap = el('label', { class: 'check', for: id, hidden: !visible }, box, t('confirmFinal'));
    return { box, wrap };
  }

  function loginForm(tok) {
    const serial = tok.serial;
    const pin = el('input', { type: 'password', autocomplete: 'off', 'data-pin': 'login' });
    const final = finalTryBox('final-login-' + serial, tok.pin.final_try);
    const result = el('div', { 'aria-live': 'polite' });
    const logout = el('button', { type: 'button', class: 'logout', text: t('logout'), onclick: async () => {
      try { await api('POST', '/v1/devices/' + encodeURIComponent(serial) + '/logout'); status(t('loggedOutOk')); await current.load(); } catch (e) { result.replaceChildren(msg('error', e.message)); }
    } });
    const form = tok.logged_in
      ? el('form', { class: 'login-form', novalidate: true },
        el('h3', { text: t('logout') }), el('p', { text: t('loggedInNow') }), logout, result)
      : el('form', { class: 'login-form', novalidate: true },
        el('h3', { text: t('login') }),
        field('pin-login-' + serial, t('pin'), pin, t('pinHint')),
        final.wrap,
        el('button', { type: 'submit', class: 'primary', text: t('login') }),
        result);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { pin: pin.value, confirm_final_try: final.box.checked };
      pin.value = '';
      try {
        await api('POST', '/v1/devices/' + encodeURIComponent(serial) + '/login', body);
        body.pin = '';
        status(t('loggedInOk'));
        await current.load();
        const again = document.querySelector('[data-serial="' + CSS.escape(serial) + '"] .login-form');
        if (again) again.append(msg('ok', t('loggedInOk')));
      } catch (e) {
        body.pin = '';
        if (e.code === 'pin_final_try') {
          final.wrap.hidden = false;
          result.replaceChildren(msg('warn', t('finalTry')), el('p', { class: 'hint', text: e.message }));
          final.box.focus();
        } else {
          result.replaceChildren(msg('error', e.message));
          pin.focus();
        }
      }
    });
    return form;
  }

  function pinChangeForm(tok, pinStatus) {
    const serial = tok.serial;
    const oldPin = el('input', { type: 'password', autocomplete: 'off', 'data-pin': 'old' });
    const newPin = el('input', { type: 'password', autocomplete: 'off', 'data-pin': 'new' });
    const newPin2 = el('input', { type: 'password', autocomplete: 'off', 'data-pin': 'new2' });
    const final = finalTryBox('final-change-' + serial, tok.pin.final_try);
    const result = el('div', { 'aria-live': 'polite' });
    let policyText = '';
    if (pinStatus && pinStatus.policy) {
      const p = pinStatus.policy;
      policyText = t('policyText', p.min_length, p.require.join(', ') || '—', p.max_age_days || t('noLimit'));
    }
    const form = el('form', { class: 'pin-form', novalidate: true },
      el('h3', { text: t('changePin') }),
      policyText ? el('p', { class: 'hint', id: 'policy-' + serial }, el('strong', { text: t('policy') + ': ' }), policyText) : '',
      field('pin-old-' + serial, t('oldPin'), oldPin),
      field('pin-new-' + serial, t('newPin'), newPin),
      field('pin-new2-' + serial, t('newPin2'), newPin2),
      final.wrap,
      el('button', { type: 'submit', class: 'primary', text: t('changePin') }),
      result);
    if (policyText) newPin.setAttribute('aria-describedby', 'policy-' + serial);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const same = newPin.value === newPin2.value;
      const body = { old_pin: oldPin.value, new_pin: newPin.value, confirm_final_try: final.box.checked };
      oldPin.value = ''; newPin.value = ''; newPin2.value = '';
      if (!same) {
        body.old_pin = ''; body.new_pin = '';
        result.replaceChildren(msg('error', t('pinMismatch')));
        oldPin.focus();
        return;
      }
      try {
        const answer = await api('POST', '/v1/devices/' + encodeURIComponent(serial) + '/pin', body);
        body.old_pin = ''; body.new_pin = '';
        status(t('pinChanged'));
        await current.load();
        const again = document.querySelector('[data-serial="' + CSS.escape(serial) + '"] .pin-form');
        if (again) again.append(msg(answer.recorded ? 'ok' : 'warn', answer.warning || t('pinChanged')));
      } catch (e) {
        body.old_pin = ''; body.new_pin = '';
        if (e.code === 'pin_final_try') {
          final.wrap.hidden = false;
          result.replaceChildren(msg('warn', t('finalTry')), el('p', { class: 'hint', text: e.message }));
          final.box.focus();
        } else {
          result.replaceChildren(msg('error', e.message));
          oldPin.focus();
        }
      }
    });
    return form;
  }

  // ------------------------------------------------------------------ seals
  function sealsView() {
    const body = el('div');
    const actions = el('div', { id: 'seal-actions' });
    async function load() {
      const list = await seals(true);
      const canManage = has('admin') || has('custodian');
      const rows = list.map((s) => el('tr', { 'data-seal': s.id },
        el('td', { text: '#' + s.id }),
        el('td', { text: s.name }),
        el('td', { text: s.organisation }),
        el('td', { text: kindText(s.kind) }),
        el('td', {}, badge(s.state)),
        el('td', { text: when(s.valid_to) }),
        el('td', {}, expiryBadge(s.expiry)),
        el('td', { class: 'mono', text: s.device_serial }),
        canManage ? el('td', {}, el('button', { type: 'button', class: 'quiet manage', 'aria-label': t('manageSeal', s.name + ' #' + s.id), text: t('manage'), onclick: () => showActions(s) })) : ''));
      const heads = ['id', 'name', 'organisation', 'kind', 'state', 'validUntil', 'expiry', 'device'].concat(canManage ? ['action'] : []);
      body.replaceChildren(el('table', { id: 'seals-table' },
        el('thead', {}, el('tr', {}, heads.map((k) => el('th', { scope: 'col', text: t(k) })))),
        el('tbody', {}, rows)));
    }
    function showActions(s) {
      const verbs = has('admin') ? ['suspend', 'resume', 'revoke', 'report-lost'] : ['report-lost'];
      const select = el('select', {}, verbs.map((v) => el('option', { value: v, text: t(v === 'report-lost' ? 'reportLost' : v) })));
      const reason = el('textarea', { maxlength: 1000, required: true });
      const result = el('div', { 'aria-live': 'polite' });
      const form = el('form', { class: 'card narrow', novalidate: true },
        el('h2', { id: 'manage-title', text: t('manage') + ': ' + s.name + ' (#' + s.id + ')' }),
        field('seal-verb', t('action'), select),
        field('seal-reason', t('reason'), reason),
        el('button', { type: 'submit', class: 'primary', text: t('apply') }),
        result);
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        if (!reason.value.trim()) { result.replaceChildren(msg('error', t('reasonNeeded'))); reason.focus(); return; }
        try {
          await api('POST', '/v1/seals/' + s.id + '/' + select.value, { reason: reason.value.trim() });
          status(t('done'));
          actions.replaceChildren();
          await load();
        } catch (e) {
          result.replaceChildren(msg('error', e.message));
        }
      });
      actions.replaceChildren(form);
      select.focus();
    }
    return {
      node: el('section', { 'aria-labelledby': 'seals-title' }, el('h1', { id: 'seals-title', text: t('sealsTitle') }), body, actions),
      load,
      onEvent(name) { if (name === 'seal-state' || name === 'seal-enrolled') load().catch(() => {}); },
    };
  }

  // ------------------------------------------------------------------ audit
  const KINDS = ['stamp-request', 'decision', 'request-state', 'signature', 'pin-login', 'pin-failure', 'pin-change', 'custody', 'key', 'device', 'seal-enrolled', 'seal-state', 'policy', 'identity', 'config-reload', 'prune', 'note', 'refusal', 'refusal-summary', 'verification'];

  function auditView() {
    const head = el('div', { class: 'card', id: 'audit-head' });
    const kind = el('select', {}, el('option', { value: '', text: t('kindAll') }), KINDS.map((k) => el('option', { value: k, text: k })));
    const sealId = el('input', { type: 'number', min: 1 });
    const actor = el('input', { type: 'text' });
    const limit = el('input', { type: 'number', min: 1, max: 1000, value: 50 });
    const results = el('div', { id: 'audit-results' });
    let after = 0;
    let page = [];
    const form = el('form', { class: 'card', id: 'audit-form', novalidate: true },
      el('div', { class: 'row' },
        field('audit-kind', t('kind'), kind),
        field('audit-seal', t('sealId'), sealId),
        field('audit-actor', t('actor'), actor),
        field('audit-limit', t('limit'), limit),
        el('button', { type: 'submit', class: 'primary', text: t('search') })));
    form.addEventListener('submit', (ev) => { ev.preventDefault(); after = 0; query().catch((e) => results.replaceChildren(msg('error', e.message))); });

    async function loadHead() {
      const h = await api('GET', '/v1/audit/head');
      head.replaceChildren(el('h2', { text: t('head') }));
      if (!h.head) { head.append(el('p', { class: 'empty', text: t('noHead') })); return; }
      head.append(el('dl', { class: 'facts' },
        el('dt', { text: t('seq') }), el('dd', { text: String(h.head.seq) }),
        el('dt', { text: t('time') }), el('dd', { text: whenMs(h.head.at_ms) }),
        el('dt', { text: 'expect_head' }), el('dd', { class: 'mono', id: 'expect-head', text: h.head.expect_head })),
      el('p', { class: 'hint', text: t('headHint') }));
    }

    function filters(from, count) {
      const q = new URLSearchParams();
      if (kind.value) q.set('kind', kind.value);
      if (sealId.value) q.set('seal_id', sealId.value);
      if (actor.value.trim()) q.set('actor', actor.value.trim());
      q.set('limit', String(count));
      q.set('after', String(from));
      return q;
    }

    async function query() {
      const answer = await api('GET', '/v1/audit?' + filters(after, limit.value || '50').toString());
      page = answer.records;
      const rows = page.map((r) => el('tr', { 'data-seq': r.seq },
        el('td', { text: String(r.seq) }),
        el('td', { text: whenMs(r.at_ms) }),
        el('td', { text: r.kind }),
        el('td', { text: r.actor }),
        el('td', { text: r.seal_id === null || r.seal_id === undefined ? '—' : '#' + r.seal_id }),
        el('td', { class: 'mono', text: clip(JSON.stringify(r.detail), 400) })));
      const nav = el('div', {},
        after > 0 ? el('button', { type: 'button', text: t('first'), onclick: () => { after = 0; query(); } }) : '', ' ',
        answer.next_after ? el('button', { type: 'button', id: 'audit-next', text: t('next'), onclick: () => { after = answer.next_after; query(); } }) : '', ' ',
        page.length ? el('button', { type: 'button', id: 'audit-export', text: t('exportPage'), onclick: () => download('seald-usage-log-' + (page[0].seq) + '.jsonl', new Blob([page.map((r) => JSON.stringify(r)).join('\n') + '\n'], { type: 'application/x-ndjson' })) }) : '', ' ',
        page.length ? el('button', { type: 'button', id: 'audit-export-all', text: t('exportAll'), onclick: (ev) => exportAll(ev.target) }) : '');
      results.replaceChildren(
        page.length ? el('table', { id: 'audit-table' },
          el('thead', {}, el('tr', {}, ['seq', 'time', 'kind', 'actor', 'seal', 'detail'].map((k) => el('th', { scope: 'col', text: t(k) })))),
          el('tbody', {}, rows)) : el('p', { class: 'empty', text: t('noRecords') }),
        nav);
    }

    // Every record the filters select, page by page (1,000 a call), as one JSON Lines file.
    async function exportAll(button) {
      button.disabled = true;
      const lines = [];
      let from = 0;
      try {
        for (;;) {
          const answer = await api('GET', '/v1/audit?' + filters(from, 1000).toString());
          for (const r of answer.records) lines.push(JSON.stringify(r));
          status(t('exported', lines.length));
          if (!answer.next_after) break;
          from = answer.next_after;
        }
        download('seald-usage-log.jsonl', new Blob([lines.join('\n') + '\n'], { type: 'application/x-ndjson' }));
      } catch (e) {
        results.append(msg('error', e.message));
      } finally {
        button.disabled = false;
      }
    }

    return {
      node: el('section', { 'aria-labelledby': 'audit-title' }, el('h1', { id: 'audit-title', text: t('auditTitle') }), head, form, results),
      async load() { await loadHead(); await query(); },
    };
  }

  function clip(s, n) {
    return s.length > n ? s.slice(0, n) + '…' : s;
  }

  // ------------------------------------------------------------------ requester
  function mine() {
    try { return JSON.parse(sessionStorage.getItem(MINE) || '[]'); } catch (_) { return []; }
  }

  function newView() {
    const sealSelect = el('select', { required: true });
    const fileInput = el('input', { type: 'file' });
    const name = el('input', { type: 'text', maxlength: 255 });
    const digest = el('input', { type: 'text', class: 'mono', maxlength: 64, spellcheck: 'false', autocomplete: 'off' });
    const purpose = el('textarea', { maxlength: 1000, required: true });
    const result = el('div', { 'aria-live': 'polite', id: 'new-result' });
    const list = el('div', { id: 'mine' });
    const openId = el('input', { type: 'number', min: 1 });
    fileInput.addEventListener('change', async () => {
      const f = fileInput.files[0];
      if (!f) return;
      if (!name.value) name.value = f.name;
      digest.value = sm3Hex(new Uint8Array(await f.arrayBuffer()));
    });
    const form = el('form', { class: 'card narrow', id: 'new-form', novalidate: true },
      field('new-seal', t('seal'), sealSelect),
      field('new-file', t('file'), fileInput),
      field('new-name', t('docName'), name),
      field('new-digest', t('digest'), digest, t('digestHint')),
      field('new-purpose', t('purpose'), purpose),
      el('button', { type: 'submit', class: 'primary', id: 'new-submit', text: t('submit') }),
      result,
      // SEAM (issue 15): OFD documents are uploaded as multipart/form-data to the same
      // POST /v1/stamp-requests (a `request` JSON part with seal, purpose and placements, one
      // `file` part per document). When that lands, add an OFD file input and placement
      // fields here and send a FormData body instead of JSON; the request page already shows
      // `files` (size, SM3, pages, placements, preview) and downloads the sealed documents.
      el('p', { class: 'hint', id: 'ofd-seam', text: t('ofdSeam') }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const hex = digest.value.trim().toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(hex)) { result.replaceChildren(msg('error', t('badDigest'))); digest.focus(); return; }
      try {
        const answer = await api('POST', '/v1/stamp-requests', {
          seal_id: Number(sealSelect.value),
          digest: hex,
          document_name: name.value.trim() || 'document',
          purpose: purpose.value.trim(),
        });
        const ids = mine();
        ids.unshift(answer.id);
        sessionStorage.setItem(MINE, JSON.stringify(ids.slice(0, 50)));
        result.replaceChildren(msg('ok', t('created202', answer.id)));
        fileInput.value = ''; digest.value = ''; name.value = ''; purpose.value = '';
        await drawMine();
      } catch (e) {
        result.replaceChildren(msg('error', e.message));
      }
    });
    async function drawMine() {
      const ids = mine();
      if (!ids.length) { list.replaceChildren(el('p', { class: 'empty', text: t('noMine') })); return; }
      const rows = [];
      for (const id of ids) {
        try {
          const r = await api('GET', '/v1/stamp-requests/' + id);
          rows.push(el('tr', { 'data-request': r.id },
            el('td', {}, el('a', { href: '#/requests/' + r.id, text: '#' + r.id })),
            el('td', { text: r.documents.map((d) => d.name).join(', ') }),
            el('td', { text: sealName(r.seal_id) }),
            el('td', {}, badge(r.state)),
            el('td', { text: when(r.updated_at) })));
        } catch (_) { /* no longer visible */ }
      }
      list.replaceChildren(el('table', { id: 'mine-table' },
        el('thead', {}, el('tr', {}, ['id', 'documents', 'seal', 'state', 'time'].map((k) => el('th', { scope: 'col', text: t(k) })))),
        el('tbody', {}, rows)));
    }
    const opener = el('form', { class: 'row', novalidate: true },
      field('open-id', t('openById'), openId),
      el('button', { type: 'submit', text: t('open') }));
    opener.addEventListener('submit', (ev) => { ev.preventDefault(); if (openId.value) location.hash = '#/requests/' + Number(openId.value); });
    return {
      node: el('section', { 'aria-labelledby': 'new-title' },
        el('h1', { id: 'new-title', text: t('newTitle') }), form,
        el('h2', { text: t('mine') }), list, opener),
      async load() {
        const all = await seals(true);
        sealSelect.replaceChildren(...all.filter((s) => s.usable).map((s) => el('option', { value: s.id, text: s.name + ' (#' + s.id + ')' })));
        await drawMine();
      },
      onEvent(name) { if (name.startsWith('request-')) drawMine().catch(() => {}); },
    };
  }

  // SM3 (GB/T 32905) of bytes, hex: the digest a request names, computed in the page so the
  // document itself never leaves this browser.
  function sm3Hex(data) {
    const rotl = (x, n) => ((x << n) | (x >>> (32 - n))) >>> 0;
    const p0 = (x) => (x ^ rotl(x, 9) ^ rotl(x, 17)) >>> 0;
    const p1 = (x) => (x ^ rotl(x, 15) ^ rotl(x, 23)) >>> 0;
    const len = data.length;
    const total = Math.ceil((len + 9) / 64) * 64;
    const buf = new Uint8Array(total);
    buf.set(data);
    buf[len] = 0x80;
    const view = new DataView(buf.buffer);
    view.setUint32(total - 8, Math.floor(len / 0x20000000));
    view.setUint32(total - 4, (len * 8) >>> 0);
    const v = [0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e];
    const w = new Uint32Array(68);
    const w1 = new Uint32Array(64);
    for (let off = 0; off < total; off += 64) {
      for (let j = 0; j < 16; j++) w[j] = view.getUint32(off + 4 * j);
      for (let j = 16; j < 68; j++) w[j] = (p1(w[j - 16] ^ w[j - 9] ^ rotl(w[j - 3], 15)) ^ rotl(w[j - 13], 7) ^ w[j - 6]) >>> 0;
      for (let j = 0; j < 64; j++) w1[j] = (w[j] ^ w[j + 4]) >>> 0;
      let [a, b, c, d, e, f, g, h] = v;
      for (let j = 0; j < 64; j++) {
        const tj = j < 16 ? 0x79cc4519 : 0x7a879d8a;
        const ss1 = rotl((rotl(a, 12) + e + rotl(tj, j % 32)) >>> 0, 7);
        const ss2 = (ss1 ^ rotl(a, 12)) >>> 0;
        const ff = j < 16 ? (a ^ b ^ c) : ((a & b) | (a & c) | (b & c));
        const gg = j < 16 ? (e ^ f ^ g) : ((e & f) | (~e & g));
        const tt1 = (ff + d + ss2 + w1[j]) >>> 0;
        const tt2 = (gg + h + ss1 + w[j]) >>> 0;
        d = c; c = rotl(b, 9); b = a; a = tt1;
        h = g; g = rotl(f, 19); f = e; e = p0(tt2);
      }
      const next = [a, b, c, d, e, f, g, h];
      for (let i = 0; i < 8; i++) v[i] = (v[i] ^ next[i]) >>> 0;
    }
    return v.map((x) => x.toString(16).padStart(8, '0')).join('');
  }

  // ------------------------------------------------------------------ start
  takeLinkCode().then((taken) => { if (!taken) render(); });
})();

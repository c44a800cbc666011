// にーみんポイント マイページ: hash routing, the session, the service worker.
import { api, saved, setCsrf, whenLoggedOut } from './api.js';
import { h, say } from './ui.js';
import { views, cardViews } from './views.js';

const $ = (s) => document.querySelector(s);
const view = $('#view');
const nav = $('#nav');
const logoutBtn = $('#logout');
let flash = null;
let first = true;
let renderSeq = 0;
let offline = false; // showing the saved figures

const app = {
  session: null,
  go(hash, message) {
    flash = message || null;
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  refresh() { flash = null; route(); },
  loggedIn(token) {
    setCsrf(token);
    saved.set('member', 1);
    app.session = null;
  },
  forget() {
    setCsrf('');
    saved.clear();
    app.session = null;
  },
  async logout() {
    try {
      await session(); // the CSRF token, if the page was opened offline
      await api('POST', '/logout');
    } catch (e) {
      if (e.code !== 'not_logged_in') { say(e.message, 'err'); return; }
    }
    app.forget();
    app.go('#/login', 'ログアウトしました。');
  },
};

whenLoggedOut((err) => {
  if (!app.session && !saved.get('member')) return;
  app.forget();
  app.go('#/login', err.message);
});

async function session() {
  if (app.session) return app.session;
  try {
    const s = await api('GET', '/session');
    setCsrf(s.csrf_token);
    saved.set('member', 1);
    if (s.point_name) $('#point-name').textContent = s.point_name;
    app.session = s;
  } catch (e) {
    if (e.code !== 'offline') throw e;
  }
  return app.session;
}

function parse() {
  const [name = '', ...args] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (name === 'card') return [cardViews[args[1]], [args[0]]];
  if (views[name]) return [views[name], args];
  return [null, args];
}

async function route() {
  const seq = ++renderSeq;
  let [v, args] = parse();
  // Without a hash, members start on their balance, everyone else on the login screen.
  if (!v) v = saved.get('member') ? views.cards : views.login;
  const message = flash;
  flash = null;
  let data;
  try {
    if (v.member) [, data] = await Promise.all([session(), v.load?.(args, app)]);
    else data = await v.load?.(args, app);
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e.code === 'not_logged_in') {
      app.forget();
      v = views.login;
    } else {
      show(v, h('div', {}, h('h1', { tabindex: '-1' }, v.title),
        h('p', {}, e.message),
        h('button', { type: 'button', class: 'btn alt', onclick: () => app.refresh() }, 'もう一度読み込む')));
      say(e.message, 'err');
      return;
    }
  }
  if (seq !== renderSeq) return; // a newer navigation won
  show(v, v.render(data, args, app));
  offline = !!data?.offline;
  // The offline notice is the status region itself: seen and announced once.
  say(offline ? 'オフラインです。最後に取得した情報を表示しています' : message || '', offline ? 'warn' : '');
}

function show(v, node) {
  const member = !!v.member;
  nav.hidden = !member;
  logoutBtn.hidden = !member;
  const here = location.hash.split('/')[1] || (member ? 'cards' : '');
  nav.querySelectorAll('a').forEach((a) => {
    if (a.dataset.nav === here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  document.title = `${v.title} | にーみんポイント マイページ`;
  view.replaceChildren(node);
  if (!first) {
    window.scrollTo(0, 0);
    view.querySelector('h1')?.focus();
  }
  first = false;
}

logoutBtn.addEventListener('click', () => app.logout());
addEventListener('hashchange', route);
addEventListener('online', () => offline && app.refresh());
route();

if ('serviceWorker' in navigator) {
  addEventListener('load', () => navigator.serviceWorker.register('sw.js').catch(() => {}));
}

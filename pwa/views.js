// The screens: {title, member, load?(args, app), render(data, args, app)}.
import { api, saved } from './api.js';
import {
  h, pt, signed, day, when, say, email, password, code, showPasswords, cardFields, readCard,
  samePasswords, form, link, half, user,
} from './ui.js';

const id = encodeURIComponent;
const SOURCE = { initial: '初回付与', rebate: '還元', event: 'イベント', admin: '行政ポイント', campaign: 'キャンペーン', transfer: '移行' };
const KIND = { grant: '付与', spend: '利用', spend_cancel: '利用取消', expire: '失効', void: '抹消', transfer: '移行',
  rebate_clawback: '還元取消' };

const screen = (title, render, load, member = true) => ({ title, render, load, member });
const page = (title, ...kids) => h('div', {}, h('h1', { tabindex: '-1' }, title), kids);
const p = (text, cls) => h('p', { class: cls }, text);
const btn = (text, onclick, cls = 'btn text') => h('button', { type: 'button', class: cls, onclick }, text);
const back = (href, text = 'やめる') => h('p', { class: 'more' }, link(href, text, 'text'));
const newPasswords = (label) => [
  password(label, 'password', 'new-password', '8文字以上。ほかのサービスと同じパスワードは避けてください。'),
  password(`${label}（確認のため、もう一度）`, 'password2', 'new-password'), showPasswords()];

// A screen of numbered steps, redrawn in place; focus goes to the step's heading.
function steps(of, draw) {
  const root = h('div');
  const go = (n) => {
    root.replaceChildren(h('h2', { class: 'step', tabindex: '-1' }, `ステップ ${n} / ${of}　${draw.names[n - 1]}`),
      ...draw(go, n));
    root.querySelector('h2').focus();
  };
  go(1);
  return root;
}

// -- before login ---------------------------------------------------------------------
const login = screen('ログイン', (d, a, app) => page('ログイン',
  p('登録したメールアドレスとパスワードを入力してください。'),
  form(async (fd) => {
    const r = await api('POST', '/login', { email: half(fd.get('email')), password: fd.get('password') });
    app.loggedIn(r.csrf_token);
    app.go('#/cards');
  }, [email(), password('パスワード', 'password', 'current-password'), showPasswords()], 'ログイン'),
  h('div', { class: 'stack more' },
    link('#/signup', 'はじめての方（利用登録）'),
    link('#/reset', 'パスワードを忘れた方', 'text'))), null, false);

const signup = screen('利用登録', (d, a, app) => {
  const s = {};
  const draw = (go, n) => {
    if (n === 1) {
      return [p('入力したメールアドレスに、4桁の確認コードをお送りします。'),
        form(async (fd) => {
          s.email = half(fd.get('email'));
          await api('POST', '/signup/start', { email: s.email });
          go(2);
        }, [email(s.email)], '確認コードを送る')];
    }
    if (n === 2) {
      return [p(`${s.email} に4桁の確認コードを送りました。届かないときは、迷惑メールのフォルダもご確認ください。`),
        form(async (fd) => {
          s.token = (await api('POST', '/signup/verify', { email: s.email, code: half(fd.get('code')) })).signup_token;
          go(3);
        }, [code()], '次へ'),
        h('div', { class: 'stack more' },
          btn('確認コードをもう一度送る', () => api('POST', '/signup/start', { email: s.email })
            .then(() => say('確認コードをもう一度送りました。'), (e) => say(e.message, 'err'))),
          btn('メールアドレスを入力し直す', () => go(1)))];
    }
    if (n === 3) {
      return [p('お持ちの新見市オリジナルICOCAカードを登録します。'),
        form(async (fd) => {
          Object.assign(s, readCard(fd));
          go(4);
        }, cardFields(s), '次へ')];
    }
    return [p('ログインに使うパスワードを決めてください。'),
      form(async (fd) => {
        try {
          const r = await api('POST', '/signup/complete', {
            signup_token: s.token, card_number: s.card_number, birth_date: s.birth_date,
            password: samePasswords(fd),
          });
          app.loggedIn(r.csrf_token);
          app.go('#/cards', '登録が完了しました。');
        } catch (e) {
          if (/^card/.test(e.code)) go(3); // the card number or birth date was refused
          else if (/^signup|token/.test(e.code)) go(1); // the code has expired: start again
          throw e;
        }
      }, [user(s.email), ...newPasswords('パスワード')], '登録する'),
      btn('戻る', () => go(3))];
  };
  draw.names = ['メールアドレス', '確認コード', 'カードの情報', 'パスワード'];
  return page('利用登録', steps(4, draw));
}, null, false);

const reset = screen('パスワードの再設定', (d, a, app) => {
  let addr = '';
  const draw = (go, n) => (n === 1
    ? [p('登録したメールアドレスに、4桁の確認コードをお送りします。'),
      form(async (fd) => {
        addr = half(fd.get('email'));
        await api('POST', '/password-reset/start', { email: addr });
        go(2);
      }, [email()], '確認コードを送る')]
    : [p(`${addr} あてに確認コードを送りました。確認コードと新しいパスワードを入力してください。`),
      form(async (fd) => {
        await api('POST', '/password-reset/complete', {
          email: addr, code: half(fd.get('code')), new_password: samePasswords(fd),
        });
        app.go('#/login', 'パスワードを変更しました。新しいパスワードでログインしてください。');
      }, [user(addr), code(), ...newPasswords('新しいパスワード')], 'パスワードを変更する'),
      btn('メールアドレスを入力し直す', () => go(1))]);
  draw.names = ['メールアドレス', '新しいパスワード'];
  return page('パスワードの再設定', steps(2, draw), back('#/login', 'ログイン画面に戻る'));
}, null, false);

// -- balance --------------------------------------------------------------------------
async function loadCards() {
  try {
    const { cards } = await api('GET', '/cards');
    const list = await Promise.all(cards.map((c) => api('GET', `/cards/${id(c.card_id)}`)));
    const data = { cards: list, fetched_at: new Date().toISOString() };
    saved.set('cards', data);
    return data;
  } catch (e) {
    const last = e.code === 'offline' && saved.get('cards');
    if (last) return { ...last, offline: true };
    throw e;
  }
}

function cardView(c) {
  const soon = c.expiring_soon || { points: 0 };
  const near = (l) => soon.points > 0 && l.expires_on <= soon.until;
  const first = c.lots.filter(near).map((l) => l.expires_on).sort()[0];
  const hid = `card-${c.card_id}`;
  return h('section', { class: 'card', 'aria-labelledby': hid },
    h('h2', { id: hid }, h('span', { class: 'sub' }, 'カード番号 '), c.card_number_masked),
    h('p', { class: 'bal' }, h('span', { class: 'lbl' }, '残高'), h('span', { class: 'num' }, pt(c.balance))),
    soon.points > 0 && h('p', { class: 'soon' },
      h('strong', {}, `30日以内に失効: ${pt(soon.points)}`),
      first && [h('br'), `早いものは${day(first)}で失効します。お早めにご利用ください。`]),
    h('h3', {}, '有効期限ごとの内訳'),
    c.lots.length
      ? h('ul', { class: 'lots' }, c.lots.map((l) => h('li', { class: near(l) && 'near' },
        h('span', { class: 'amt' }, pt(l.points)), `\u3000${day(l.expires_on)}まで`,
        h('span', { class: 'src' }, [SOURCE[l.source], near(l) && 'まもなく失効'].filter(Boolean).join('・')))))
      : p('有効なポイントはありません。'),
    h('div', { class: 'row' },
      link(`#/card/${id(c.card_id)}/history`, '利用履歴を見る'),
      link(`#/card/${id(c.card_id)}/unlink`, 'このカードの登録を解除', 'text')));
}

const cards = screen('ポイント残高', (d, a, app) => page('ポイント残高',
  p(`最終更新 ${when(d.fetched_at)}`, 'updated'),
  d.cards.length ? d.cards.map(cardView) : p('登録されたカードはありません。下のボタンからカードを追加してください。'),
  h('div', { class: 'stack more' },
    link('#/link', '＋ ご家族のカードを追加する'),
    btn('最新の情報に更新する', () => app.refresh()))), loadCards);

const history = screen('利用履歴', ([card, first], [cid]) => {
  const list = h('ol', { class: 'hist' });
  let cursor;
  const add = (pg) => {
    list.append(...pg.entries.map((e) => h('li', {},
      h('span', { class: 'when' }, when(e.at)),
      h('span', {}, h('span', { class: 'kind' }, KIND[e.kind] || e.kind), ' ', e.label),
      h('span', { class: `pts ${e.points < 0 ? 'minus' : 'plus'}` }, signed(e.points)))));
    cursor = pg.next_cursor;
    more.hidden = !cursor;
  };
  const more = btn('もっと見る', async () => {
    more.setAttribute('aria-busy', 'true');
    try {
      const pg = await api('GET', `/cards/${id(cid)}/history?cursor=${id(cursor)}`);
      add(pg);
      say(`${pg.entries.length}件を追加しました。${cursor ? '' : 'これですべてです。'}`, 'sr');
    } catch (e) { say(e.message, 'err'); }
    more.removeAttribute('aria-busy');
  }, 'btn alt');
  add(first);
  return page('利用履歴',
    p(`カード番号 ${card.card_number_masked}（新しい順）`, 'sub'),
    first.entries.length ? list : p('まだ履歴はありません。'),
    h('div', { class: 'stack more' }, more), back('#/cards', '残高の画面に戻る'));
}, ([cid]) => Promise.all([api('GET', `/cards/${id(cid)}`), api('GET', `/cards/${id(cid)}/history`)]));

const linkCard = screen('カードの追加', (d, a, app) => page('カードの追加',
  p('ご家族のカードなども追加して、まとめて残高を確認できます。'),
  form(async (fd) => {
    await api('POST', '/cards', readCard(fd));
    app.go('#/cards', 'カードを追加しました。');
  }, cardFields(), '追加する'),
  back('#/cards')));

const unlink = screen('カードの登録解除', (c, [cid], app) => page('カードの登録解除',
  p(`カード番号 ${c.card_number_masked} の登録を解除しますか？`, 'lead'),
  p('解除しても、カードのポイントは消えません。お店では引き続き使えます。もう一度登録するには、カード番号と生年月日が必要です。'),
  form(async () => {
    await api('DELETE', `/cards/${id(cid)}`);
    app.go('#/cards', 'カードの登録を解除しました。');
  }, [], '登録を解除する', 'btn danger'),
  back('#/cards')), ([cid]) => api('GET', `/cards/${id(cid)}`));

// -- stores ---------------------------------------------------------------------------
const stores = screen('使えるお店', ({ stores: all }) => {
  const list = h('ul', { class: 'stores' });
  const count = p('', 'sub');
  const pick = (label, key) => h('div', { class: 'field' },
    h('label', { for: `s-${key}` }, label),
    h('select', { id: `s-${key}`, name: key, onchange: () => filter(true) },
      h('option', { value: '' }, 'すべて'), [...new Set(all.map((s) => s[key]))].map((v) => h('option', {}, v))));
  const filters = h('div', { class: 'filters' }, pick('地域', 'area'), pick('種類', 'category'));
  function filter(announce) {
    const [a, c] = [...filters.querySelectorAll('select')].map((s) => s.value);
    const shown = all.filter((s) => (!a || s.area === a) && (!c || s.category === c));
    list.replaceChildren(...shown.map((s) => h('li', {},
      h('span', { class: 'name' }, s.name), h('span', { class: 'sub' }, `${s.area}　／　${s.category}`))));
    count.textContent = `${shown.length}件のお店`;
    if (announce) say(`${shown.length}件のお店が見つかりました。`, 'sr');
  }
  filter();
  return page('使えるお店', p('にーみんポイントは、新見市内の加盟店でのみ使えます。'), filters, count, list);
}, () => api('GET', '/stores'));

// -- settings -------------------------------------------------------------------------
const section = (hid, title, ...kids) => h('section', { class: 'card', 'aria-labelledby': hid },
  h('h2', { id: hid }, title), kids);

const settings = screen('設定', (d, a, app) => page('設定',
  section('set-mail', 'お知らせメール', form(async (fd) => {
    const on = fd.has('remind');
    await api('PUT', '/preferences', { expiry_reminders: on });
    app.session.expiry_reminders = on;
    say(on ? 'お知らせメールを受け取る設定にしました。' : 'お知らせメールを止めました。');
  }, [h('div', { class: 'check' }, h('label', {},
    h('input', { type: 'checkbox', name: 'remind', checked: !!app.session?.expiry_reminders }),
    ' ポイントの有効期限が近づいたら、メールで知らせる'))], '保存する', 'btn alt')),
  section('set-login', 'ログイン',
    app.session && p(`メールアドレス: ${app.session.email}`),
    h('div', { class: 'stack' },
      link('#/password', 'パスワードを変更する'),
      btn('ログアウトする', () => app.logout(), 'btn alt'))),
  section('set-quit', '退会',
    p('マイページの利用をやめます。カードのポイントは消えません。'),
    link('#/withdraw', '退会の手続きへ', 'text'))));

const changePassword = screen('パスワードの変更', (d, a, app) => page('パスワードの変更',
  form(async (fd) => {
    await api('POST', '/password', { current_password: fd.get('current'), new_password: samePasswords(fd) });
    app.go('#/settings', 'パスワードを変更しました。');
  }, [user(app.session?.email), password('いまのパスワード', 'current', 'current-password'),
    ...newPasswords('新しいパスワード')], 'パスワードを変更する'),
  back('#/settings')));

const withdraw = screen('退会', (d, a, app) => page('退会',
  h('div', { class: 'notice' },
    p('退会すると、登録したカードはすべて解除され、マイページにログインできなくなります。'),
    p('カードのにーみんポイントは消えません。お店では引き続き使えます。')),
  form(async (fd) => {
    await api('POST', '/withdraw', { password: fd.get('password') });
    app.forget();
    app.go('#/login', '退会しました。ご利用ありがとうございました。');
  }, [user(app.session?.email),
    password('パスワード', 'password', 'current-password', '確認のため、パスワードを入力してください。'),
    h('div', { class: 'check' }, h('label', {},
      h('input', { type: 'checkbox', name: 'ok', required: true }), ' 上の内容を確認しました'))],
  '退会する', 'btn danger'),
  back('#/settings')));

export const views = {
  login, signup, reset, cards, link: linkCard, stores, settings, password: changePassword, withdraw,
};
export const cardViews = { history, unlink }; // #/card/{id}/history, #/card/{id}/unlink

// DOM helpers, Japanese formats, the status region and accessible form fields.

export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...kids.flat(9).filter((k) => k != null && k !== false));
  return el;
}

// Formats by hand: Intl's first use loads locale data, a long task on a slow phone.
export const num = (n) => String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
export const pt = (n) => `${num(n)} pt`;
export const signed = (n) => (n > 0 ? '+' : n < 0 ? '−' : '') + pt(Math.abs(n));
export function day(s) {
  const [y, m, d] = String(s).split('-').map(Number);
  return `${y}年${m}月${d}日`;
}
// An instant in Japan time (UTC+9 all year, no summer time): 2026年11月22日 10:15
export function when(iso) {
  const d = new Date(Date.parse(iso) + 9 * 3600e3);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}年${d.getUTCMonth() + 1}月${d.getUTCDate()}日 ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}

// Full-width digits and letters (from a Japanese keyboard) to ASCII, spaces and dashes out.
export const half = (s) => String(s || '')
  .replace(/[！-～]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
  .replace(/[\s\u3000]/g, '');
export function cardNumber(s) {
  const v = half(s).replace(/[-ー－‐]/g, '').toUpperCase();
  return /^\d{15}$/.test(v) ? `JW${v}` : v;
}

const msg = () => document.getElementById('msg');
export function say(text, kind) {
  const el = msg();
  const show = () => {
    el.textContent = text;
    if (kind === 'err') el.scrollIntoView({ block: 'nearest' });
  };
  el.className = `msg${text ? ` ${kind || 'ok'}` : ''}`;
  if (text && el.textContent === text) {
    el.textContent = ''; // the same message again: a fresh text node after a tick is announced again
    setTimeout(show, 50);
  } else show();
}

let seq = 0;
export function field(label, attrs, hint) {
  const id = `f${++seq}`;
  const hid = hint ? `${id}h` : null;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    hint && h('p', { class: 'hint', id: hid }, hint),
    h('input', { id, type: 'text', required: true, 'aria-describedby': hid, ...attrs }));
}

export const email = (value) => field('メールアドレス', {
  name: 'email', value, type: 'email', autocomplete: 'email', inputmode: 'email', autocapitalize: 'off', spellcheck: 'false',
});

export const password = (label, name, autocomplete, hint) => field(label, {
  name, type: 'password', autocomplete, minlength: autocomplete === 'new-password' ? 8 : null, maxlength: 128,
}, hint);

export const code = () => field('確認コード（4桁の数字）', {
  name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 8, class: 'short',
}, 'メールに書かれた4桁の数字を入力してください。');

// For password managers: which account a new password belongs to.
export const user = (name) => h('input', {
  type: 'email', name: 'username', autocomplete: 'username', value: name || '', hidden: true, readonly: true, tabindex: '-1',
});

export function showPasswords() {
  return h('div', { class: 'check' }, h('label', {},
    h('input', {
      type: 'checkbox',
      onchange: (e) => e.target.form.querySelectorAll('[autocomplete$="password"]')
        .forEach((i) => { i.type = e.target.checked ? 'text' : 'password'; }),
    }), ' パスワードを表示する'));
}

// Card number and birth date, filled with `v` ({card_number, birth_date}) when going back.
export function cardFields(v = {}) {
  const [y, m, d] = v.birth_date ? v.birth_date.split('-').map(Number) : [];
  const part = (label, name, max, autocomplete, value) => {
    const id = `f${++seq}`;
    return h('span', { class: 'part' },
      h('input', { id, name, inputmode: 'numeric', maxlength: max, required: true, autocomplete, class: `n${max}`, value }),
      h('label', { for: id }, label));
  };
  return [
    field('カード番号', {
      name: 'card', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', maxlength: 24, value: v.card_number,
    },
      'カード裏面の、JWから始まる17けたの番号です。（例: JW010000000000001）'),
    h('fieldset', { class: 'field' }, h('legend', {}, '生年月日（西暦）'),
      h('p', { class: 'hint' }, 'カードをお持ちの方の生年月日です。（例: 1955年4月1日）'),
      h('div', { class: 'date' },
        part('年', 'by', 4, 'bday-year', y), part('月', 'bm', 2, 'bday-month', m), part('日', 'bd', 2, 'bday-day', d))),
  ];
}

// {card_number, birth_date} from cardFields, or throws a message to show.
export function readCard(fd) {
  const card_number = cardNumber(fd.get('card'));
  if (!/^JW\d{15}$/.test(card_number)) throw new Error('カード番号は「JW」と15けたの数字で入力してください。');
  const [y, m, d] = ['by', 'bm', 'bd'].map((k) => Number(half(fd.get(k))));
  const dt = new Date(Date.UTC(y, m - 1, d));
  if (!(y > 1900) || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d || dt > new Date()) {
    throw new Error('生年月日を正しく入力してください。');
  }
  const p = (n) => String(n).padStart(2, '0');
  return { card_number, birth_date: `${y}-${p(m)}-${p(d)}` };
}

export function samePasswords(fd) {
  if (fd.get('password') !== fd.get('password2')) throw new Error('確認のために入力したパスワードが一致しません。');
  return fd.get('password');
}

// A form whose submit runs `submit(FormData)`; errors go to the status region.
export function form(submit, kids, label, cls) {
  let busy = false;
  const f = h('form', {
    class: 'stack',
    onsubmit: async (e) => {
      e.preventDefault();
      if (busy) return;
      busy = true;
      f.setAttribute('aria-busy', 'true');
      say('');
      try {
        await submit(new FormData(f), f);
      } catch (err) {
        say(err.message, 'err');
      } finally {
        busy = false;
        f.removeAttribute('aria-busy');
      }
    },
  }, kids, h('button', { type: 'submit', class: cls || 'btn' }, label));
  return f;
}

export const link = (href, text, cls) => h('a', { href, class: cls || 'btn alt' }, text);

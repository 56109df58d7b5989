/** The web app: a hash router over the runs list, a run's tabs, sign-in and the admin pages. */
import { api, message, whenUnauthenticated } from './api.js';
import type { Me } from './api-types.js';
import { blockListPage, policiesPage } from './admin-pages.js';
import { errorBox, h, replace } from './dom.js';
import { isTab, runPage } from './run-page.js';
import { runsPage } from './runs-page.js';

let me: Me | null = null;

function app(): HTMLElement {
  const element = document.getElementById('app');
  if (!element) throw new Error('page has no #app');
  return element;
}

function renderChrome(): void {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!nav || !who) return;
  if (!me) {
    replace(nav);
    replace(who);
    return;
  }
  replace(nav, h('a', { href: '#/runs' }, 'Runs'), h('a', { href: '#/admin/policies' }, 'Policies'), h('a', { href: '#/admin/blocklist' }, 'Block list'));
  replace(
    who,
    `${me.name} · ${me.tenant} · ${me.role}`,
    h('button', { className: 'secondary', id: 'sign-out', onclick: () => void signOut() }, 'Sign out'),
  );
}

async function signOut(): Promise<void> {
  await api('DELETE', '/session').catch(() => undefined);
  me = null;
  location.hash = '#/login';
}

function loginPage(root: HTMLElement): void {
  const status = h('div');
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'username', placeholder: 'admin@runwall.local' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password' });
  const key = h('input', { name: 'apiKey', placeholder: 'rwk_…', autocomplete: 'off' });
  const signIn = async (body: unknown) => {
    try {
      me = await api<Me>('POST', '/session', body);
      renderChrome();
      location.hash = '#/runs';
    } catch (error) {
      replace(status, errorBox(message(error)));
    }
  };
  replace(
    root,
    h(
      'div',
      { className: 'login card' },
      h('h1', {}, 'Sign in to runwall'),
      status,
      h('form', { id: 'password-login', onsubmit: (e: Event) => { e.preventDefault(); void signIn({ email: email.value, password: password.value }); } }, h('label', {}, 'Email', email), h('label', {}, 'Password', password), h('button', { type: 'submit' }, 'Sign in')),
      h('p', { className: 'muted' }, 'or with an API key (member, admin or operator):'),
      h('form', { id: 'key-login', onsubmit: (e: Event) => { e.preventDefault(); void signIn({ apiKey: key.value.trim() }); } }, h('label', {}, 'API key', key), h('button', { type: 'submit', className: 'secondary' }, 'Sign in with key')),
    ),
  );
}

async function route(): Promise<void> {
  const root = app();
  const hash = location.hash.replace(/^#/, '') || '/runs';
  const [path = '/runs', search = ''] = hash.split('?');
  const params = new URLSearchParams(search);
  if (path === '/login') {
    renderChrome();
    loginPage(root);
    return;
  }
  if (!me) {
    try {
      me = await api<Me>('GET', '/me');
    } catch {
      location.hash = '#/login';
      return;
    }
  }
  renderChrome();
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === 'runs' && parts.length === 1) runsPage(root, params);
    else if (parts[0] === 'runs' && parts[1]) await runPage(root, parts[1], parts[2] && isTab(parts[2]) ? parts[2] : 'summary');
    else if (parts[0] === 'admin' && parts[1] === 'policies') await policiesPage(root, me);
    else if (parts[0] === 'admin' && parts[1] === 'blocklist') await blockListPage(root, me, params);
    else replace(root, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/runs' }, 'Go to the runs')));
  } catch (error) {
    replace(root, errorBox(message(error)));
  }
}

whenUnauthenticated(() => {
  me = null;
  if (location.hash !== '#/login') location.hash = '#/login';
});
window.addEventListener('hashchange', () => void route());
void route();

// Service worker: the app shell is cached so MyPage opens offline. API answers are never
// cached here (the app keeps the last figures in localStorage): /api GETs go to the
// network, and a network failure becomes a JSON "offline" answer the app understands.
const CACHE = 'niimin-mypage-v1';
const SHELL = [
  './', 'index.html', 'app.css', 'app.js', 'api.js', 'ui.js', 'views.js',
  'manifest.webmanifest', 'icons/icon-192.png', 'icons/icon-512.png', 'icons/maskable-512.png',
];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

const offline = () => new Response(
  JSON.stringify({ code: 'offline', message: 'オフラインです。電波の届く場所で、もう一度お試しください。' }),
  { status: 503, headers: { 'Content-Type': 'application/json; charset=utf-8' } },
);

self.addEventListener('fetch', (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname.startsWith('/api/')) {
    if (url.pathname.startsWith('/api/mypage/v1/')) e.respondWith(fetch(req).catch(offline));
    return;
  }
  // The shell: network first (always the newest version online), the cache when offline.
  e.respondWith(fetch(req).then((res) => {
    if (res.ok) {
      const copy = res.clone();
      caches.open(CACHE).then((c) => c.put(req, copy));
    }
    return res;
  }).catch(() => caches.match(req, { ignoreSearch: true })
    .then((hit) => hit || (req.mode === 'navigate' ? caches.match('index.html') : Response.error()))));
});

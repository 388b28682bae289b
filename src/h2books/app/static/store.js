// h2books storefront: one request for the whole listing, one per book on demand.
// Plain script, no build step, no dependencies; the server sends it with `defer`.
"use strict";

(() => {
  const NUMBER = new Intl.NumberFormat("en-US");
  const MS = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  const HUES = 12;
  // Requests kept in flight by "fetch each listed book". Chrome refuses thousands of
  // pending fetches (net::ERR_INSUFFICIENT_RESOURCES); the server allows 128 concurrent
  // streams per connection, so this keeps its window full and nothing more.
  const IN_FLIGHT = 128;
  const BOOK_HASH = /^#book-(\d{1,20})$/;

  const $ = (id) => document.getElementById(id);
  const ui = {
    protocol: $("protocol"),
    stats: $("request-stats"),
    rows: $("request-rows"),
    stock: $("stock-count"),
    search: $("search"),
    count: $("result-count"),
    multiplex: $("multiplex"),
    multiplexStatus: $("multiplex-status"),
    multiplexProgress: $("multiplex-progress"),
    list: $("books"),
    noResults: $("no-results"),
    loadError: $("load-error"),
    dialog: $("detail"),
    detailRank: $("detail-rank"),
    detailTitle: $("detail-title"),
    detailAuthor: $("detail-author"),
    detailScore: $("detail-score"),
    detailVotes: $("detail-votes"),
    detailFetch: $("detail-fetch"),
    detailJson: $("detail-json"),
    detailJsonPath: $("detail-json-path"),
    detailSource: $("detail-source"),
  };

  // The browser keeps 250 resource timings by default; "fetch each listed book" makes
  // up to one per book, and the request log should count them all.
  if (performance.setResourceTimingBufferSize) performance.setResourceTimingBufferSize(50000);

  const catalogue = {
    books: [],        // [{id, title, author, score}] in catalogue order
    byId: new Map(),  // id -> {book, rank}
    haystacks: [],    // normalised "title author" per book, for search
    items: [],        // the <li> per book, same order
  };

  // --- how the page was delivered -------------------------------------------------

  function showProtocol() {
    const navigation = performance.getEntriesByType("navigation")[0];
    const protocol = (navigation && navigation.nextHopProtocol) || "";
    ui.protocol.textContent = protocol ? `served over ${protocol}` : "served over (unknown)";
    ui.protocol.classList.add(protocol === "h2" ? "is-h2" : "is-other");
    document.documentElement.dataset.protocol = protocol;
  }

  function requestEntries() {
    return [
      ...performance.getEntriesByType("navigation"),
      ...performance.getEntriesByType("resource"),
    ];
  }

  // A timing entry's path, with every /book?id=N folded into one row of the log.
  function groupOf(entry) {
    const url = new URL(entry.name, location.href);
    if (url.origin !== location.origin) return url.href;
    return url.pathname === "/book" ? "/book?id=…" : url.pathname + url.search;
  }

  function median(sorted) {
    const middle = sorted.length >> 1;
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  function renderRequestStats() {
    const entries = requestEntries();
    let finished = 0;
    const protocols = new Set();
    const groups = new Map();
    for (const entry of entries) {
      finished = Math.max(finished, entry.responseEnd);
      if (entry.nextHopProtocol) protocols.add(entry.nextHopProtocol);
      const key = groupOf(entry);
      let group = groups.get(key);
      if (!group) {
        group = { key, protocols: new Set(), durations: [], bytes: 0 };
        groups.set(key, group);
      }
      if (entry.nextHopProtocol) group.protocols.add(entry.nextHopProtocol);
      group.durations.push(entry.duration);
      group.bytes += entry.encodedBodySize || 0;
    }
    const requests = entries.length;
    const over = [...protocols].join(", ") || "an unknown protocol";
    ui.stats.textContent =
      `${NUMBER.format(requests)} request${requests === 1 ? "" : "s"}, ` +
      `${requests === 1 || protocols.size > 1 ? "" : "all "}over ${over} · ` +
      `done in ${MS.format(finished)} ms`;
    ui.stats.dataset.requests = String(requests);

    const rows = [];
    for (const group of groups.values()) {
      const durations = group.durations.sort((a, b) => a - b);
      const count = durations.length;
      const label = count > 1 ? `${group.key} ×${NUMBER.format(count)}` : group.key;
      const time = count > 1
        ? `median ${MS.format(median(durations))} ms`
        : `${MS.format(durations[0])} ms`;
      rows.push(
        `<tr><td>${escapeHtml(label)}</td><td>${escapeHtml([...group.protocols].join(", ") || "–")}</td>` +
        `<td class="num">${time}</td><td class="num">${formatBytes(group.bytes)}</td></tr>`,
      );
    }
    ui.rows.innerHTML = rows.join("");
  }

  let statsScheduled = false;
  function scheduleRequestStats() {
    if (statsScheduled) return;
    statsScheduled = true;
    requestAnimationFrame(() => {
      statsScheduled = false;
      renderRequestStats();
    });
  }

  function formatBytes(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${MS.format(bytes / 1024)} KB`;
    return `${MS.format(bytes / (1024 * 1024))} MB`;
  }

  // --- the listing ----------------------------------------------------------------

  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  }

  // Case- and accent-insensitive: "ozkan" finds "Özkan".
  function normalise(text) {
    return text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
  }

  function hueOf(id) {
    let hash = 0;
    for (let i = 0; i < id.length; i += 1) hash = (hash * 31 + id.charCodeAt(i)) >>> 0;
    return hash % HUES;
  }

  function initialOf(title) {
    const match = /[\p{L}\p{N}]/u.exec(title);
    return match ? match[0].toUpperCase() : "?";
  }

  function bookItem(book, rank) {
    const id = escapeHtml(book.id);
    return (
      `<li><a class="book" href="#book-${id}">` +
      `<span class="cover hue-${hueOf(book.id)}" aria-hidden="true">${escapeHtml(initialOf(book.title))}</span>` +
      `<span class="book-title">${escapeHtml(book.title)}</span>` +
      `<span class="book-author"><span class="visually-hidden">by </span>${escapeHtml(book.author)}</span>` +
      `<span class="book-meta"><span>#${rank}</span>` +
      `<span class="book-score">score ${escapeHtml(book.score)}</span></span>` +
      `</a></li>`
    );
  }

  function renderCatalogue(books) {
    catalogue.books = books;
    catalogue.byId = new Map(books.map((book, index) => [book.id, { book, rank: index + 1 }]));
    catalogue.haystacks = books.map((book) => normalise(`${book.title} ${book.author}`));
    // One string, one parse: far cheaper than 3000 createElement calls.
    ui.list.innerHTML = books.map((book, index) => bookItem(book, index + 1)).join("");
    catalogue.items = Array.from(ui.list.children);
    ui.list.setAttribute("aria-busy", "false");
    ui.stock.textContent = NUMBER.format(books.length);
    document.body.dataset.state = "ready";
  }

  function applySearch() {
    const words = normalise(ui.search.value).split(/\s+/).filter(Boolean);
    const { haystacks, items } = catalogue;
    let shown = 0;
    for (let i = 0; i < items.length; i += 1) {
      const haystack = haystacks[i];
      const match = words.every((word) => haystack.includes(word));
      // Touch the DOM only for items whose visibility changes.
      if (items[i].hidden === match) items[i].hidden = !match;
      if (match) shown += 1;
    }
    const total = NUMBER.format(items.length);
    ui.count.textContent = words.length
      ? `${NUMBER.format(shown)} of ${total} books match “${ui.search.value.trim()}”`
      : `All ${total} books`;
    ui.count.dataset.shown = String(shown);
    ui.noResults.hidden = shown > 0;
    ui.multiplex.disabled = shown === 0;
    ui.multiplex.textContent = shown === items.length
      ? `Fetch all ${total} books, one request each`
      : `Fetch these ${NUMBER.format(shown)} books, one request each`;
  }

  async function loadCatalogue() {
    try {
      const response = await fetch("/books.json", { headers: { accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const books = await response.json();
      if (!Array.isArray(books)) throw new Error("the listing is not an array");
      renderCatalogue(books);
      applySearch();
      openFromHash();
    } catch (error) {
      ui.list.setAttribute("aria-busy", "false");
      ui.count.textContent = "The catalogue is unavailable.";
      ui.loadError.textContent = `Could not load /books.json: ${error.message}. Reload to try again.`;
      ui.loadError.hidden = false;
      document.body.dataset.state = "error";
    }
  }

  // --- HTTP/2 at work: one request per listed book, all at once ---------------------

  async function fetchEachListed() {
    const ids = catalogue.items.flatMap((item, index) =>
      item.hidden ? [] : [catalogue.books[index].id]);
    if (!ids.length) return;
    ui.multiplex.disabled = true;
    delete ui.multiplexStatus.dataset.fetched;
    ui.multiplexStatus.textContent = `Fetching ${NUMBER.format(ids.length)} books…`;
    const progress = ui.multiplexProgress;
    progress.max = ids.length;
    progress.value = 0;
    progress.hidden = false;
    let next = 0;
    let failed = 0;
    async function fetchNext() {
      while (next < ids.length) {
        const id = ids[next];
        next += 1;
        try {
          // no-store: every request reaches the server, even for books opened before.
          const response = await fetch(`/book?id=${encodeURIComponent(id)}`, { cache: "no-store" });
          await response.arrayBuffer();
          if (!response.ok) failed += 1;
        } catch {
          failed += 1;
        }
        progress.value += 1;
      }
    }
    const started = performance.now();
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, ids.length) }, fetchNext));
    const elapsed = performance.now() - started;
    progress.hidden = true;
    const protocol = document.documentElement.dataset.protocol || "this connection";
    ui.multiplexStatus.textContent =
      `Fetched ${NUMBER.format(ids.length - failed)} books, one request each, ` +
      `in ${MS.format(elapsed)} ms over ${protocol}` +
      (failed ? ` (${NUMBER.format(failed)} failed)` : ".");
    ui.multiplexStatus.dataset.fetched = String(ids.length - failed);
    ui.multiplex.disabled = false;
  }

  // --- detail view ----------------------------------------------------------------

  let shownId = null;

  function openFromHash() {
    const match = BOOK_HASH.exec(location.hash);
    if (match && catalogue.byId.has(match[1])) {
      showDetail(match[1]);
    } else if (ui.dialog.open) {
      ui.dialog.close();
    }
  }

  async function showDetail(id) {
    const { book, rank } = catalogue.byId.get(id);
    shownId = id;
    const path = `/book?id=${encodeURIComponent(id)}`;
    ui.detailRank.textContent = `#${NUMBER.format(rank)} in the catalogue`;
    ui.detailTitle.textContent = book.title;
    ui.detailAuthor.textContent = `by ${book.author}`;
    ui.detailScore.textContent = book.score || "–";
    ui.detailVotes.textContent = "…";
    ui.detailJson.href = path;
    ui.detailJsonPath.textContent = path;
    ui.detailSource.hidden = true;
    ui.detailFetch.textContent = `GET ${path} …`;
    if (!ui.dialog.open) ui.dialog.showModal();
    ui.detailTitle.focus();

    // The listing has what the card shows; the rest comes from the book's own resource,
    // fetched now, on the same connection as everything else.
    const started = performance.now();
    try {
      const response = await fetch(path, { headers: { accept: "application/json" } });
      const details = await response.json();
      if (shownId !== id) return;  // another book was opened meanwhile
      if (!response.ok) throw new Error(details.error || `HTTP ${response.status}`);
      const elapsed = performance.now() - started;
      ui.detailVotes.textContent = details.vote_count || "–";
      if (typeof details.url === "string" && /^https?:\/\//.test(details.url)) {
        ui.detailSource.href = details.url;
        ui.detailSource.textContent = `Its page on ${new URL(details.url).hostname}`;
        ui.detailSource.hidden = false;
      }
      const timing = performance.getEntriesByName(response.url).at(-1);
      const via = timing && timing.transferSize === 0
        ? "from the browser cache"
        : `over ${(timing && timing.nextHopProtocol) || "the network"}`;
      ui.detailFetch.textContent = `GET ${path} → ${response.status} in ${MS.format(elapsed)} ms ${via}`;
    } catch (error) {
      if (shownId !== id) return;
      ui.detailVotes.textContent = "–";
      ui.detailFetch.textContent = `GET ${path} failed: ${error.message}`;
    }
    ui.dialog.dataset.loaded = id;
  }

  ui.dialog.addEventListener("close", () => {
    shownId = null;
    delete ui.dialog.dataset.loaded;
    // Leave the book's URL so that reopening the same book is a fresh hash change.
    if (BOOK_HASH.test(location.hash)) {
      history.replaceState(null, "", location.pathname + location.search);
    }
  });

  // --- wiring ---------------------------------------------------------------------

  showProtocol();
  renderRequestStats();
  if (typeof PerformanceObserver === "function") {
    new PerformanceObserver(scheduleRequestStats).observe({ type: "resource", buffered: true });
  }
  const initialQuery = new URLSearchParams(location.search).get("q");
  if (initialQuery) ui.search.value = initialQuery;
  ui.search.addEventListener("input", applySearch);
  ui.multiplex.addEventListener("click", fetchEachListed);
  window.addEventListener("hashchange", openFromHash);
  loadCatalogue();
})();

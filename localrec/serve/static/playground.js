// The localrec playground: one page, no build step, no CDN. It calls the same JSON API
// as any other client (/v1/...). Every text from the server is set with textContent.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  // The token (needed to record events) comes from the field, or once from the URL's
  // #token=... fragment, which browsers never send to a server; it is then removed from
  // the address bar.
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    $("token").value = fromHash;
    history.replaceState(null, "", location.pathname + location.search);
  }
  let previous = new Set(); // the item ids of the list shown before, to mark what is new
  let lastKey = "";

  async function api(path, body, withToken) {
    const headers = { "Content-Type": "application/json" };
    const token = $("token").value.trim();
    if (withToken && token) headers.Authorization = "Bearer " + token;
    const response = await fetch(path, body === undefined ? { headers } : {
      method: "POST", headers, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) {
      const field = data.field ? " [" + data.field + "]" : "";
      throw new Error(response.status + field + ": " + (data.error || "failed"));
    }
    return data;
  }

  function showError(error) {
    $("error").textContent = error ? String(error.message || error) : "";
    $("error").hidden = !error;
  }

  function mode() {
    return document.querySelector("input[name=mode]:checked").value;
  }

  function setMode() {
    document.body.className = mode();
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function reason(detail) {
    if (detail.reason === "similar text") {
      return detail.title + " (" + detail.similarity.toFixed(2) + ")";
    }
    return detail.title + " (" + detail.reason + ": " + Math.round(detail.similarity * 100) + "%)";
  }

  function render(list) {
    const key = mode() + "|" + (list.user || "") + "|" + list.domain;
    const shown = key === lastKey ? previous : new Set();
    $("title").textContent =
      list.items.length + " " + list.domain + " item(s) for " +
      (list.user ? "user " + list.user : "this history") +
      " · " + list.user_vector + " · history of " + list.history_size;
    const notes = $("notes");
    notes.replaceChildren(...list.notes.map((n) => element("li", "", n)));
    const results = $("results");
    results.replaceChildren(...list.items.map((item) => {
      const li = element("li");
      li.dataset.item = item.item_id;
      const row = element("div", "item");
      const title = element("span", "item-title", item.title);
      if (shown.size && !shown.has(item.item_id)) title.append(element("span", "badge", "new"));
      const meta = element("span", "meta");
      meta.append(element("span", "score", item.score.toFixed(3)), " · " + item.item_id + " ");
      if (mode() === "user") {
        const buy = element("button", "small", "bought it");
        buy.type = "button";
        buy.addEventListener("click", () => record(item.item_id, "purchase"));
        meta.append(buy);
      }
      row.append(title, meta);
      li.append(row);
      if (item.because_detail.length) {
        li.append(element("div", "because", "because: " + item.because_detail.map(reason).join("; ")));
      }
      return li;
    }));
    previous = new Set(list.items.map((i) => i.item_id));
    lastKey = key;
    $("answer").hidden = false;
  }

  async function recommend() {
    const body = {
      domain: $("domain").value,
      k: Number($("k").value) || 10,
      explain: $("explain").checked,
    };
    if (mode() === "user") body.user = $("user").value.trim();
    else body.history = $("history").value;
    $("go").disabled = true;
    try {
      render(await api("/v1/recommend", body));
      showError(null);
      document.body.dataset.state = "listed";
    } catch (error) {
      showError(error);
      document.body.dataset.state = "error";
    } finally {
      $("go").disabled = false;
    }
  }

  async function record(item, action) {
    const user = $("user").value.trim();
    try {
      await api("/v1/events", { events: [{ user, item, action }] }, true);
      await loadUsers();
      await recommend();
    } catch (error) {
      showError(error);
    }
  }

  async function loadUsers() {
    const { users } = await api("/v1/users?limit=100");
    $("users").replaceChildren(...users.map((u) => {
      const option = element("option");
      option.value = u.user;
      option.label = u.events + " event(s)";
      return option;
    }));
    return users;
  }

  async function start() {
    for (const radio of document.querySelectorAll("input[name=mode]")) {
      radio.addEventListener("change", setMode);
    }
    $("ask").addEventListener("submit", (event) => { event.preventDefault(); recommend(); });
    $("event").addEventListener("submit", (event) => {
      event.preventDefault();
      record($("event-item").value.trim(), $("event-action").value);
    });
    const health = await api("/v1/health");
    $("serving").textContent = "model " + health.model +
      (health.pack ? " · pack " + health.pack : "") + " · " + health.db +
      (health.adapter ? " · tuned hybrid" : " · zero-shot");
    $("domain").replaceChildren(...health.domains.map((d) => element("option", "", d)));
    const users = await loadUsers();
    // ?user=...|?history=...&domain=...&k=... fill the form and ask at once.
    const query = new URLSearchParams(location.search);
    if (query.get("history") !== null) {
      document.querySelector("input[value=history]").checked = true;
      $("history").value = query.get("history");
    }
    $("user").value = query.get("user") || (users.length ? users[0].user : "me");
    if (query.get("domain")) $("domain").value = query.get("domain");
    if (query.get("k")) $("k").value = query.get("k");
    setMode();
    document.body.dataset.state = "ready";
    if (query.get("user") !== null || query.get("history") !== null) await recommend();
  }

  start().catch(showError);
})();

// brochure desk: search as you type, a basket count, and the content status kept live.
// Everything also works without this file; it only saves clicks.
"use strict";

function fold(text) {
  return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

function setUpSearch() {
  const box = document.getElementById("q");
  const packet = document.getElementById("packet");
  if (!box || !packet) return;
  const found = document.getElementById("found");
  const cards = Array.from(packet.querySelectorAll(".card"));
  const filter = () => {
    const words = fold(box.value).split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of cards) {
      const text = card.dataset.words || "";
      const match = words.every((w) => text.includes(w));
      card.hidden = !match;
      if (match) shown += 1;
    }
    for (const group of packet.querySelectorAll(".group")) {
      group.hidden = !group.querySelector(".card:not([hidden])");
    }
    found.textContent = `${shown} of ${cards.length} documents shown`;
  };
  box.addEventListener("input", filter);
  box.form.addEventListener("submit", (event) => {
    event.preventDefault();
    filter();
  });
}

function setUpBasket() {
  const packet = document.getElementById("packet");
  const basket = document.getElementById("basket");
  if (!packet || !basket) return;
  const button = packet.querySelector(".basket button");
  const update = () => {
    const picked = Array.from(packet.querySelectorAll("input[name=d]"))
      .filter((i) => i.type === "hidden" || i.checked)
      .map((i) => i.dataset.title || i.value);
    basket.textContent = picked.length
      ? `${picked.length} picked: ${picked.join("; ")}`
      : "Tick the handouts to give, then personalise them.";
    button.disabled = picked.length === 0;
  };
  packet.addEventListener("change", update);
  update();
}

function setUpStatus() {
  const live = document.getElementById("status-live");
  if (!live || !window.EventSource) return;
  let busy = false;
  let again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const response = await fetch(live.dataset.table, { cache: "no-store" });
      if (response.ok) live.innerHTML = await response.text();
    } catch (error) {
      // The desk is restarting: the event stream reconnects by itself.
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  };
  const events = new EventSource(live.dataset.events);
  events.onmessage = (event) => {
    const shown = document.getElementById("status-summary");
    if (!shown || shown.dataset.version !== event.data) refresh();
  };
}

// The clinic server signs a person out after some idle minutes: warn a minute before, let one click
// keep the session, and when the time is up sign out from here (the server's sweep would too).
// Before it warns or signs out, a page asks the server how long is left: another tab of the same
// session may have been used since this one loaded.
function setUpIdle() {
  const box = document.getElementById("idle-warning");
  if (!box) return;
  const count = document.getElementById("idle-count");
  const stay = document.getElementById("idle-stay");
  let deadline = Date.now() + Number(box.dataset.seconds) * 1000;
  let confirmed = false;  // the server said less than a minute is left, for this deadline
  const signOut = () => {
    const form = document.createElement("form");
    form.method = "post";
    form.action = box.dataset.signout;
    for (const [name, value] of [["csrf_token", box.dataset.csrf], ["reason", "idle"]]) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  };
  const serverLeft = async () => {
    try {
      const response = await fetch(box.dataset.left, { cache: "no-store", redirect: "manual" });
      return response.ok ? Number(await response.text()) : 0;  // redirected: already signed out
    } catch (error) {
      return null;  // the server is restarting: ask again at the next tick
    }
  };
  const tick = async () => {
    let left = Math.ceil((deadline - Date.now()) / 1000);
    if ((left <= 60 && !confirmed) || left <= 0) {
      const server = await serverLeft();
      if (server === 0) {
        signOut();
        return;
      }
      if (server !== null) {
        deadline = Date.now() + server * 1000;
        left = server;
        confirmed = server <= 60;
      }
    }
    if (left <= 60 && confirmed) {
      count.textContent = String(Math.max(left, 1));
      if (box.hidden) {
        box.hidden = false;
        stay.focus();
      }
    } else if (!box.hidden) {
      box.hidden = true;
    }
    window.setTimeout(tick, 1000);
  };
  stay.addEventListener("click", async () => {
    const body = new URLSearchParams({ csrf_token: box.dataset.csrf });
    try {
      const response = await fetch(box.dataset.alive, { method: "POST", body, cache: "no-store", redirect: "manual" });
      if (!response.ok) { signOut(); return; }
      deadline = Date.now() + Number(await response.text()) * 1000;
      confirmed = false;
    } catch (error) {
      return;  // the server is restarting: the next tick tries again
    }
    box.hidden = true;
  });
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  setUpIdle();
  setUpSearch();
  setUpBasket();
  setUpStatus();
  const notice = document.getElementById("errors") || document.getElementById("done");
  if (notice) notice.focus();
});

// brochure desk: search as you type, a packet count, the live preview, outcomes and questions
// that take the focus, and the content status kept live. Without this file every page still works
// (the preview then has its own button); it saves clicks and shows what happened.
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
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest && event.target.closest("input, select, textarea");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });
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
    found.textContent = `${shown} of ${cards.length} topics shown`;
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
  const bar = packet.querySelector(".basket");
  const button = bar.querySelector("button");
  const update = () => {
    const picked = Array.from(packet.querySelectorAll("input[name=t]:checked, input[name=d][type=hidden]"))
      .map((i) => i.dataset.title || i.value);
    basket.textContent = picked.length
      ? `Packet: ${picked.length} handout${picked.length === 1 ? "" : "s"} (${picked.join("; ")})`
      : "To give several handouts at once, tick “Add to packet” on each.";
    button.disabled = picked.length === 0;
  };
  packet.addEventListener("change", update);
  update();
}

// The personalise step: the preview follows the fields as they are typed (after a short pause),
// the delivery button says what it will do, a download stays on the page and says it is recorded,
// and an outcome or a question takes the focus when the page opens.
function setUpGive() {
  const form = document.getElementById("personalise");
  if (!form) return;
  const sheets = document.getElementById("sheets");
  const state = document.getElementById("preview-state");
  const textBox = document.getElementById("preview-text");
  const followUp = document.getElementById("follow-up-day");
  const go = document.getElementById("go");
  const outcome = document.getElementById("outcome");
  const zoom = document.getElementById("zoom");
  document.getElementById("show-preview").hidden = true;
  zoom.hidden = false;
  let sequence = 0;
  let shown = 0;
  let timer = null;
  let controller = null;
  const method = () => (form.querySelector("input[name=action]:checked") || { value: "print" }).value;
  const label = () => { go.textContent = go.dataset[method()] || "Give"; };
  const scrollToName = () => {
    const hit = Array.from(sheets.querySelectorAll("img")).find((i) => i.dataset.found !== "");
    if (!hit || sheets.classList.contains("whole")) return;
    const at = hit.offsetTop + Number(hit.dataset.found) * hit.clientHeight;
    sheets.scrollTop = Math.max(0, at - sheets.clientHeight / 4);
  };
  const show = (answer) => {
    const waiting = Object.values(answer.errors || {});
    if (waiting.length) {
      state.textContent = `The preview waits for: ${waiting.join(" ")}`;
      return;
    }
    const images = answer.pages.map((page) => {
      const img = document.createElement("img");
      img.src = page.src;
      img.alt = page.alt;
      img.dataset.found = page.found === null ? "" : String(page.found);
      return img;
    });
    sheets.replaceChildren(...images);
    textBox.replaceChildren(...answer.pages.map((page) => {
      const p = document.createElement("p");
      p.textContent = page.text;
      return p;
    }));
    followUp.textContent = answer.follow_up || "These handouts set no follow-up date.";
    state.textContent = answer.blank
      ? "The blank handout: type the patient's name to see it on the handout."
      : "Updated for the details typed.";
    images[0].decode().then(scrollToName, scrollToName);
  };
  const refresh = async () => {
    const mine = ++sequence;
    if (controller) controller.abort();
    controller = new AbortController();
    sheets.classList.add("busy");
    try {
      const response = await fetch(form.dataset.preview, {
        method: "POST", body: new FormData(form), cache: "no-store", signal: controller.signal, redirect: "manual",
      });
      if (!response.ok) throw new Error(String(response.status));
      const answer = await response.json();
      if (mine < shown) return;
      shown = mine;
      show(answer);
    } catch (error) {
      if (error.name !== "AbortError" && mine === sequence) {
        state.textContent = "The preview could not be drawn just now; it tries again when you type.";
      }
    } finally {
      if (mine === sequence) sheets.classList.remove("busy");
    }
  };
  const later = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 120);  // a pause in typing, not each key of a fast typist
  };
  form.querySelector(".patient").addEventListener("input", later);
  form.querySelectorAll("select[name=d]").forEach((s) => s.addEventListener("change", refresh));
  form.querySelector(".method").addEventListener("change", label);
  zoom.addEventListener("click", () => {
    const whole = sheets.classList.toggle("whole");
    zoom.setAttribute("aria-pressed", String(whole));
    zoom.textContent = whole ? "Close-up" : "Whole page";
    scrollToName();
  });
  const say = (kind, lines) => {
    outcome.className = `outcome ${kind}`;
    outcome.setAttribute("role", kind === "good" ? "status" : "alert");
    outcome.replaceChildren(...lines.map((line, i) => {
      const p = document.createElement("p");
      if (i === 0) p.className = "outcome-text";
      p.textContent = line;
      return p;
    }));
    outcome.hidden = false;
    outcome.focus();
  };
  let plainSubmit = false;
  form.addEventListener("submit", async (event) => {
    if (plainSubmit || event.submitter !== go) return;
    if (method() !== "download") {
      window.setTimeout(() => { go.disabled = true; }, 0);  // one click, one delivery
      return;
    }
    event.preventDefault();
    go.disabled = true;
    try {
      const body = new FormData(form);
      // form.action would be the "action" radios: the address is the attribute.
      const response = await fetch(form.getAttribute("action"), { method: "POST", body, cache: "no-store" });
      if (!(response.headers.get("Content-Type") || "").startsWith("application/pdf")) {
        plainSubmit = true;  // a problem: let the page come back with it
        form.requestSubmit(go);
        return;
      }
      const file = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = file;
      link.download = "handouts.pdf";
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(file), 60000);
      const name = form.elements.name.value.trim();
      const said = decodeURIComponent(response.headers.get("X-Brochure-Outcome") || "Downloaded.");
      for (const field of ["name", "treatment", "note"]) form.elements[field].value = "";
      for (const choice of form.querySelectorAll("[name=injector]")) {
        if (choice.type === "radio") choice.checked = false; else choice.value = "";
      }
      say("good", [said.replace(" as handouts.pdf", ` for ${name} as handouts.pdf`), "The form is empty again for the next patient."]);
      refresh();
    } catch (error) {
      say("bad", ["The download did not work: nothing was given.", "Try again, or print or email instead."]);
    } finally {
      go.disabled = false;
    }
  });
  label();
  const again = document.getElementById("again");
  const errors = document.getElementById("errors");
  if (again) {
    again.close();
    again.showModal();
    again.querySelector("button").focus();
    again.addEventListener("cancel", () => { window.location.href = document.getElementById("again-cancel").href; });
  } else if (errors) {
    errors.focus();
  } else if (!outcome.hidden) {
    outcome.focus();
  }
  if (!sheets.querySelector("img") || form.elements.name.value) refresh();
  else scrollToName();
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

// A question the server asks (Today's "print again?") opens as a dialog that holds the focus.
function setUpAsk() {
  for (const ask of document.querySelectorAll("dialog.ask[data-modal]")) {
    ask.close();
    ask.showModal();
    const first = ask.querySelector("input, button");
    if (first) first.focus();
    ask.addEventListener("cancel", () => { window.location.href = ask.dataset.cancel; });
  }
}

// Education documented: the "Sign" pad. The strokes go to the server as lists of points in the pad's
// own units (the canvas's width and height); the server checks them and draws the SVG it keeps.
function setUpSignature() {
  for (const sign of document.querySelectorAll("form.education .sign")) {
    const form = sign.closest("form");
    const open = sign.querySelector(".pad-open");
    const pad = sign.querySelector(".pad");
    const canvas = pad.querySelector("canvas");
    const field = sign.querySelector("input[name=strokes]");
    const context = canvas.getContext("2d");
    const strokes = [];
    let current = null;
    open.hidden = false;
    open.addEventListener("click", () => {
      pad.hidden = false;
      open.hidden = true;
    });
    const at = (event) => {
      const box = canvas.getBoundingClientRect();
      const x = ((event.clientX - box.left) * canvas.width) / box.width;
      const y = ((event.clientY - box.top) * canvas.height) / box.height;
      const clamp = (v, most) => Math.round(Math.min(Math.max(v, 0), most) * 10) / 10;
      return [clamp(x, canvas.width), clamp(y, canvas.height)];
    };
    context.lineWidth = 3;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#1a1a1a";
    canvas.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      current = [at(event)];
      strokes.push(current);
      context.beginPath();
      context.moveTo(...current[0]);
      context.lineTo(...current[0]);
      context.stroke();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!current) return;
      const point = at(event);
      const last = current[current.length - 1];
      if (Math.hypot(point[0] - last[0], point[1] - last[1]) < 1.5) return;  // fewer points, same line
      context.beginPath();
      context.moveTo(...last);
      context.lineTo(...point);
      context.stroke();
      current.push(point);
    });
    const end = () => { current = null; };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    pad.querySelector(".pad-clear").addEventListener("click", () => {
      strokes.length = 0;
      context.clearRect(0, 0, canvas.width, canvas.height);
    });
    form.addEventListener("submit", () => {
      field.value = strokes.length ? JSON.stringify(strokes) : "";
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpIdle();
  setUpSearch();
  setUpBasket();
  setUpGive();
  setUpStatus();
  setUpAsk();
  setUpSignature();
  const notice = !document.getElementById("personalise") && document.getElementById("outcome");
  if (notice && !document.querySelector("dialog[open]")) notice.focus();
});

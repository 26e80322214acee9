/*
 * The triage board: cards move live (one `board` event per change, carrying the card's
 * html), drag and drop and the keyboard change a ticket's status through the API (the
 * server checks the workflow and the user's role), filters apply to live cards too.
 */
(function () {
  "use strict";
  var board, params, dragging = null, allowed = new Set();

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  function say(text) {
    var box = document.getElementById("board-message");
    box.textContent = text;
    box.hidden = !text;
    if (text) setTimeout(function () { if (box.textContent === text) say(""); }, 8000);
  }

  function matches(card) {
    var d = card.dataset;
    if (params.get("priority") && d.priority !== params.get("priority")) return false;
    if (params.get("category") && d.category !== params.get("category")) return false;
    if (params.get("assignee") && d.assignee !== params.get("assignee")) return false;
    if (params.get("mine") && d.assignee !== board.dataset.userId) return false;
    if (params.get("breached") && !window.cc.isBreached(card)) return false;
    return true;
  }

  function list(status) { return board.querySelector('ol.cards[data-status="' + status + '"]'); }

  function bump(status, delta) {
    var el = board.querySelector('[data-column-count="' + status + '"]');
    if (el) el.textContent = Math.max(0, parseInt(el.textContent, 10) + delta);
  }

  /** Insert in sort order; a card sorting past a truncated column's end is left to "show more". */
  function insertSorted(ol, card) {
    var items = ol.children;
    for (var i = 0; i < items.length; i++) {
      if (items[i].dataset.sort > card.dataset.sort) { ol.insertBefore(card, items[i]); return true; }
    }
    var more = document.getElementById("more-" + ol.dataset.status);
    if (more && more.querySelector("button")) return false;
    ol.appendChild(card);
    return true;
  }

  function onBoardEvent(event) {
    var message = event.detail, data = message.data || {};
    if (!message.html || !data.id) return;
    var template = document.createElement("template");
    template.innerHTML = message.html.trim();
    var card = template.content.firstElementChild;
    var old = document.getElementById("ticket-" + data.id);
    var hadFocus = old && old.contains(document.activeElement);
    if (old) { bump(old.dataset.status, -1); old.remove(); }
    var ol = list(data.status);
    if (!ol || !matches(card)) return;
    bump(data.status, 1);
    if (insertSorted(ol, card)) {
      window.cc.tick(card);
      card.classList.add("changed");
      if (hadFocus) card.focus();
    }
  }

  function move(id, status) {
    say("");
    fetch(board.dataset.api + id + "/transition/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ status: status }),
    }).then(function (response) {
      if (response.ok) return;
      return response.json().then(function (body) {
        say("Not moved: " + (body.detail || response.statusText));
      });
    }).catch(function () { say("Not moved: the server did not answer."); });
  }

  function columns() { return Array.prototype.slice.call(board.querySelectorAll(".column")); }

  function onDragStart(event) {
    var card = event.target.closest && event.target.closest(".ticket-card");
    if (!card) return;
    dragging = card;
    event.dataTransfer.setData("text/plain", card.dataset.id);
    event.dataTransfer.effectAllowed = "move";
    card.classList.add("dragging");
    columns().forEach(function (col) {
      if (allowed.has(card.dataset.status + ">" + col.dataset.status)) col.classList.add("can-drop");
    });
  }

  function onDragEnd() {
    if (dragging) dragging.classList.remove("dragging");
    dragging = null;
    columns().forEach(function (col) { col.classList.remove("can-drop", "drop-target"); });
  }

  function onDragOver(event) {
    var col = event.target.closest && event.target.closest(".column");
    if (!col || !dragging || col.dataset.status === dragging.dataset.status) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    columns().forEach(function (c) { c.classList.toggle("drop-target", c === col); });
  }

  function onDrop(event) {
    var col = event.target.closest && event.target.closest(".column");
    if (!col) return;
    event.preventDefault();
    var id = event.dataTransfer.getData("text/plain") || (dragging && dragging.dataset.id);
    var from = dragging && dragging.dataset.status;
    onDragEnd();
    if (id && from !== col.dataset.status) move(id, col.dataset.status);
  }

  function cardsOf(col) { return Array.prototype.slice.call(col.querySelectorAll(".ticket-card")); }

  function focusAcross(card, step) {
    var cols = columns();
    var index = cardsOf(card.closest(".column")).indexOf(card);
    for (var c = cols.indexOf(card.closest(".column")) + step; c >= 0 && c < cols.length; c += step) {
      var cards = cardsOf(cols[c]);
      if (cards.length) { cards[Math.min(index, cards.length - 1)].focus(); return; }
    }
  }

  function onKey(event) {
    var card = event.target.closest && event.target.closest(".ticket-card");
    if (!card) return;
    var cols = columns(), col = card.closest(".column");
    var keys = { ArrowRight: 1, ArrowLeft: -1 };
    if (event.shiftKey && keys[event.key]) {
      var target = cols[cols.indexOf(col) + keys[event.key]];
      if (target) move(card.dataset.id, target.dataset.status);
    } else if (keys[event.key]) {
      focusAcross(card, keys[event.key]);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      var cards = cardsOf(col), next = cards[cards.indexOf(card) + (event.key === "ArrowDown" ? 1 : -1)];
      if (next) next.focus();
    } else if (event.key === "Enter" && event.target === card) {
      card.querySelector("a.title").click();
    } else {
      return;
    }
    event.preventDefault();
  }

  document.addEventListener("DOMContentLoaded", function () {
    board = document.getElementById("board");
    if (!board) return;
    params = new URLSearchParams(location.search);
    JSON.parse(document.getElementById("board-transitions").textContent).forEach(function (pair) {
      allowed.add(pair[0] + ">" + pair[1]);
    });
    document.addEventListener("live:board", onBoardEvent);
    board.addEventListener("dragstart", onDragStart);
    board.addEventListener("dragend", onDragEnd);
    board.addEventListener("dragover", onDragOver);
    board.addEventListener("drop", onDrop);
    board.addEventListener("keydown", onKey);
    document.getElementById("board-filters").addEventListener("change", function (event) {
      event.currentTarget.requestSubmit();
    });
  });
})();

// Live view: polls the JSON API and updates the rows in place (no inline script: CSP).
"use strict";
(function () {
  const table = document.getElementById("live");
  if (!table) return;
  const site = table.dataset.site;
  const pollMs = Number(table.dataset.pollMs) || 5000;
  const short = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit" });
  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function sensorText(s) {
    let text = s.device + ": " + (s.online ? "online" : s.online === false ? "offline" : "no status");
    if (s.battery_pct !== null) text += ", battery " + Math.round(s.battery_pct) + " %";
    if (s.last_seen) text += ", seen " + short.format(new Date(s.last_seen));
    return text;
  }

  function render(state) {
    let online = 0;
    for (const room of state.rooms) {
      const row = table.querySelector('tr[data-room="' + CSS.escape(room.room) + '"]');
      if (!row) continue;
      const cell = row.querySelector("td.state");
      cell.textContent = room.state;
      cell.dataset.state = room.state;
      cell.className = "state state-" + room.state;
      row.querySelector("td.since").textContent = room.since ? short.format(new Date(room.since)) : "—";
      const sensors = row.querySelector("td.sensors");
      sensors.replaceChildren(...room.sensors.map(function (s) {
        const span = document.createElement("span");
        span.className = "sensor";
        span.textContent = sensorText(s);
        return span;
      }));
      online += room.sensors.filter(function (s) { return s.online; }).length;
    }
    document.getElementById("sensors-online").textContent = String(online);
    const at = document.getElementById("live-at");
    at.dateTime = state.at;
    at.textContent = clock.format(new Date(state.at));
  }

  async function poll() {
    try {
      const response = await fetch("/api/sites/" + encodeURIComponent(site) + "/live",
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) render(await response.json());
    } catch (err) {
      // offline for a moment: the next poll tries again
    }
    window.setTimeout(poll, pollMs);
  }
  window.setTimeout(poll, pollMs);
})();

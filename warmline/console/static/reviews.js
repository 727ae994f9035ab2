// The reviewer's page: keyboard shortcuts for the player, the timeline's playhead, and forms that
// answer in the live region (#status). Everything also works without this script.
(function () {
  "use strict";
  const status = document.getElementById("status");
  const say = (text) => { status.textContent = ""; window.setTimeout(() => { status.textContent = text; }, 30); };
  const player = document.getElementById("player");
  const playerStatus = document.getElementById("player-status");
  const clock = (seconds) => {
    const s = Math.max(0, Math.round(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  };
  const tell = (text) => { if (playerStatus) playerStatus.textContent = text; };

  if (player) {
    const typing = (el) => {
      if (!el || !el.tagName) return false;
      const tag = el.tagName.toLowerCase();
      if (tag === "textarea" || tag === "select" || el.isContentEditable) return true;
      return tag === "input" && !["radio", "checkbox", "button", "submit"].includes(el.type);
    };
    const activates = (el) => {  // Space already means something on these
      const tag = el && el.tagName ? el.tagName.toLowerCase() : "";
      return ["button", "a", "summary", "audio", "input", "select", "textarea"].includes(tag);
    };
    // A key tells the new state at once: the browser runs key presses before the media's own
    // play/pause events, so waiting for those would let "Paused at" overwrite a later "Forward 5
    // seconds". The events still speak for the player's own buttons.
    const toldByKey = { play: false, pause: false };
    const play = () => player.play().catch((err) => {
      toldByKey.play = false;
      // a pause before playback began rejects play(); that is the reviewer's choice, not a fault
      if (!err || err.name !== "AbortError") tell(t("The recording could not be played."));
    });
    const toggle = () => {
      if (player.paused) {
        toldByKey.play = true;
        tell(t("Playing from {time}", { time: clock(player.currentTime) }));
        play();
      } else {
        player.pause();
        toldByKey.pause = true;
        tell(t("Paused at {time}", { time: clock(player.currentTime) }));
      }
    };
    const onState = (kind, text) => () => {
      if (toldByKey[kind]) { toldByKey[kind] = false; return; }
      tell(t(text, { time: clock(player.currentTime) }));
    };
    const skip = (by) => {
      const end = isFinite(player.duration) ? player.duration : Infinity;
      player.currentTime = Math.min(Math.max(0, player.currentTime + by), end);
      const at = { n: Math.abs(by), time: clock(player.currentTime) };
      tell(by < 0 ? t("Back {n} seconds, at {time}", at) : t("Forward {n} seconds, at {time}", at));
    };
    document.addEventListener("keydown", (ev) => {
      if (ev.ctrlKey || ev.altKey || ev.metaKey || typing(ev.target)) return;
      const key = ev.key;
      if (key === "k" || key === "K" || (key === " " && !activates(ev.target))) { ev.preventDefault(); toggle(); }
      else if (key === "j" || key === "J") { ev.preventDefault(); skip(-5); }
      else if (key === "l" || key === "L") { ev.preventDefault(); skip(5); }
    });
    player.addEventListener("play", onState("play", "Playing from {time}"));
    player.addEventListener("pause", onState("pause", "Paused at {time}"));
    const head = document.getElementById("playhead");
    player.addEventListener("timeupdate", () => {
      if (head && isFinite(player.duration) && player.duration > 0) {
        const x = (1000 * player.currentTime / player.duration).toFixed(1);
        head.setAttribute("x1", x); head.setAttribute("x2", x);
      }
    });
    document.querySelectorAll("button.seek").forEach((b) => b.addEventListener("click", () => {
      player.currentTime = Number(b.dataset.t);
      play();
    }));
  }

  const card = document.getElementById("scorecard");
  if (card) {
    card.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const resp = await fetch(card.action, {
        method: "POST", body: new FormData(card), headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      let data = { message: t("Not submitted: the server answered {status}", { status: resp.status }) };
      try { data = await resp.json(); } catch (e) { /* keep the message above */ }
      say(data.message);
      if (data.ok) {
        card.querySelectorAll("input, textarea").forEach((el) => { el.disabled = true; });
        const btn = card.querySelector("button[type=submit]");
        if (btn) { btn.remove(); }
      }
    });
  }

  document.querySelectorAll("form.ack").forEach((form) => form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const resp = await fetch(form.action, { method: "POST", headers: { Accept: "application/json" }, credentials: "same-origin" });
    let data = { message: t("Not acknowledged: the server answered {status}", { status: resp.status }) };
    try { data = await resp.json(); } catch (e) { /* keep the message above */ }
    say(data.message);
    if (data.ok) {
      const p = document.createElement("p");
      p.textContent = t("Acknowledged.");
      form.replaceWith(p);
    }
  }));
})();

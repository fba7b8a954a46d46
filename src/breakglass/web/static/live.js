// Live updates: one EventSource on /api/v1/events; each server-sent event becomes a "live:<topic>"
// event on <body>, which panels refresh on (hx-trigger="live:incidents from:body"). Each time the
// stream opens, the first time included, every panel refreshes once: what happened between the page's
// render and the stream's opening, or while disconnected, would otherwise stay missing.
(function () {
  var badge = document.getElementById("live");
  var topics = ["incidents", "timeline", "actions", "alerts", "findings"];
  function set(state) { if (badge) { badge.dataset.state = state; badge.textContent = state; } }
  set("connecting");
  var source = new EventSource("/api/v1/events");
  source.addEventListener("open", function () {
    set("live");
    topics.forEach(function (t) { htmx.trigger(document.body, "live:" + t); });
  });
  source.addEventListener("error", function () { set("reconnecting"); });
  topics.forEach(function (topic) {
    source.addEventListener(topic, function () { htmx.trigger(document.body, "live:" + topic); });
  });
  window.addEventListener("pagehide", function () { source.close(); });

  // A live refresh (a GET) never replaces a panel in which someone is typing: a half-pasted Safe
  // signature or a closing reason would be lost. The next event after they submit refreshes it.
  function editing(root) {
    var fields = root.querySelectorAll("textarea, input:not([type=hidden]), select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f === document.activeElement) return true;
      if ((f.tagName === "SELECT") ? false : f.value !== f.defaultValue) return true;
    }
    return false;
  }
  document.body.addEventListener("htmx:beforeSwap", function (evt) {
    var verb = evt.detail.requestConfig && evt.detail.requestConfig.verb;
    if (verb === "get" && evt.detail.target && editing(evt.detail.target)) {
      evt.detail.shouldSwap = false;
    }
  });
})();

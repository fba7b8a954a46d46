// Show whether the live stream is connected; htmx's sse extension does the rest.
(function () {
  var badge = document.getElementById("live");
  if (!badge) return;
  function set(state) { badge.dataset.state = state; badge.textContent = state; }
  set("connecting");
  document.body.addEventListener("htmx:sseOpen", function () { set("live"); });
  document.body.addEventListener("htmx:sseError", function () { set("reconnecting"); });
})();

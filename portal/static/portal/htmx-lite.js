// The few lines of htmx-style behaviour the portal needs, no download: a form with
// data-target submits in the background (HX-Request: true) and its answer replaces the
// target's content. Without JavaScript the form posts normally and the page reloads.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  const target = form.dataset && form.dataset.target && document.querySelector(form.dataset.target);
  if (!target) return;
  event.preventDefault();
  const get = form.method.toLowerCase() === "get";
  const response = await fetch(form.action, {
    method: get ? "GET" : "POST",
    body: get ? undefined : new FormData(form),
    headers: { "HX-Request": "true" },
    credentials: "same-origin",
  });
  target.innerHTML = await response.text();
  target.focus();
});

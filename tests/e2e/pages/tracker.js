// A tracker as a site's page runs it, sending page views to Tapioca on another origin:
// with fetch as JSON (the browser asks a preflight first), with fetch as text/plain and
// with navigator.sendBeacon (text/plain: no preflight). The page's query names the API,
// the site and the run; what each send saw is left in window.tracked.
(async () => {
  const query = new URLSearchParams(location.search);
  const api = query.get("api");
  const site = query.get("site");
  const run = query.get("run");
  const event = (via, n) => ({
    site_id: site,
    event_type: "page_view",
    event_id: `${run}-${via}-${n}`,
    path: `/${run}/${via}/${n}`,
    anonymous_id: "visitor-1",
  });

  async function post(path, body, contentType) {
    try {
      const response = await fetch(api + path, {
        method: "POST",
        headers: { "Content-Type": contentType },
        body,
      });
      return { status: response.status, body: await response.json() };
    } catch (error) {
      return { error: error.name };  // the browser refused to hand the answer over
    }
  }

  const json = await post("/events", JSON.stringify([event("json", 1), event("json", 2)]),
                          "application/json");
  const text = await post("/event", JSON.stringify(event("text", 1)), "text/plain");
  const beacon = navigator.sendBeacon(api + "/event", JSON.stringify(event("beacon", 1)));
  window.tracked = { json, text, beacon };
  document.getElementById("log").textContent = JSON.stringify(window.tracked);
})();

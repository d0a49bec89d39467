// The first-run checklist goes live: while a step is open, ask
// /api/first-run every few seconds and tick steps as they are done, so the
// first events show up without a reload. A static file: the CSP allows only
// scripts served by this origin.
(function () {
  var box = document.querySelector('[data-testid=first-run]');
  if (!box) return;
  var steps = { token_created: 'step-token', agent_enrolled: 'step-command', events_arrived: 'step-events' };
  var status = box.querySelector('[data-testid=first-run-status]');
  var tick = function (id) {
    var li = box.querySelector('[data-testid=' + id + ']');
    if (!li || li.getAttribute('data-done') === 'true') return;
    li.setAttribute('data-done', 'true');
    li.className = 'done';
    var t = li.querySelector('.tick');
    if (t) t.textContent = '\u2713';
    if (status) status.textContent = li.textContent.trim() + ' (done)';
  };
  var poll = function () {
    fetch('/api/first-run', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return setTimeout(poll, 5000);
        Object.keys(steps).forEach(function (k) { if (s[k]) tick(steps[k]); });
        if (s.events_arrived) {
          var w = box.querySelector('[data-testid=events-waiting]');
          var a = box.querySelector('[data-testid=events-arrived]');
          if (w) w.hidden = true;
          if (a) a.hidden = false;
          return;
        }
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  };
  setTimeout(poll, 1000);
})();

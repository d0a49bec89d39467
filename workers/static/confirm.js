// Confirmation before an action that cannot be undone from the page: a form
// with data-confirm="…" opens the page's <dialog> with that question and is
// sent only after "Confirm". A static file (the CSP forbids inline script);
// without script the form is sent directly, as before.
(function () {
  var dialog = document.getElementById('confirm-dialog');
  if (!dialog || typeof dialog.showModal !== 'function') return;
  var text = dialog.querySelector('[data-testid=confirm-text]');
  var pending = null;
  document.addEventListener('submit', function (e) {
    var form = e.target;
    var question = form.getAttribute && form.getAttribute('data-confirm');
    if (!question || form.getAttribute('data-confirmed') === 'yes') return;
    e.preventDefault();
    var role = form.querySelector('select[name=role]');
    if (role) question = question.replace('{role}', role.options[role.selectedIndex].text.toLowerCase());
    text.textContent = question;
    pending = form;
    dialog.returnValue = '';
    dialog.showModal();
  }, true);
  dialog.addEventListener('close', function () {
    var form = pending;
    pending = null;
    if (!form || dialog.returnValue !== 'confirm') return;
    form.setAttribute('data-confirmed', 'yes');
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });
})();

// Copy buttons: <button data-copy="#id"> copies the text of #id. A file of
// its own because the CSP allows only scripts served by this origin.
document.addEventListener("click", function (e) {
  var b = e.target.closest("button[data-copy]");
  if (!b) return;
  var el = document.querySelector(b.getAttribute("data-copy"));
  if (!el) return;
  var done = function (text) { b.textContent = text; };
  if (!navigator.clipboard) return done("Select the text and copy it");
  navigator.clipboard.writeText(el.textContent.trim()).then(
    function () { done("Copied"); },
    function () { done("Select the text and copy it"); }
  );
});

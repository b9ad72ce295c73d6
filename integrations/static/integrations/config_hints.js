// The integration admin form: show the config keys of the provider chosen in the select.
// Local, no library: the admin works offline.
(function () {
  "use strict";
  function show(select, box) {
    var chosen = select ? select.value : box.getAttribute("data-current");
    box.querySelectorAll("[data-provider]").forEach(function (hint) {
      hint.hidden = hint.getAttribute("data-provider") !== chosen;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("id_provider");
    var box = document.getElementById("config-hints");
    if (!box) {
      return;
    }
    if (select) {
      select.addEventListener("change", function () { show(select, box); });
    }
    show(select, box);
  });
})();
